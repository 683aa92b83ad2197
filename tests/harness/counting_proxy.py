"""A loopback proxy in front of moto that counts Secrets Manager reads per remote secret.

Secrets Manager speaks JSON with the action in the X-Amz-Target header; its request bodies name
secrets, never values. Lets a test show that a BotSecret asked the provider nothing.
"""

from __future__ import annotations

import json
import threading
import time

from .loopback import LoopbackServer, QuietHandler, forward

READS = ("secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue")


class CountingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str]] = []  # (X-Amz-Target, body)
        self.signers: list[str] = []  # the access key id that signed each request (not a secret)
        self.arrived: list[float] = []  # wall-clock time each request arrived (for the benchmarks)
        self._append = threading.Lock()  # the three lists stay aligned, index for index
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy._append:
                    proxy.arrived.append(time.time())
                    proxy.requests.append((self.headers.get("X-Amz-Target") or "", body.decode(errors="replace")))
                    proxy.signers.append(_access_key_id(self.headers.get("Authorization") or ""))
                status, payload, kind = forward(proxy.upstream, self, body)
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)

    def calls(self, target: str) -> int:
        """Requests with X-Amz-Target ``target``, e.g. ``secretsmanager.BatchGetSecretValue``."""
        return sum(1 for t, _ in list(self.requests) if t == target)

    def reads_by_signer(self, remote_name: str) -> dict[str, int]:
        """Reads naming ``remote_name``, by the access key id that signed them."""
        quoted = json.dumps(remote_name)
        found: dict[str, int] = {}
        for (target, body), signer in zip(list(self.requests), list(self.signers), strict=False):
            if target in READS and quoted in body:
                found[signer] = found.get(signer, 0) + 1
        return found

    def reads_of(self, remote_name: str) -> int:
        """Reads (GetSecretValue, BatchGetSecretValue) whose request names ``remote_name``."""
        quoted = json.dumps(remote_name)
        return sum(1 for target, body in list(self.requests) if target in READS and quoted in body)


def _access_key_id(authorization: str) -> str:
    # "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request, ..."
    credential = authorization.partition("Credential=")[2]
    return credential.split("/", 1)[0]
