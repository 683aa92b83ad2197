"""The workloads of a namespace that opt in to restarts by annotation (``botsecret.dev/restart-on``).

Opting in is an annotation, which no server-side selector can filter on, so finding them means
listing the namespace's Deployments, StatefulSets and DaemonSets. One listing per namespace is
kept for a few seconds and shared by all its BotSecrets (an idle fleet of a thousand BotSecrets in
ten namespaces lists ten times, not three thousand), and read as raw JSON, not as the client's
models (their deserialisation was a third of the operator's busy CPU), and as metadata only: the
full body is read just for the few that carry the annotation. A cycle that may restart
or follows a rollout asks for a ``fresh`` listing, so a restart decision never rests on an old one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .spec import BUILTIN_WORKLOAD_KINDS
from .workloads import RESTART_ON_ANNOTATION

__all__ = ["KINDS", "LISTING_TTL_SECONDS", "OptInListing"]

KINDS = BUILTIN_WORKLOAD_KINDS
LISTING_TTL_SECONDS = 10.0
_LIST = {"Deployment": "list_namespaced_deployment", "StatefulSet": "list_namespaced_stateful_set",
         "DaemonSet": "list_namespaced_daemon_set"}
_READ = {"Deployment": "read_namespaced_deployment", "StatefulSet": "read_namespaced_stateful_set",
         "DaemonSet": "read_namespaced_daemon_set"}
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class OptInListing:
    """Thread-safe; one listing in flight per namespace."""

    def __init__(self, api: Any, ttl: float = LISTING_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._apps = client.AppsV1Api(api)
        self._ttl, self._clock = ttl, clock
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, list[tuple[str, dict[str, Any]]]]] = {}
        self._listing: dict[str, threading.Lock] = {}

    def get(self, namespace: str, *, fresh: bool) -> list[tuple[str, dict[str, Any]]]:
        """(kind, body in the API's camelCase) of every workload that carries the annotation."""
        asked = self._clock()
        with self._lock:
            lock = self._listing.setdefault(namespace, threading.Lock())
        with lock:
            with self._lock:
                kept = self._kept.get(namespace)
            # A listing that started after this call is as fresh as one of its own.
            if kept is not None and (kept[0] >= asked or (not fresh and asked - kept[0] < self._ttl)):
                return kept[1]
            started = self._clock()
            found = [(kind, body) for kind in KINDS for name in self._opted_in_names(kind, namespace)
                     if (body := self._read(kind, namespace, name)) is not None]
            with self._lock:
                self._kept[namespace] = (started, found)
                self._sweep(started)
            return found

    def _opted_in_names(self, kind: str, namespace: str) -> list[str]:
        # Metadata only (a PartialObjectMetadataList): the annotation is all that decides, and a
        # namespace of 250 Deployments is a megabyte of JSON in full (16 % of the operator's CPU at
        # N = 1,000 went to decoding those lists).
        response: Any = getattr(self._apps, _LIST[kind])(namespace, _preload_content=False,
                                                          _headers={"Accept": METADATA_ONLY})
        items: list[dict[str, Any]] = json.loads(response.data).get("items") or []
        return [str(meta.get("name")) for item in items
                if RESTART_ON_ANNOTATION in ((meta := item.get("metadata") or {}).get("annotations") or {})]

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response: Any = getattr(self._apps, _READ[kind])(name, namespace, _preload_content=False)
        except ApiException as e:
            if e.status == 404:  # deleted since the listing
                return None
            raise
        body: dict[str, Any] = json.loads(response.data)
        return body

    def _sweep(self, now: float) -> None:
        # Namespaces not asked about for a while (deleted, or their BotSecrets gone).
        stale = [ns for ns, (at, _) in self._kept.items() if now - at > 100 * self._ttl]
        for namespace in stale:
            del self._kept[namespace]
