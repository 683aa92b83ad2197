"""Prometheus metrics. Labels carry kinds, reasons and the BotSecret's own namespace and name,
never names of remote secrets or values."""

from __future__ import annotations

import contextlib
import platform
import time

from prometheus_client import Counter, Gauge, Histogram, Info

from . import __version__

__all__ = [
    "BUILD",
    "LAST_SUCCESS",
    "LEADER",
    "PROVIDER_LOGINS",
    "PROVIDER_REQUESTS",
    "READY",
    "RESTARTS",
    "ROLLOUT_FAILURES",
    "SECRET_WRITES",
    "SYNCS",
    "SYNC_SECONDS",
    "TOKEN_REQUESTS",
    "forget",
    "sync_outcome",
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
RESTARTS = Counter("botsecret_restarts_total", "Pod-template restarts of workloads.", ["kind"])
ROLLOUT_FAILURES = Counter("botsecret_rollout_failures_total",
                           "Rollouts after a restart that failed (progress deadline exceeded), by workload kind.",
                           ["kind"])
READY = Gauge("botsecret_ready", "1 when the BotSecret's last sync succeeded, else 0.", ["namespace", "name"])
LAST_SUCCESS = Gauge("botsecret_last_success_timestamp_seconds",
                     "Unix time of the BotSecret's last successful sync (written or not).", ["namespace", "name"])
BUILD = Info("botsecret_build", "The operator's version and Python.")
BUILD.info({"version": __version__, "python": platform.python_version()})


def sync_outcome(namespace: str, name: str, ready: bool) -> None:
    READY.labels(namespace, name).set(1 if ready else 0)
    if ready:
        LAST_SUCCESS.labels(namespace, name).set(time.time())


def forget(namespace: str, name: str) -> None:
    """Drop a deleted BotSecret's series, so a gone BotSecret does not read as not Ready for ever."""
    for gauge in (READY, LAST_SUCCESS):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
LEADER = Gauge("botsecret_leader", "1 while this replica holds the leader Lease and reconciles, else 0.")
