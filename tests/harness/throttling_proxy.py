"""A loopback HTTP proxy in front of moto that can answer every request with AWS throttling.

Counts what reaches it, throttled or passed on, with the time of arrival, so a test can compare
how often a throttled and a healthy provider are asked.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from .loopback import LoopbackServer, QuietHandler, forward
from .waiting import wait_for


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic()
    target: str  # the X-Amz-Target header: which API call
    throttled: bool
    secret_ids: tuple[str, ...] = ()  # the secrets a read names (GetSecretValue, BatchGetSecretValue)


class ThrottlingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.throttling = False
        self.retry_after: str | None = None
        self.status = 429
        self._arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                throttled = proxy.throttling
                with proxy._lock:
                    proxy._arrivals.append(Arrival(time.monotonic(), self.headers.get("X-Amz-Target", ""), throttled,
                                                   _secret_ids(body)))
                if throttled:
                    self._answer(proxy.status, json.dumps({"__type": "ThrottlingException",
                                                           "message": "Rate exceeded"}).encode(),
                                 "application/x-amz-json-1.1", proxy.retry_after)
                    return
                status, payload, kind = forward(proxy.upstream, self, body)
                self._answer(status, payload, kind or "application/x-amz-json-1.1", None)

            def _answer(self, status: int, payload: bytes, kind: str, retry_after: str | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)

    def arrivals(self, *, since: float = 0.0, throttled: bool | None = None) -> list[Arrival]:
        with self._lock:
            return [a for a in self._arrivals
                    if a.at >= since and (throttled is None or a.throttled == throttled)]


    def wait_arrivals(self, count: int, *, since: float, throttled: bool | None = None,
                      timeout: float = 60) -> list[Arrival]:
        """The first ``count`` arrivals since ``since``, once that many came."""
        def enough() -> list[Arrival] | None:
            got = self.arrivals(since=since, throttled=throttled)
            return got[:count] if len(got) >= count else None
        return wait_for(enough, timeout=timeout, what=f"{count} requests at the proxy (throttled={throttled})")


def _secret_ids(body: bytes) -> tuple[str, ...]:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return ()
    if not isinstance(request, dict):
        return ()
    named = request.get("SecretIdList") or ([request["SecretId"]] if "SecretId" in request else [])
    return tuple(str(name) for name in named)


def per_minute(arrivals: list[Arrival]) -> float:
    """Requests per minute over the span of the given arrivals (at least two)."""
    span = arrivals[-1].at - arrivals[0].at
    return (len(arrivals) - 1) * 60.0 / span if span > 0 else float("inf")
