"""A loopback HTTP proxy that records request bodies before passing them on (to moto's STS).

Lets a test see exactly which ServiceAccount token reached STS.
"""

from __future__ import annotations

import urllib.parse

from .loopback import LoopbackServer, QuietHandler, forward


class RecordingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[dict[str, list[str]]] = []
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.requests.append(urllib.parse.parse_qs(body.decode(errors="replace")))
                status, payload, kind = forward(proxy.upstream, self, body)
                self.send_response(status)
                self.send_header("Content-Type", kind or "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)

    def calls(self, action: str) -> list[dict[str, list[str]]]:
        return [r for r in self.requests if r.get("Action") == [action]]
