"""Checks shared by the provider tests."""

from __future__ import annotations

from collections.abc import Mapping

from botsecret.providers.base import Fetched, ProviderError


def fetched(result: Fetched | ProviderError) -> Fetched:
    assert isinstance(result, Fetched), f"expected a value, got {result!r}"
    return result


def assert_no_leak(things: object, *values: str) -> None:
    """Neither the repr of ``things`` nor any error message in it shows a stored value."""
    texts = [repr(things), str(things)]
    if isinstance(things, Mapping):
        texts += [str(v) for v in things.values() if isinstance(v, ProviderError)]
        texts += [v.message for v in things.values() if isinstance(v, ProviderError)]
    for value in values:
        for text in texts:
            assert value.strip() not in text
