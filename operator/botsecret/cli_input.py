"""What `botsecret check` and `render` work on: a BotSecret with its stores, from a file or from
the cluster, and the clients to resolve it with the caller's kubeconfig.

A file holds one BotSecret and optionally the BotSecretStores, ClusterBotSecretStores and
credentials Secrets it uses; whatever the file lacks is read through the apiserver. The caller's
own cloud identity (ambient credentials) may be used: it is their machine and their identity.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .assemble import ProviderAnswers
from .connect import ProviderPool
from .providers.base import ProviderError, Unavailable
from .resolve import GROUP, VERSION, ResolvedSource, StoreKey, StoreLookup, resolve, store_key
from .spec import BotSecretSpec, InvalidSpec, parse_spec

__all__ = ["InputError", "Loaded", "from_cluster", "from_file", "read_botsecret"]


class InputError(Exception):
    """The input cannot be checked; the message names the file, document or field."""


@dataclass
class Loaded:
    name: str
    namespace: str
    spec: BotSecretSpec
    resolved: Mapping[str, ResolvedSource | ProviderError]
    pool: ProviderPool
    _listings: dict[int, tuple[str, ...] | ProviderError] | None = field(default=None, repr=False)

    def listings(self) -> dict[int, tuple[str, ...] | ProviderError]:
        """What each ``spec.dataFrom[].find`` lists, as the operator lists it (asked once)."""
        from .finding import list_finds

        if self._listings is None:
            self._listings = list_finds(self.pool, self.namespace, self.spec, self.resolved)
        return self._listings

    def answers(self) -> ProviderAnswers:
        from .finding import find_refs
        from .reconcile import fetch_answers

        return fetch_answers(self.pool, self.namespace, self.spec, self.resolved,
                             find_refs(self.spec, self.listings()))

    def close(self) -> None:
        self.pool.close()


class _FileSecrets:
    """The core API as the provider pool uses it, serving the file's Secrets first."""

    def __init__(self, core: Any, secrets: Mapping[tuple[str, str], Any]) -> None:
        self._core = core
        self._secrets = secrets

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        found = self._secrets.get((namespace, name))
        if found is not None:
            return found
        if self._core is None:
            raise ApiException(status=404, reason=f"Secret {name!r} is not in the file and there is no cluster")
        return self._core.read_namespaced_secret(name, namespace)

    def __getattr__(self, attribute: str) -> Any:
        if self._core is None:
            raise Unavailable("a ServiceAccount identity needs a cluster to mint its token: no kubeconfig found")
        return getattr(self._core, attribute)


class _FileStores(StoreLookup):
    """Stores of the file first, then of the cluster (when there is one)."""

    def __init__(self, api: Any, bodies: Mapping[StoreKey, Mapping[str, Any]], online: bool) -> None:
        super().__init__(api)
        self._file = dict(bodies)
        self._online = online

    def get(self, key: StoreKey) -> Mapping[str, Any] | None:
        if key in self._file:
            return self._file[key]
        return super().get(key) if self._online else None

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return super().namespace_labels(namespace) if self._online else {}


def _api() -> Any | None:
    from kubernetes.config import ConfigException

    from .runtime import api_client

    try:
        return api_client()
    except ConfigException:
        return None


def _secret_object(doc: Mapping[str, Any], where: str) -> Any:
    data: dict[str, bytes | str] = {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
    for key, text in (doc.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(text).encode()).decode()
    meta = doc.get("metadata") or {}
    return client.V1Secret(metadata=client.V1ObjectMeta(name=meta.get("name"), namespace=meta.get("namespace"),
                                                        resource_version=f"file:{where}"),
                           type=doc.get("type") or "Opaque", data=data)


def from_file(path: str, namespace: str | None) -> Loaded:
    import yaml

    try:
        text = Path(path).read_text() if path != "-" else sys.stdin.read()
        docs = [d for d in yaml.safe_load_all(text) if d]
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not YAML ({type(e).__name__})") from None
    botsecrets = [d for d in docs if isinstance(d, dict) and d.get("kind") == "BotSecret"]
    if len(botsecrets) != 1:
        raise InputError(f"{path}: holds {len(botsecrets)} documents of kind BotSecret; exactly one is needed")
    body = botsecrets[0]
    meta = body.get("metadata") or {}
    ns = namespace or meta.get("namespace") or "default"
    name = str(meta.get("name") or "")
    stores: dict[StoreKey, Mapping[str, Any]] = {}
    secrets: dict[tuple[str, str], Any] = {}
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise InputError(f"{path}: document {index} is not a mapping")
        kind, doc_meta = doc.get("kind"), doc.get("metadata") or {}
        if kind in ("BotSecretStore", "ClusterBotSecretStore"):
            body_ns = doc_meta.get("namespace") or ns
            stores[store_key(str(kind), body_ns, str(doc_meta.get("name") or ""))] = {
                **doc, "metadata": {**doc_meta, **({"namespace": body_ns} if kind == "BotSecretStore" else {})}}
        elif kind == "Secret":
            secrets[(doc_meta.get("namespace") or ns, str(doc_meta.get("name") or ""))] = _secret_object(
                doc, f"{path}#{index}")
    api = _api()
    lookup = _FileStores(api, stores, online=api is not None)
    core = _FileSecrets(client.CoreV1Api(api) if api is not None else None, secrets)
    return _loaded(name, ns, body, lookup, core)


def from_cluster(name: str, namespace: str) -> Loaded:
    api = _api()
    if api is None:
        raise InputError("no Kubernetes credentials: neither in-cluster nor a kubeconfig ($KUBECONFIG)")
    body = read_botsecret(client.CustomObjectsApi(api), namespace, name)
    return _loaded(name, namespace, body, StoreLookup(api), client.CoreV1Api(api))


def read_botsecret(custom: Any, namespace: str, name: str) -> dict[str, Any]:
    """A BotSecret from the apiserver, or an InputError that says why not."""
    try:
        body: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "botsecrets", name)
    except ApiException as e:
        if e.status == 404:
            raise InputError(f"BotSecret {name!r} not found in namespace {namespace!r}") from None
        raise InputError(f"reading BotSecret {name!r} failed with HTTP {e.status} {e.reason}") from None
    return body


def _loaded(name: str, namespace: str, body: Mapping[str, Any], lookup: StoreLookup, core: Any) -> Loaded:
    try:
        spec = parse_spec(body.get("spec") or {}, name=name)
    except InvalidSpec as e:
        raise InputError(f"BotSecret {name!r}: {e}") from None
    # The caller's own cloud identity may stand in where a store names none: it is theirs to use.
    pool = ProviderPool(core, ambient_namespaces=frozenset({"*"}))
    return Loaded(name, namespace, spec, resolve(lookup, namespace, spec.sources), pool)
