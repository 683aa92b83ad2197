"""Whether a store can authenticate, as its Ready condition says; and the versions of the Secrets
it names, so that a rotated credential is noticed without any list or watch on Secrets.

Plain functions over the provider pool and the core API; the schedule lives in store_watch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import secrets
from .connect import ProviderPool
from .providers.base import ProviderError
from .spec import AwsSource, GcpSource, InvalidSpec, SecretRef, StoreKind, VaultSource, provider_kind
from .status import condition
from .stores import StoreSpec, parse_store

__all__ = ["StoreCheck", "check_store", "secret_refs", "secret_versions", "store_status_patch"]


@dataclass(frozen=True)
class StoreCheck:
    status: str  # "True" | "False"
    reason: str
    message: str


def secret_refs(store: StoreSpec) -> list[SecretRef]:
    conf = store.provider
    refs = [conf.credentials_secret] if conf.credentials_secret else []
    if isinstance(conf, VaultSource) and conf.ca_secret:
        refs.append(conf.ca_secret)
    return refs


def secret_versions(core: Any, refs: list[SecretRef]) -> tuple[str | None, ...]:
    """The resourceVersion of each Secret (``None`` when absent or unreadable): one GET by name each."""
    versions: list[str | None] = []
    for ref in refs:
        try:
            secret = secrets.read(core, ref.namespace, ref.name)
        except ApiException:
            secret = None
        versions.append(secret.metadata.resource_version if secret is not None else None)
    return tuple(versions)


def _per_namespace_identity(store: StoreSpec) -> str | None:
    """Why a cluster store can only be checked for a consuming namespace, or ``None``."""
    conf = store.provider
    if store.kind != "ClusterBotSecretStore":
        return None
    account = getattr(conf, "service_account_name", None)
    if account:
        return (f"authenticates as the ServiceAccount {account!r} of each namespace that uses "
                "it; checked on each BotSecret's sync")
    if isinstance(conf, AwsSource | GcpSource) and conf.credentials_secret is None and not (
            isinstance(conf, GcpSource) and (conf.endpoint or "").lower().startswith("http://")):
        return "uses the operator's own (ambient) credentials, allowed per namespace; checked on each BotSecret's sync"
    return None


def check_store(pool: ProviderPool, kind: StoreKind, body: Mapping[str, Any]) -> StoreCheck:
    try:
        store = parse_store(kind, body)
    except InvalidSpec as e:
        return StoreCheck("False", "InvalidStore", str(e))
    deferred = _per_namespace_identity(store)
    if deferred is not None:
        return StoreCheck("True", "ValidationUnknown", deferred)
    field = f"spec.provider.{provider_kind(store.provider)}"
    try:
        # A namespaced store acts as its own namespace; a cluster store here has static credentials.
        provider = pool.get(store.namespace or "", store.provider, field)
        proven = provider.check()
    except ProviderError as e:
        return StoreCheck("False", e.reason, e.message)
    except Exception as e:  # noqa: BLE001 - a bug in one provider must not stop the checks of others
        return StoreCheck("False", "ProviderError", f"{field}: unexpected {type(e).__name__}")
    return StoreCheck("True", "Valid", f"{provider_kind(store.provider)} store: {proven}")


def store_status_patch(current: Mapping[str, Any], check: StoreCheck, *, generation: int,
                       now: str) -> dict[str, Any] | None:
    """The merge patch for a store's status, or ``None`` when nothing would change."""
    previous = next((c for c in current.get("conditions") or [] if c.get("type") == "Ready"), None)
    ready = condition("Ready", check.status, check.reason, check.message, generation=generation, now=now,
                      previous=previous)
    patch = {"observedGeneration": generation, "conditions": [ready]}
    if current.get("observedGeneration") == generation and previous is not None and all(
            previous.get(k) == ready[k] for k in ("status", "reason", "message")):
        return None
    return patch
