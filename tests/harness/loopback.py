"""The plumbing the loopback test servers share: serve a handler on 127.0.0.1 in a thread, and
pass a request on to an upstream server."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when many syncs call at once (the
    # scale tests and benchmark); a provider would not.
    request_queue_size = 128
    daemon_threads = True


class LoopbackServer:
    """``handler`` served on a free port of 127.0.0.1 by a daemon thread, from start to stop."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


def forward(upstream: str, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, str | None]:
    """POST ``body`` to ``upstream`` as ``request`` came; answer status, payload and content type."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
    outgoing = urllib.request.Request(upstream + request.path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(outgoing, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type")
