"""A provider client that counts what it answers, for ``botsecret_provider_requests_total``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import metrics
from .providers.base import AccessDenied, Fetched, NotFound, Provider, ProviderError, RemoteRef, Throttled
from .remote import FindQuery

__all__ = ["MeteredProvider", "result_label"]


def result_label(answer: Fetched | ProviderError) -> str:
    if isinstance(answer, Fetched):
        return "ok"
    if isinstance(answer, NotFound):
        return "notfound"
    if isinstance(answer, AccessDenied):
        return "denied"
    if isinstance(answer, Throttled):
        return "throttled"
    return "unavailable"


class MeteredProvider:
    """Wraps one client; counts each reference's answer, and a batch that failed whole once per reference."""

    def __init__(self, inner: Provider, provider: str) -> None:
        self._inner = inner
        self._provider = provider

    def __repr__(self) -> str:
        return f"Metered({self._inner!r})"

    def _count(self, operation: str, result: str, times: int = 1) -> None:
        metrics.PROVIDER_REQUESTS.labels(self._provider, operation, result).inc(times)

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        try:
            answers = self._inner.fetch(refs)
        except ProviderError as e:
            self._count("read", result_label(e), len(set(refs)))
            raise
        for answer in answers.values():
            self._count("read", result_label(answer))
        return answers

    def list_matching(self, query: FindQuery) -> list[str]:
        """The inner client's listing for ``spec.dataFrom[].find``, counted as one ``list`` call."""
        lister = getattr(self._inner, "list_matching", None)
        if lister is None:
            raise NotFound(f"{self._provider} stores cannot list secrets for find")
        try:
            names: list[str] = lister(query)
        except ProviderError as e:
            self._count("list", result_label(e))
            raise
        self._count("list", "ok")
        return names

    def check(self) -> str:
        try:
            proven = self._inner.check()
        except ProviderError as e:
            self._count("check", result_label(e))
            raise
        self._count("check", "ok")
        return proven

    def close(self) -> None:
        self._inner.close()
