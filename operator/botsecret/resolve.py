"""From a BotSecret's store references to the provider settings it may use.

A BotSecretStore is looked up in the BotSecret's own namespace only; a ClusterBotSecretStore
only if its conditions admit that namespace. Nothing is minted, read or sent for a source whose
store is missing, invalid or does not admit the namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from .providers.base import ProviderError, Unavailable
from .spec import InvalidSpec, ProviderConfig, Source, StoreKind
from .stores import StoreSpec, parse_store

__all__ = [
    "GROUP", "PLURALS", "ResolvedSource", "StoreError", "StoreKey", "StoreLookup", "resolve", "store_key",
    "stores_used",
]

GROUP, VERSION = "botsecret.dev", "v1alpha1"
PLURALS: dict[str, str] = {"BotSecretStore": "botsecretstores", "ClusterBotSecretStore": "clusterbotsecretstores"}

# (kind, namespace or "" for a cluster store, name)
StoreKey = tuple[str, str, str]


def store_key(kind: str, namespace: str | None, name: str) -> StoreKey:
    return (kind, (namespace or "") if kind == "BotSecretStore" else "", name)


class StoreError(ProviderError):
    """A source's store cannot be used; ``reason`` says why. Not a definite "not found" of data,
    so the last good Secret stays."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResolvedSource:
    source: Source
    index: int
    store: StoreSpec

    @property
    def provider(self) -> ProviderConfig:
        return self.store.provider

    @property
    def field(self) -> str:
        return f"spec.sources[{self.index}]"


class StoreLookup:
    """Store objects by name: what the watch on stores delivered, else a GET. Thread-safe.

    The watch keeps the copies fresh; the GET covers the moments before it has delivered a store
    (a BotSecret synced right after an operator start), so those never see a false "not found".
    """

    def __init__(self, api: Any) -> None:
        from kubernetes import client

        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._lock = threading.Lock()
        self._bodies: dict[StoreKey, Mapping[str, Any]] = {}

    def remember(self, key: StoreKey, body: Mapping[str, Any] | None) -> None:
        with self._lock:
            if body is None:
                self._bodies.pop(key, None)
            else:
                self._bodies[key] = body

    def get(self, key: StoreKey) -> Mapping[str, Any] | None:
        with self._lock:
            cached = self._bodies.get(key)
        if cached is not None:
            return cached
        kind, namespace, name = key
        body: Any
        try:
            if kind == "BotSecretStore":
                body = self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
            else:
                body = self._custom.get_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        found: dict[str, Any] = dict(body)
        self.remember(key, found)
        return found

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        meta: Any = self._core.read_namespace(namespace).metadata
        return dict(meta.labels or {})


def stores_used(body: Mapping[str, Any]) -> list[StoreKey]:
    """The stores a BotSecret's body names, read without parsing the rest of the spec."""
    namespace = (body.get("metadata") or {}).get("namespace", "")
    used = []
    for source in (body.get("spec") or {}).get("sources") or []:
        ref = source.get("storeRef") if isinstance(source, Mapping) else None
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            used.append(store_key(str(ref.get("kind") or "BotSecretStore"), namespace, ref["name"]))
    return used


def _resolve_one(lookup: StoreLookup, namespace: str, source: Source, index: int) -> ResolvedSource:
    ref = source.store
    where = f"spec.sources[{index}].storeRef"
    kind: StoreKind = ref.kind
    try:
        body = lookup.get(store_key(kind, namespace, ref.name))
    except ApiException as e:
        raise Unavailable(f"{where}: reading {ref} failed with HTTP {e.status}") from None
    if body is None:
        place = f" in namespace {namespace!r}" if kind == "BotSecretStore" else ""
        raise StoreError("StoreNotFound", f"{where}: {ref} not found{place}")
    try:
        store = parse_store(kind, body)
    except InvalidSpec as e:
        raise StoreError("StoreInvalid", f"{where}: {ref} is invalid: {e}") from None
    labels: Mapping[str, str] = {}
    if store.needs_namespace_labels:
        try:
            labels = lookup.namespace_labels(namespace)
        except ApiException as e:
            raise Unavailable(f"{where}: reading namespace {namespace!r} failed with HTTP {e.status}") from None
    if not store.admits(namespace, labels):
        raise StoreError("StoreNotAllowed",
                         f"{where}: {ref} does not admit namespace {namespace!r} (its spec.conditions)")
    return ResolvedSource(source=source, index=index, store=store)


def resolve(lookup: StoreLookup, namespace: str,
            sources: tuple[Source, ...]) -> dict[str, ResolvedSource | ProviderError]:
    """Each source's store, or why it cannot be used, by source name."""
    resolved: dict[str, ResolvedSource | ProviderError] = {}
    for index, source in enumerate(sources):
        try:
            resolved[source.name] = _resolve_one(lookup, namespace, source, index)
        except ProviderError as e:
            resolved[source.name] = e
    return resolved
