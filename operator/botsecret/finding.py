"""``spec.dataFrom[].find``: list each find's remote secrets before the fetch.

A listing names secrets, never values. It is bounded: more matches than ``maxMatches`` is an
error, and then nothing is read or written. Any listing error keeps the last good Secret (a
listing that failed says nothing about which secrets exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from .connect import ProviderPool
from .find_errors import InvalidFind, TooManyMatches
from .find_spec import FindItem
from .providers.base import ProviderError, RemoteRef, Unavailable
from .remote import FindQuery
from .resolve import ResolvedSource, StoreError
from .spec import BotSecretSpec, provider_kind

__all__ = ["Listings", "find_refs", "list_finds", "listing_failure"]

# Per find entry (by its index in spec.dataFrom): the matching remote names, sorted, or the error.
Listings = Mapping[int, tuple[str, ...] | ProviderError]


@runtime_checkable
class Lister(Protocol):
    def list_matching(self, query: FindQuery) -> list[str]: ...


def _lister(client: Any) -> Lister | None:
    """The first of ``client`` and the clients it wraps (``_inner``: metering, shared fetches) that
    can list; wrappers that only add to ``fetch`` need not forward ``list_matching`` themselves."""
    for _ in range(4):
        if isinstance(client, Lister):
            return client
        client = getattr(client, "_inner", None)
    return None


def _list_one(pool: ProviderPool, namespace: str, item: FindItem, source: ResolvedSource | ProviderError | None
              ) -> tuple[str, ...]:
    path = f"spec.dataFrom[{item.index}].find"
    if source is None:
        raise StoreError("StoreNotFound", f"source {item.source!r} is not in spec.sources")
    if isinstance(source, ProviderError):
        raise source
    kind = provider_kind(source.provider)
    if kind == "vault" and item.query.tags:
        raise InvalidFind(f"{path}.tags: Vault KV secrets carry no tags; select them by find.path or find.name.regexp")
    field = f"{source.store.kind} {source.store.name!r}: spec.provider.{kind}"
    client = _lister(pool.get(namespace, source.provider, field))
    if client is None:
        raise InvalidFind(f"{path}: {kind} stores cannot list secrets")
    names = sorted(set(client.list_matching(item.query)))
    if len(names) > item.query.max_matches:
        raise TooManyMatches(f"{path} matches more than {item.query.max_matches} remote secrets (maxMatches); "
                             "nothing was read or written: narrow the find or raise maxMatches (at most 1000)")
    return tuple(names)


def list_finds(pool: ProviderPool, namespace: str, spec: BotSecretSpec,
               resolved: Mapping[str, ResolvedSource | ProviderError]) -> dict[int, tuple[str, ...] | ProviderError]:
    listings: dict[int, tuple[str, ...] | ProviderError] = {}
    for item in spec.finds:
        try:
            listings[item.index] = _list_one(pool, namespace, item, resolved.get(item.source))
        except ProviderError as e:
            listings[item.index] = e
        except Exception as e:  # noqa: BLE001 - a bug in one provider must not stop the others; its text may echo data
            listings[item.index] = Unavailable(f"source {item.source!r}: unexpected {type(e).__name__} listing")
    return listings


def listing_failure(spec: BotSecretSpec, listings: Listings) -> tuple[ProviderError, str] | None:
    """The first failed listing and the message to show for it."""
    for item in spec.finds:
        got = listings.get(item.index)
        if isinstance(got, ProviderError):
            return got, f"source {item.source!r}: spec.dataFrom[{item.index}].find: {got.message}" \
                if not got.message.startswith("spec.dataFrom[") else got.message
    return None


def find_refs(spec: BotSecretSpec, listings: Listings) -> dict[str, list[RemoteRef]]:
    """The remote secrets each source must read for the finds, by source name."""
    refs: dict[str, list[RemoteRef]] = {}
    for item in spec.finds:
        got = listings.get(item.index)
        if isinstance(got, tuple):
            wanted = refs.setdefault(item.source, [])
            wanted += [RemoteRef(name) for name in got if RemoteRef(name) not in wanted]
    return refs
