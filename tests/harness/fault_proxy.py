"""A loopback TCP proxy that injects the faults a provider's network shows in production.

Modes, switched at any time (a switch closes every open connection, so keep-alive connections
of the old mode cannot carry on under the new one):

* ``pass``: bytes go both ways to the upstream.
* ``drop``: every connection is accepted and closed at once (a reset, a crashed server).
* ``blackhole``: accepted and never answered; the client waits for its own timeout.
* ``delay``: held ``delay`` seconds before passing on (past the client's timeout, if set so).
* ``throttle``: every HTTP request is answered by the proxy itself with AWS's
  ``ThrottlingException`` (HTTP 400, or ``status``), never reaching the upstream.

``stop`` closes the listening socket too (connection refused); ``start`` binds the same port again.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Literal

Mode = Literal["pass", "drop", "blackhole", "delay", "throttle"]


class FaultProxy:
    def __init__(self, upstream_port: int, *, mode: Mode = "pass") -> None:
        self.upstream_port = upstream_port
        self.mode: Mode = mode
        self.delay = 0.0
        self.status = 400
        self.port = 0
        self.accepted = 0  # connections accepted, in any mode
        self.throttled = 0  # requests answered with ThrottlingException
        self.forwarded = 0  # chunks of client bytes passed on to the upstream
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self._close_all()

    def set_mode(self, mode: Mode, *, delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay
        self._close_all()

    def held(self) -> int:
        """Connections open right now (in black-hole mode: clients waiting for an answer)."""
        with self._lock:
            return len(self._open)

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._open = set(self._open), set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._open.add(s)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.accepted += 1
            mode = self.mode
            if mode == "drop":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                continue
            self._track(client)
            threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: Mode) -> None:
        try:
            if mode == "blackhole":
                while client.recv(65536):
                    pass
            elif mode == "throttle":
                self._throttle(client)
            else:
                if mode == "delay":
                    time.sleep(self.delay)  # the fault itself: the client's timeout is what is tested
                self._pipe(client)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
            client.close()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        upstream.settimeout(None)
        self._track(upstream)

        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
                    if src is client:
                        self.forwarded += 1
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        back.start()
        copy(client, upstream)
        back.join()
        with self._lock:
            self._open.discard(upstream)
        upstream.close()

    def _throttle(self, client: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = client.recv(65536)
                if not data:
                    return
                buffer += data
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buffer) < length:
                data = client.recv(65536)
                if not data:
                    return
                buffer += data
            buffer = buffer[length:]
            self.throttled += 1
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            client.sendall(
                f"HTTP/1.1 {self.status} Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n"
                f"x-amzn-ErrorType: ThrottlingException\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
