"""A liveness endpoint for a replica that waits for the Lease, before kopf serves its own there."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["serving_liveness"]


class _Alive(BaseHTTPRequestHandler):
    path_served = "/healthz"

    def do_GET(self) -> None:
        ok = urllib.parse.urlsplit(self.path).path == self.path_served
        body = b'{"standby": true}' if ok else b"not found"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json" if ok else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a probe every few seconds is not news


@contextmanager
def serving_liveness(endpoint: str | None) -> Iterator[None]:
    """Answer ``endpoint`` (kopf's ``--liveness`` URL) with 200 while the block runs: a standby is
    alive, and a probe that failed on it would restart it for ever. The port is free again after."""
    if not endpoint:
        yield
        return
    url = urllib.parse.urlsplit(endpoint)
    handler = type("Alive", (_Alive,), {"path_served": url.path or "/"})
    server = ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), handler)
    thread = threading.Thread(target=server.serve_forever, name="standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
