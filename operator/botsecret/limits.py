"""How hard the operator may press one provider endpoint: at most ``concurrency`` calls at once and
``rate`` calls a second on average (a token bucket of ``2 x rate``), and nothing at all while the
endpoint's last ``Retry-After`` runs.

One limiter per endpoint (provider kind and address or region), shared by every identity that
reaches it: quotas such as Secrets Manager's are per account and region, and a Vault server's per
client address, which is this operator's for every tenant. A call that would wait longer than
``max_wait`` is not sent; it answers :class:`LimitReached`, retried after the wait.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .providers.base import ProviderError, Throttled, Unavailable
from .spec import AwsSource, GcpSource, ProviderConfig

__all__ = ["EndpointLimiter", "LimitReached", "Limiters", "Limits", "endpoint_of"]


class LimitReached(Unavailable):
    """Not sent: the operator's own limit for the endpoint is reached. Retried soon (after its
    ``retry_after``), not with a throttled store's long backoff: the provider said nothing."""


@dataclass(frozen=True)
class Limits:
    concurrency: int = 16
    rate: float = 50.0  # calls per second; 0: no rate limit
    max_wait: float = 10.0


def endpoint_of(provider: ProviderConfig) -> str:
    if isinstance(provider, AwsSource):
        return f"aws:{provider.endpoint or provider.region}"
    if isinstance(provider, GcpSource):
        return f"gcp:{provider.endpoint or 'secretmanager.googleapis.com'}:{provider.project}"
    return f"vault:{provider.address}"


class EndpointLimiter:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._limits = limits
        self._clock, self._sleep = clock, sleep
        self._slots = threading.BoundedSemaphore(max(1, limits.concurrency))
        self._lock = threading.Lock()
        self._burst = max(1.0, 2 * limits.rate)
        self._tokens = self._burst
        self._filled = clock()
        self._paused_until = 0.0

    def observe(self, error: ProviderError) -> None:
        """A throttled answer with a Retry-After pauses the whole endpoint for that long."""
        if isinstance(error, Throttled) and error.retry_after:
            with self._lock:
                self._paused_until = max(self._paused_until, self._clock() + error.retry_after)

    def _reserve(self, calls: int) -> float:
        """Take ``calls`` tokens (going into debt if need be); answer how long to wait for them."""
        with self._lock:
            now = self._clock()
            pause = max(0.0, self._paused_until - now)
            if self._limits.rate <= 0:
                return pause
            self._tokens = min(self._burst, self._tokens + (now - self._filled) * self._limits.rate)
            self._filled = now
            debt = calls - self._tokens
            wait = max(pause, debt / self._limits.rate if debt > 0 else 0.0)
            if wait > self._limits.max_wait:
                return wait  # not sent: no tokens taken
            self._tokens -= calls
            return wait

    @contextlib.contextmanager
    def slot(self, calls: int = 1) -> Iterator[None]:
        wait = self._reserve(calls)
        if wait > self._limits.max_wait:
            raise LimitReached(f"the operator's own limit for this provider endpoint is reached; "
                               f"next try in {wait:.0f} s or later", retry_after=wait)
        if wait > 0:
            self._sleep(wait)
        if not self._slots.acquire(timeout=self._limits.max_wait):
            raise LimitReached("the operator's own limit of concurrent calls to this provider endpoint is reached",
                               retry_after=self._limits.max_wait)
        try:
            yield
        finally:
            self._slots.release()


class Limiters:
    """One :class:`EndpointLimiter` per endpoint, made on first use; thread-safe."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, EndpointLimiter] = {}

    def for_provider(self, provider: ProviderConfig) -> EndpointLimiter:
        key = endpoint_of(provider)
        with self._lock:
            if key not in self._by_endpoint:
                self._by_endpoint[key] = EndpointLimiter(self._limits)
            return self._by_endpoint[key]
