"""A loopback HTTP server that records every request it gets and answers 503: where a tenant
would like credentials to go. A test that it received nothing proves nothing was sent."""

from __future__ import annotations

from .loopback import LoopbackServer, QuietHandler


class Sink(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        sink = self

        class Handler(QuietHandler):
            def _record(self) -> None:
                sink.requests.append((self.command, self.path))
                self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

        super().__init__(Handler)

    @property
    def address(self) -> str:
        return self.endpoint
