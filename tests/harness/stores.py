"""Stores for the tests, created as an admin would: the BotSecrets under test only name them.

Most tests are about syncing and restarting, not about stores, so they write a source's provider
settings beside the BotSecret for brevity; ``file_inline_sources`` turns each such source into a
BotSecretStore of the namespace (named after its settings, so equal settings share one store) and
the BotSecret the apiserver sees carries only ``storeRef``. Tests of the trust boundary create
their stores explicitly.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from .cluster_fixtures import Kube

GROUP, VERSION = "botsecret.dev", "v1alpha1"
PROVIDERS = ("aws", "gcp", "vault")


def _plain_http(provider: dict[str, Any]) -> bool:
    conf = next(iter(provider.values()))
    return any(str(conf.get(k, "")).startswith("http://") for k in ("endpoint", "stsEndpoint", "address"))


def store_body(kind: str, name: str, provider: dict[str, Any], *, allow_plain_http: bool | None = None,
               conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"provider": provider}
    if allow_plain_http if allow_plain_http is not None else _plain_http(provider):
        spec["insecureAllowPlainHTTP"] = True
    if conditions is not None:
        spec["conditions"] = conditions
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def create_store(kube: Kube, namespace: str, name: str, provider: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A BotSecretStore, replaced if it exists."""
    body = store_body("BotSecretStore", name, provider, **options)
    try:
        created: dict[str, Any] = kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "botsecretstores", body)
        return created
    except ApiException as e:
        if e.status != 409:
            raise
    patched: dict[str, Any] = kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "botsecretstores", name, {"spec": body["spec"]},
        _content_type="application/merge-patch+json")
    return patched


def create_cluster_store(kube: Kube, name: str, provider: dict[str, Any], conditions: list[dict[str, Any]],
                         **options: Any) -> dict[str, Any]:
    body = store_body("ClusterBotSecretStore", name, provider, conditions=conditions, **options)
    created: dict[str, Any] = kube.custom.create_cluster_custom_object(GROUP, VERSION, "clusterbotsecretstores", body)
    return created


def delete_cluster_store(kube: Kube, name: str) -> None:
    try:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "clusterbotsecretstores", name)
    except ApiException as e:
        if e.status != 404:
            raise


def get_store(kube: Kube, namespace: str | None, name: str) -> dict[str, Any]:
    found: dict[str, Any]
    if namespace is None:
        found = kube.custom.get_cluster_custom_object(GROUP, VERSION, "clusterbotsecretstores", name)
    else:
        found = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "botsecretstores", name)
    return found


def store_ref(name: str, kind: str = "BotSecretStore") -> dict[str, Any]:
    return {"kind": kind, "name": name}


def file_inline_sources(kube: Kube, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with every source that carries provider settings replaced by a reference to a
    BotSecretStore holding them."""
    if not spec.get("sources"):
        return spec
    spec = copy.deepcopy(spec)
    for source in spec["sources"]:
        kinds = [k for k in PROVIDERS if k in source]
        if not kinds or "storeRef" in source:
            continue
        provider = {k: source.pop(k) for k in kinds}
        digest = hashlib.sha256(json.dumps(provider, sort_keys=True).encode()).hexdigest()[:8]
        name = f"{source['name']}-{digest}"
        create_store(kube, namespace, name, provider)
        source["storeRef"] = store_ref(name)
    return spec
