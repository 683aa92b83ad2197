"""Which BotSecrets read which remote secrets through which store, so that a change event wakes
exactly those; and how often a BotSecret polls while events cover every reference it has.

Pure and in memory: every daemon records its BotSecret again on its first cycle after a restart.
Thread-safe (the kopf handlers record, the event loop looks up).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .event_messages import reference_matches
from .spec import InvalidSpec, parse_spec

__all__ = ["BotSecretKey", "ReferenceIndex", "References", "StoreKey", "poll_seconds", "references"]

BotSecretKey = tuple[str, str]  # (namespace, name)
StoreKey = tuple[str, str, str]  # (kind, namespace or "" for a cluster store, name), as resolve.store_key


@dataclass(frozen=True)
class References:
    """The remote names a BotSecret reads by name, per store, and the stores it lists (find):
    a listing may select a secret no event names, so those stores are never covered."""

    by_name: Mapping[StoreKey, frozenset[str]] = field(default_factory=dict)
    listed: frozenset[StoreKey] = frozenset()


def _store_key(kind: str, namespace: str, name: str) -> StoreKey:
    return (kind, namespace if kind == "BotSecretStore" else "", name)


def references(body: Mapping[str, Any]) -> References | None:
    """What a BotSecret's body reads; None when its spec is invalid (it reads nothing)."""
    meta = body.get("metadata") or {}
    try:
        spec = parse_spec(body.get("spec") or {}, name=str(meta.get("name", "")))
    except InvalidSpec:
        return None
    namespace = str(meta.get("namespace", ""))
    stores = {s.name: _store_key(s.store.kind, namespace, s.store.name) for s in spec.sources}
    by_name: dict[StoreKey, set[str]] = {}
    for item in spec.data:
        by_name.setdefault(stores[item.source], set()).add(item.remote.name)
    for whole in spec.data_from:
        by_name.setdefault(stores[whole.source], set()).add(whole.remote.name)
    return References(by_name={k: frozenset(v) for k, v in by_name.items()},
                      listed=frozenset(stores[f.source] for f in spec.finds))


def poll_seconds(refs: References | None, own: float, fallbacks: Mapping[StoreKey, float]) -> float:
    """How long a BotSecret waits between polls: its own interval, or, when every store it reads
    has a healthy event stream (``fallbacks``: such stores' fallback intervals), the shortest of
    their fallback intervals if that is longer than its own."""
    if refs is None or refs.listed or not refs.by_name:
        return own
    covered = [fallbacks.get(store) for store in refs.by_name]
    if any(seconds is None for seconds in covered):
        return own
    return max(own, min(seconds for seconds in covered if seconds is not None))


class ReferenceIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[BotSecretKey, References] = {}

    def record(self, botsecret: BotSecretKey, refs: References | None) -> None:
        with self._lock:
            if refs is None:
                self._refs.pop(botsecret, None)
            else:
                self._refs[botsecret] = refs

    def forget(self, botsecret: BotSecretKey) -> None:
        self.record(botsecret, None)

    def of(self, botsecret: BotSecretKey) -> References | None:
        with self._lock:
            return self._refs.get(botsecret)

    def referencing(self, store: StoreKey, event_keys: frozenset[str]) -> list[tuple[BotSecretKey, list[str]]]:
        """Each BotSecret that reads a secret the event names through ``store``, with the remote
        names (as the BotSecret wrote them) that match."""
        with self._lock:
            found = []
            for botsecret, refs in self._refs.items():
                names = sorted(n for n in refs.by_name.get(store, ()) if reference_matches(n, event_keys))
                if names:
                    found.append((botsecret, names))
        return sorted(found)
