"""Prometheus metrics. Labels carry kinds, reasons and the BotSecret's own namespace and name,
never names of remote secrets or values."""

from __future__ import annotations

import contextlib
import platform
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

from . import __version__

__all__ = [
    "BUILD",
    "CHANGE_EVENTS",
    "CHANGE_STREAM_FAILURES",
    "CHANGE_STREAM_HEALTHY",
    "LAST_SUCCESS",
    "LEADER",
    "PROVIDER_LOGINS",
    "PROVIDER_REQUESTS",
    "READY",
    "RESTARTS",
    "ROLLOUT_FAILURES",
    "SECRET_WRITES",
    "SHARED_READS",
    "SYNCS",
    "SYNC_SECONDS",
    "TOKEN_REQUESTS",
    "UNSYNCED",
    "UnsyncedChanges",
    "forget",
    "sync_outcome",
    "unsynced_change",
]

SYNCS = Counter("botsecret_syncs_total", "Syncs of BotSecrets, by outcome reason.", ["reason"])
SYNC_SECONDS = Histogram("botsecret_sync_duration_seconds", "Time of one sync cycle of one BotSecret.")
SECRET_WRITES = Counter("botsecret_secret_writes_total", "Writes of target Secrets (only when content differs).")
TOKEN_REQUESTS = Counter("botsecret_token_requests_total", "ServiceAccount tokens minted with TokenRequest.")
PROVIDER_LOGINS = Counter("botsecret_provider_logins_total",
                          "Exchanges of a token for provider credentials (STS, Vault login).", ["provider"])
# One sample per remote reference read (operation "read"), find listed (operation "list") or identity
# proven (operation "check"):
# what a provider was asked, whether it came as one batch call or one call per reference.
PROVIDER_REQUESTS = Counter(
    "botsecret_provider_requests_total",
    "Provider answers by provider (aws, gcp, vault), operation (read: one per remote reference; list: one per "
    "find; check) and result (ok, notfound, denied, throttled, unavailable).",
    ["provider", "operation", "result"])
# References answered from a read another BotSecret of the same identity made moments before.
SHARED_READS = Counter("botsecret_provider_shared_reads_total",
                       "Remote references answered from a recent read of the same identity, without a provider call.")
RESTARTS = Counter("botsecret_restarts_total", "Pod-template restarts of workloads.", ["kind"])
ROLLOUT_FAILURES = Counter("botsecret_rollout_failures_total",
                           "Rollouts after a restart that failed (progress deadline exceeded), by workload kind.",
                           ["kind"])
READY = Gauge("botsecret_ready", "1 when the BotSecret's last sync succeeded, else 0.", ["namespace", "name"])
LAST_SUCCESS = Gauge("botsecret_last_success_timestamp_seconds",
                     "Unix time of the BotSecret's last successful sync (written or not).", ["namespace", "name"])
# Change events (issue 12): the store label is "namespace/name" of a BotSecretStore or the name of
# a ClusterBotSecretStore; never a remote secret's name.
CHANGE_EVENTS = Counter(
    "botsecret_change_events_total",
    "Messages read from stores' change-event queues, by store and outcome (woke: it woke BotSecrets; "
    "unmatched: no BotSecret reads the secret; unrelated: an action that changes nothing; malformed: "
    "not a Secrets Manager event or notification).", ["store", "outcome"])
CHANGE_STREAM_HEALTHY = Gauge(
    "botsecret_change_stream_healthy",
    "1 while the last ReceiveMessage (or Pub/Sub Pull) of a store's change-event queue succeeded, else 0 "
    "(polling takes over).",
    ["store"])
CHANGE_STREAM_FAILURES = Counter(
    "botsecret_change_stream_failures_total",
    "Failed ReceiveMessage or DeleteMessageBatch (Pub/Sub: Pull or Acknowledge) calls of a store's change-event "
    "queue, by error class.",
    ["store", "error"])
BUILD = Info("botsecret_build", "The operator's version and Python.")
BUILD.info({"version": __version__, "python": platform.python_version()})




class UnsyncedChanges:
    """When each BotSecret's oldest change not yet synced was first seen: a spec edit, a force-sync
    or a failed sync since its last success. Kept per BotSecret, read as one age at scrape time,
    so an alert can say "a change has waited N minutes" without a series per BotSecret."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._since: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def seen(self, namespace: str, name: str) -> None:
        with self._lock:
            self._since.setdefault((namespace, name), self._clock())

    def synced(self, namespace: str, name: str) -> None:
        with self._lock:
            self._since.pop((namespace, name), None)

    def pending(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._since)

    def oldest_age(self) -> float:
        with self._lock:
            oldest = min(self._since.values(), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)


# reconcile.FORCE_SYNC_ANNOTATION; spelled out because reconcile sits above this module (a unit test keeps them equal).
FORCE_SYNC_ANNOTATION = "botsecret.dev/force-sync"


def unsynced_change(body: Mapping[str, Any]) -> bool:
    """Whether a BotSecret carries a change no sync has acted on: a generation its status has not
    observed, or a force-sync value not yet handled."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    force = (meta.get("annotations") or {}).get(FORCE_SYNC_ANNOTATION)
    return (meta.get("generation") != status.get("observedGeneration")
            or (force is not None and force != status.get("forceSyncHandled")))


UNSYNCED = UnsyncedChanges()
OLDEST_UNSYNCED_AGE = Gauge(
    "botsecret_oldest_unsynced_change_age_seconds",
    "Seconds since the oldest change not yet synced (a spec edit, a force-sync, or a failure since the "
    "BotSecret's last successful sync) was first seen; 0 when every BotSecret is synced.")
OLDEST_UNSYNCED_AGE.set_function(UNSYNCED.oldest_age)


def sync_outcome(namespace: str, name: str, ready: bool) -> None:
    READY.labels(namespace, name).set(1 if ready else 0)
    if ready:
        LAST_SUCCESS.labels(namespace, name).set(time.time())
        UNSYNCED.synced(namespace, name)
    else:
        UNSYNCED.seen(namespace, name)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted BotSecret's series, so a gone BotSecret does not read as not Ready for ever."""
    for gauge in (READY, LAST_SUCCESS):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
    UNSYNCED.synced(namespace, name)
LEADER = Gauge("botsecret_leader", "1 while this replica holds the leader Lease and reconciles, else 0.")
