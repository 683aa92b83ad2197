"""The operator's long-lived collaborators: API clients, provider pool, the HMAC key.

Built once at startup and shared by every BotSecret's handlers.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets as random_secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .connect import ProviderPool
from .dependents import Dependents
from .event_index import ReferenceIndex
from .limits import Limits
from .optin import OptInListing
from .reconcile import SyncContext
from .resolve import StoreLookup

__all__ = [
    "HMAC_KEY_SECRET",
    "OperatorConfig",
    "OperatorNamespaceMissing",
    "Released",
    "Runtime",
    "count_botsecrets",
    "load_or_create_hmac_key",
]

HMAC_KEY_SECRET = "botsecret-operator-hmac-key"


class OperatorNamespaceMissing(Exception):
    """The namespace for the operator's own HMAC key Secret does not exist."""

    def __init__(self, namespace: str) -> None:
        super().__init__(
            f"the operator's namespace {namespace!r} does not exist: create it "
            f"(kubectl create namespace {namespace}) or name an existing one with --operator-namespace "
            "(or the environment variable BOTSECRET_NAMESPACE, else POD_NAMESPACE)")
        self.namespace = namespace


class Released:
    """UIDs of the BotSecrets whose Secret has been released, so that no later cycle writes for them.

    A cycle can only come after release while its daemon still lives, which kopf ends a few
    seconds after the deletion; an hour is ample, and keeps the record from growing for ever.
    """

    KEEP_SECONDS = 3600.0

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, uid: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._at = {u: t for u, t in self._at.items() if now - t < self.KEEP_SECONDS}
            self._at[uid] = now

    def has(self, uid: str) -> bool:
        with self._lock:
            return uid in self._at


def _names(text: str | None) -> frozenset[str]:
    return frozenset(n.strip() for n in (text or "").split(",") if n.strip())


@dataclass(frozen=True)
class OperatorConfig:
    namespace: str = "botsecret-system"
    provider_timeout: float = 10.0
    # Threads for sync cycles and store checks. Each blocks for up to the provider timeout on a
    # slow or black-holed endpoint; asyncio's default pool (cores + 4 threads) would let a handful
    # of stuck BotSecrets stall every other one.
    sync_threads: int = 64
    # Namespaces whose BotSecrets may use the operator's own cloud identity ("*": all). Empty by
    # default: a BotSecret acts as its own namespace's identity or not at all.
    ambient_namespaces: frozenset[str] = frozenset()
    # Per provider endpoint: calls at once, and calls a second (0: unlimited).
    provider_concurrency: int = 16
    provider_rate: float = 50.0

    @property
    def limits(self) -> Limits:
        return Limits(concurrency=self.provider_concurrency, rate=self.provider_rate, max_wait=self.provider_timeout)

    @classmethod
    def from_environment(cls) -> OperatorConfig:
        return cls(
            namespace=os.environ.get("BOTSECRET_NAMESPACE") or os.environ.get("POD_NAMESPACE") or cls.namespace,
            provider_timeout=float(os.environ.get("BOTSECRET_PROVIDER_TIMEOUT", cls.provider_timeout)),
            sync_threads=int(os.environ.get("BOTSECRET_SYNC_THREADS", cls.sync_threads)),
            ambient_namespaces=_names(os.environ.get("BOTSECRET_AMBIENT_NAMESPACES")),
            provider_concurrency=int(os.environ.get("BOTSECRET_PROVIDER_CONCURRENCY", cls.provider_concurrency)),
            provider_rate=float(os.environ.get("BOTSECRET_PROVIDER_RATE", cls.provider_rate)),
        )


def api_client(connections: int | None = None) -> Any:
    """The API client. ``connections``: keep-alive connections to the apiserver to keep, one per
    thread that may call at once; urllib3's default of 10 made 64 sync threads discard a
    connection after most requests and pay a new TLS handshake for the next."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def count_botsecrets(api: Any) -> int:
    """How many BotSecrets there are, from one list of one item (its remainingItemCount)."""
    try:
        response: Any = client.CustomObjectsApi(api).list_cluster_custom_object(
            "botsecret.dev", "v1alpha1", "botsecrets", limit=1, _preload_content=False)
        page = json.loads(response.data)
    except (ApiException, ValueError):
        return 0  # e.g. an operator limited to some namespaces may not list cluster-wide
    return len(page.get("items") or []) + int((page.get("metadata") or {}).get("remainingItemCount") or 0)


def load_or_create_hmac_key(core: Any, namespace: str) -> bytes:
    """The key of every HMAC the operator writes; created once, kept in a Secret of its namespace."""
    try:
        secret = core.read_namespaced_secret(HMAC_KEY_SECRET, namespace)
        return base64.b64decode(secret.data["key"])
    except ApiException as e:
        if e.status != 404:
            raise
    key = random_secrets.token_bytes(32)
    body = {
        "metadata": {"name": HMAC_KEY_SECRET, "labels": {"app.kubernetes.io/managed-by": "botsecret-operator"}},
        "type": "Opaque",
        # Immutable: a changed key would make every stored HMAC look like new data.
        "immutable": True,
        "data": {"key": base64.b64encode(key).decode("ascii")},
    }
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as e:
        if e.status == 404:  # a create answers 404 only for a missing namespace
            raise OperatorNamespaceMissing(namespace) from None
        if e.status != 409:
            raise
        # Another replica won the race; use its key.
        return base64.b64decode(core.read_namespaced_secret(HMAC_KEY_SECRET, namespace).data["key"])
    return key


@dataclass
class Runtime:
    settings: OperatorConfig
    api: Any
    hmac_key: bytes = field(repr=False)
    pool: ProviderPool = field(repr=False)
    stores: StoreLookup = field(repr=False)
    dependents: Dependents = field(default_factory=lambda: Dependents(), repr=False)
    references: ReferenceIndex = field(default_factory=ReferenceIndex, repr=False)
    released: Released = field(default_factory=Released, repr=False)
    started_at: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    # BotSecrets that existed at start (0 if they could not be counted): sizes the start-up spread.
    fleet_size: int = 0
    opt_in_listing: OptInListing | None = field(default=None, repr=False)

    @classmethod
    def start(cls, settings: OperatorConfig) -> Runtime:
        api = api_client(connections=settings.sync_threads + 8)  # + the store watch and handlers
        core = client.CoreV1Api(api)
        key = load_or_create_hmac_key(core, settings.namespace)
        pool = ProviderPool(core, timeout=settings.provider_timeout, ambient_namespaces=settings.ambient_namespaces,
                            limits=settings.limits)
        return cls(settings, api, key, pool, StoreLookup(api), fleet_size=count_botsecrets(api),
                   opt_in_listing=OptInListing(api))

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def sync_context(self) -> SyncContext:
        return SyncContext(core=self.core, pool=self.pool, stores=self.stores, hmac_key=self.hmac_key)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            "botsecret.dev", "v1alpha1", namespace, "botsecrets", name, {"status": status},
            _content_type="application/merge-patch+json",
        )

    def close(self) -> None:
        self.pool.close()
        self.api.close()
