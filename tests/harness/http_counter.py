"""A loopback HTTP proxy that counts requests by method and path and passes them on (to OpenBao).

Vault's KV reads are GETs whose paths name secrets, never values; the bodies are not kept.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import Counter

from .loopback import LoopbackServer, QuietHandler


class HttpCountingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: Counter[tuple[str, str]] = Counter()  # (method, path without the query)
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _pass(self) -> None:
                with proxy._lock:
                    proxy.calls[(self.command, self.path.split("?", 1)[0])] += 1
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                outgoing = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers,
                                                  method=self.command)
                try:
                    with urllib.request.urlopen(outgoing, timeout=10) as response:
                        status, payload, kind = response.status, response.read(), response.headers.get("Content-Type")
                except urllib.error.HTTPError as e:
                    status, payload, kind = e.code, e.read(), e.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_LIST = _pass

        super().__init__(Handler)

    def count(self, method: str | None = None, prefix: str = "") -> int:
        with self._lock:
            return sum(n for (m, path), n in self.calls.items()
                       if (method is None or m == method) and path.startswith(prefix))
