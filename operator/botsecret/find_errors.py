"""Why a ``spec.dataFrom[].find`` gives no keys this time. Pure: names, never values."""

from __future__ import annotations

from .providers.base import ProviderError

__all__ = ["InvalidFind", "KeyConflict", "TooManyMatches"]


class TooManyMatches(ProviderError):
    """More remote secrets match than ``maxMatches`` allows; nothing is read or written."""

    reason = "TooManyMatches"


class KeyConflict(ProviderError):
    """Two remote secrets (or a find and another dataFrom entry) give the same Secret key."""

    reason = "KeyConflict"


class InvalidFind(ProviderError):
    """The find asks for something its store's provider cannot select by."""

    reason = "InvalidSpec"
