"""Leader election on a ``coordination.k8s.io`` Lease, so that of several replicas exactly one reconciles.

The rules are client-go's: a Lease is free when it names no holder, or when its record has not
changed for ``duration`` seconds as this process observed it (its own clock, so that clocks
need not agree); a holder that cannot renew within ``renew_deadline`` stops at once, before
anyone else may take over. Every write is an update at the resourceVersion read, so two
candidates cannot both win.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from .metrics import LEADER

__all__ = ["Elector", "LeaseConfig", "LeaseNamespaceMissing", "Observed", "default_identity", "pod_name"]

logger = logging.getLogger("botsecret.leader")


class LeaseNamespaceMissing(Exception):
    """The Lease's namespace does not exist (a create answered 404)."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.namespace = namespace


def pod_name() -> str:
    """The Pod's name (the chart sets POD_NAME; a Pod's HOSTNAME is its name too), else the host's."""
    return os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()


def default_identity() -> str:
    """The Pod's name with a random part: a restarted process never mistakes its predecessor's
    Lease for its own."""
    return f"{pod_name()}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str = "botsecret-operator"
    identity: str = field(default_factory=default_identity)
    duration: float = 15.0

    @property
    def renew_deadline(self) -> float:
        # client-go's 15/10/2 proportions: a holder gives up well before others may take over.
        return self.duration * 2 / 3

    @property
    def retry_period(self) -> float:
        return self.duration * 2 / 15


@dataclass
class Observed:
    """The last Lease record seen and when (monotonic), to decide expiry on this process's clock."""

    record: tuple[Any, ...] | None = None
    at: float = 0.0

    def see(self, record: tuple[Any, ...], now: float) -> None:
        if record != self.record:
            self.record, self.at = record, now

    def held_by_other(self, holder: str | None, me: str, duration: float, now: float) -> bool:
        return bool(holder) and holder != me and now < self.at + duration


def _micro_time(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    """Acquires, renews and releases one Lease through ``coordination`` (a CoordinationV1Api)."""

    def __init__(self, coordination: Any, config: LeaseConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.config, self.clock = coordination, config, clock
        self.observed = Observed()
        self.renewed_at = 0.0
        self.superseded = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"Lease {self.config.namespace}/{self.config.name}"

    def try_acquire_or_renew(self) -> bool:
        """One attempt; answers whether this process holds the Lease now."""
        cfg, now = self.config, self.clock()
        wall = _micro_time(datetime.datetime.now(datetime.UTC))
        timeout = max(1.0, cfg.retry_period * 2)
        try:
            lease = self.api.read_namespaced_lease(cfg.name, cfg.namespace, _request_timeout=timeout)
        except ApiException as e:
            if e.status != 404:
                raise
            return self._create(wall, now, timeout)
        spec = lease.spec
        holder = spec.holder_identity
        self.observed.see((holder, spec.renew_time, spec.lease_duration_seconds, spec.lease_transitions), now)
        if self.observed.held_by_other(holder, cfg.identity, float(spec.lease_duration_seconds or cfg.duration), now):
            self.superseded = self.renewed_at > 0  # someone took it while this process was stalled
            return False
        taking = holder != cfg.identity
        acquired = wall if taking else _micro_time(spec.acquire_time or datetime.datetime.now(datetime.UTC))
        body = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace,
                         "resourceVersion": lease.metadata.resource_version},
            "spec": {
                "holderIdentity": cfg.identity,
                "leaseDurationSeconds": round(cfg.duration),
                "acquireTime": acquired,
                "renewTime": wall,
                "leaseTransitions": (spec.lease_transitions or 0) + (1 if taking and holder else 0),
            },
        }
        try:
            self.api.replace_namespaced_lease(cfg.name, cfg.namespace, body, _request_timeout=timeout)
        except ApiException as e:
            if e.status == 409:  # another candidate wrote first
                return False
            raise
        self.renewed_at = now
        if taking:
            logger.info(f"leader election: became the leader of {self.where} as {cfg.identity}")
        return True

    def _create(self, wall: str, now: float, timeout: float) -> bool:
        cfg = self.config
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace,
                             "labels": {"app.kubernetes.io/name": "botsecret-operator"}},
                "spec": {"holderIdentity": cfg.identity, "leaseDurationSeconds": round(cfg.duration),
                         "acquireTime": wall, "renewTime": wall, "leaseTransitions": 0}}
        try:
            self.api.create_namespaced_lease(cfg.namespace, body, _request_timeout=timeout)
        except ApiException as e:
            if e.status == 409:
                return False
            if e.status == 404:  # a create answers 404 only for a missing namespace
                raise LeaseNamespaceMissing(cfg.namespace) from None
            raise
        self.renewed_at = now
        logger.info(f"leader election: became the leader of {self.where} (created it) as {cfg.identity}")
        return True

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except LeaseNamespaceMissing:
            raise
        except ApiException as e:
            hint = " (the operator's Role must allow get, create and update on leases)" if e.status == 403 else ""
            logger.warning(f"leader election: {self.where}: HTTP {e.status} {e.reason}{hint}")
        except Exception as e:  # noqa: BLE001 - a network error: retry, as for any API error
            logger.warning(f"leader election: {self.where}: {type(e).__name__}")
        return False

    def acquire(self) -> None:
        """Block until this process holds the Lease."""
        LEADER.set(0)
        if not self._attempt():
            holder = self.observed.record[0] if self.observed.record else None
            logger.info(f"leader election: standing by as {self.config.identity}; {self.where} is held by {holder}")
            while not self._attempt():
                time.sleep(self.config.retry_period * random.uniform(1.0, 1.2))
        LEADER.set(1)

    def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew in a thread; call ``on_lost`` once renewing has failed for ``renew_deadline``."""

        def renew() -> None:
            while not self._stop.wait(self.config.retry_period):
                if self._attempt():
                    continue
                if self.superseded or self.clock() - self.renewed_at > self.config.renew_deadline:
                    LEADER.set(0)
                    on_lost()
                    return

        self._thread = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and free the Lease, so that a standby takes over at once, not after it expires."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.retry_period * 3)
        cfg = self.config
        try:
            lease = self.api.read_namespaced_lease(cfg.name, cfg.namespace, _request_timeout=5)
            if lease.spec.holder_identity != cfg.identity:
                return
            wall = _micro_time(datetime.datetime.now(datetime.UTC))
            self.api.replace_namespaced_lease(cfg.name, cfg.namespace, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace,
                             "resourceVersion": lease.metadata.resource_version},
                "spec": {"holderIdentity": None, "leaseDurationSeconds": 1, "acquireTime": wall, "renewTime": wall,
                         "leaseTransitions": lease.spec.lease_transitions or 0},
            }, _request_timeout=5)
        except Exception as e:  # noqa: BLE001 - the Lease then expires on its own
            logger.warning(f"leader election: releasing {self.where} failed: {type(e).__name__}")
            return
        finally:
            LEADER.set(0)
        logger.info(f"leader election: released the Lease {cfg.namespace}/{cfg.name}")
