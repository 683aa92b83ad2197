"""A loopback proxy in front of moto that counts Secrets Manager reads per remote secret.

Secrets Manager speaks JSON with the action in the X-Amz-Target header; its request bodies name
secrets, never values. Lets a test show that a BotSecret asked the provider nothing.
"""

from __future__ import annotations

import json

from .loopback import LoopbackServer, QuietHandler, forward

READS = ("secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue")


class CountingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str]] = []  # (X-Amz-Target, body)
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.requests.append((self.headers.get("X-Amz-Target") or "", body.decode(errors="replace")))
                status, payload, kind = forward(proxy.upstream, self, body)
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)

    def reads_of(self, remote_name: str) -> int:
        """Reads (GetSecretValue, BatchGetSecretValue) whose request names ``remote_name``."""
        quoted = json.dumps(remote_name)
        return sum(1 for target, body in list(self.requests) if target in READS and quoted in body)
