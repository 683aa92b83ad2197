"""The one interface every provider module implements.

A provider fetches a batch of references from one remote store and answers, per reference,
either a value with its remote version id or a classified error. Errors carry names (remote
name, version), never values, and never the provider's raw message when that could echo data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..remote import RemoteRef
from ..values import SecretValue

__all__ = [
    "AccessDenied",
    "Fetched",
    "NotFound",
    "Provider",
    "ProviderError",
    "RemoteRef",
    "Throttled",
    "TlsError",
    "Unavailable",
]


@dataclass(frozen=True)
class Fetched:
    """A remote value and the provider's id for the version that was read."""

    value: SecretValue
    version: str


class ProviderError(Exception):
    """Base of the classified errors. The message must name things, never show values."""

    reason = "ProviderError"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class NotFound(ProviderError):
    """The remote secret or version definitely does not exist."""

    reason = "MissingKeys"


class AccessDenied(ProviderError):
    """The remote store refused the identity the BotSecret acts as."""

    reason = "AccessDenied"


class Unavailable(ProviderError):
    """Unreachable, throttled, timed out or any error that is not a definite answer."""

    reason = "ProviderError"


class Throttled(Unavailable):
    """The store answered that we ask too often: the next try must come later, not sooner."""


class TlsError(Unavailable):
    """The TLS handshake failed: the server's certificate is not trusted (no or a wrong CA), or
    the server does not speak TLS. Not a definite answer about the data."""


class Provider(Protocol):
    """One configured remote store, bound to one identity."""

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        """Read every reference; answer each with its value or its classified error.

        An error that affects the whole batch (the store is down, the identity is refused) may be
        raised instead of being repeated per reference.
        """
        ...

    def check(self) -> str:
        """Prove that the settings and the identity work, without reading any secret; answer what
        was proven. Raises the classified errors."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
