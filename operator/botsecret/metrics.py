"""Prometheus metrics. Labels carry kinds and reasons, never names of remote secrets or values."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["LEADER", "PROVIDER_LOGINS", "RESTARTS", "SECRET_WRITES", "SYNCS", "SYNC_SECONDS", "TOKEN_REQUESTS"]

SYNCS = Counter("botsecret_syncs_total", "Syncs of BotSecrets, by outcome reason.", ["reason"])
SYNC_SECONDS = Histogram("botsecret_sync_duration_seconds", "Time of one sync cycle of one BotSecret.")
SECRET_WRITES = Counter("botsecret_secret_writes_total", "Writes of target Secrets (only when content differs).")
TOKEN_REQUESTS = Counter("botsecret_token_requests_total", "ServiceAccount tokens minted with TokenRequest.")
PROVIDER_LOGINS = Counter("botsecret_provider_logins_total",
                          "Exchanges of a token for provider credentials (STS, Vault login).", ["provider"])
RESTARTS = Counter("botsecret_restarts_total", "Pod-template restarts of workloads.", ["kind"])
LEADER = Gauge("botsecret_leader", "1 while this replica holds the leader Lease and reconciles, else 0.")
