"""What the scale benchmark reads off the world: watches of BotSecrets and Deployments (with the
arrival time of each change), the apiserver's audit log, the operator's metrics and /proc."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.harness.cluster import OPERATOR_USER
from tests.harness.cluster_fixtures import Kube

RESTART_PREFIX = "restarted-for.botsecret.dev/"


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (body.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


class FleetWatch:
    """One cluster-wide watch per kind, with a label selector; keeps the latest state per object
    and the arrival time of each BotSecret's Ready and each Deployment's template mark."""

    def __init__(self, kube: Kube, label: str) -> None:
        self._kube, self._label = kube, label
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self.ready: dict[tuple[str, str], bool] = {}
        self.ready_at: dict[tuple[str, str], float] = {}
        self.rollout_done: dict[tuple[str, str], bool] = {}
        self.marks: dict[tuple[str, str], str | None] = {}
        self.mark_changes: list[tuple[float, tuple[str, str]]] = []
        self._watches: list[watch.Watch] = []
        self._threads = [
            threading.Thread(target=self._run, args=("botsecrets",), daemon=True),
            threading.Thread(target=self._run, args=("deployments",), daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()
        for thread in self._threads:
            thread.join(5)

    def _lister(self, kind: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if kind == "botsecrets":
            return self._kube.custom.list_cluster_custom_object, ("botsecret.dev", "v1alpha1", "botsecrets")
        return self._kube.apps.list_deployment_for_all_namespaces, ()

    def _run(self, kind: str) -> None:
        fn, args = self._lister(kind)
        version: str | None = None
        while not self._stop.is_set():
            w = watch.Watch()
            self._watches.append(w)
            kwargs: dict[str, Any] = {"label_selector": self._label, "timeout_seconds": 300}
            if version:
                kwargs["resource_version"] = version
            try:
                for event in w.stream(fn, *args, **kwargs):
                    arrived = time.monotonic()
                    obj = event["object"]
                    if kind == "botsecrets":
                        version = obj["metadata"]["resourceVersion"]
                        self._botsecret(arrived, event["type"], obj)
                    else:
                        version = obj.metadata.resource_version
                        self._deployment(arrived, obj)
                    if self._stop.is_set():
                        break
            except ApiException as e:
                if e.status == 410:
                    version = None
                else:
                    time.sleep(0.2)  # back-off before reopening the watch
            except (urllib3.exceptions.HTTPError, OSError):
                time.sleep(0.2)

    def _botsecret(self, arrived: float, kind: str, obj: dict[str, Any]) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self._lock:
            if kind == "DELETED":
                return
            ready = _condition(obj, "Ready").get("status") == "True"
            if ready and key not in self.ready_at:
                self.ready_at[key] = arrived
            self.ready[key] = ready
            self.rollout_done[key] = _condition(obj, "RolloutComplete").get("status") == "True"
            self._lock.notify_all()

    def _deployment(self, arrived: float, obj: Any) -> None:
        key = (obj.metadata.namespace, obj.metadata.name)
        annotations = obj.spec.template.metadata.annotations or {}
        mark = next((v for k, v in annotations.items() if k.startswith(RESTART_PREFIX)), None)
        with self._lock:
            if key in self.marks and self.marks[key] != mark:
                self.mark_changes.append((arrived, key))
            self.marks[key] = mark
            self._lock.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(predicate, timeout)

    def count_ready(self) -> int:
        return sum(1 for ready in self.ready.values() if ready)

    def count_settled(self) -> int:
        return sum(1 for key, ready in self.ready.items() if ready and self.rollout_done.get(key))

    def changes_since(self, moment: float) -> list[tuple[float, tuple[str, str]]]:
        with self._lock:
            return [c for c in self.mark_changes if c[0] >= moment]


class AuditLogRotated(RuntimeError):
    """The apiserver rotated its audit log after the mark: what happened since cannot be counted."""


class Audit:
    """The operator's requests in the apiserver's audit log, read from a remembered offset."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._inode: int | None = None

    def mark(self) -> None:
        stat = self._path.stat() if self._path.exists() else None
        self._offset = stat.st_size if stat else 0
        self._inode = stat.st_ino if stat else None

    def _check_not_rotated(self) -> None:
        # The apiserver renames a full log and starts a new one; reading the new one from the old
        # offset would count nothing at all, a figure of 0 that is false.
        if self._inode is not None and self._path.stat().st_ino != self._inode:
            raise AuditLogRotated(f"the audit log {self._path} was rotated after the mark; "
                                  "its counts since then are incomplete")

    def events(self, offset: int | None = None) -> list[dict[str, Any]]:
        """Every complete audit event from ``offset`` (default: the mark) on."""
        self._check_not_rotated()
        found: list[dict[str, Any]] = []
        with self._path.open("rb") as log:
            log.seek(self._offset if offset is None else offset)
            for line in log:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue  # a line still being written
        return found

    def position(self) -> int:
        return self._path.stat().st_size if self._path.exists() else 0

    def operator_events(self) -> Counter[tuple[str, str, str]]:
        """The Events the operator created since the mark, by (namespace, object name, reason)."""
        found: Counter[tuple[str, str, str]] = Counter()
        for event in self.events():
            ref = event.get("objectRef") or {}
            if ((event.get("user") or {}).get("username") != OPERATOR_USER or event.get("verb") != "create"
                    or ref.get("resource") != "events" or event.get("stage") != "ResponseComplete"):
                continue
            posted = event.get("requestObject") or {}
            involved = posted.get("involvedObject") or {}
            found[(involved.get("namespace", ""), involved.get("name", ""), posted.get("reason", ""))] += 1
        return found

    def wait_for_events(self, expected: Counter[tuple[str, str, str]], timeout: float) -> float | None:
        """Wait until the operator has created at least the expected Events since the mark; the
        seconds waited, or None at the timeout. kopf posts Events from a queue of its own after
        the status patch, so a BotSecret is Ready a moment before its Events exist."""
        start = time.monotonic()
        while True:
            posted = self.operator_events()
            if all(posted[key] >= n for key, n in expected.items()):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                return None
            time.sleep(0.2)  # polling the audit log, which has no watch

    def since_mark(self) -> Counter[str]:
        """The operator's requests since the mark, by ``verb resource[/subresource]``."""
        self._check_not_rotated()
        counts: Counter[str] = Counter()
        with self._path.open("rb") as log:
            log.seek(self._offset)
            for line in log:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line still being written
                if (event.get("user") or {}).get("username") != OPERATOR_USER:
                    continue
                ref = event.get("objectRef") or {}
                resource = ref.get("resource", event.get("requestURI", "?"))
                if ref.get("subresource"):
                    resource += "/" + ref["subresource"]
                key = f"{event.get('verb')} {resource}"
                if resource == "events" and (event.get("requestObject") or {}).get("reason") in PLAIN_HTTP_WARNINGS:
                    # The benchmark's providers are plain-HTTP servers on loopback, which the
                    # operator rightly warns about on each write; a real store has https://.
                    key += " (plain-HTTP warnings)"
                counts[key] += 1
        return counts


WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
PLAIN_HTTP_WARNINGS = ("InsecurePlainHTTP",)


def without_plain_http_warnings(counts: Counter[str]) -> int:
    return sum(n for key, n in counts.items() if not key.endswith("(plain-HTTP warnings)"))


def writes(counts: Counter[str], resource: str | None = None) -> int:
    """Writes, without the plain-HTTP warning events (counted apart: kopf posts events from a queue
    of its own, so those of the last first syncs can land in the next window)."""
    return sum(n for key, n in counts.items()
               if key.split(" ")[0] in WRITE_VERBS and (resource is None or key.split(" ")[1] == resource)
               and not key.endswith("(plain-HTTP warnings)"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def samples(metrics_text: str, name: str) -> list[tuple[dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), float(sample.value)))
    return found


def metric_sum(metrics_text: str, name: str, **labels: str) -> float:
    return sum(value for found, value in samples(metrics_text, name)
               if all(found.get(k) == v for k, v in labels.items()))


def stamp(event: dict[str, Any]) -> float:
    """The apiserver's time of receiving the request, in seconds (its own clock for every event)."""
    import datetime

    return datetime.datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()


def restart_patch(event: dict[str, Any]) -> tuple[str, str] | None:
    """The Deployment (namespace, name) whose pod template the operator's audited request
    successfully patched with a restart mark, or None for any other request."""
    ref = event.get("objectRef") or {}
    if ((event.get("user") or {}).get("username") == OPERATOR_USER and event.get("verb") == "patch"
            and ref.get("resource") == "deployments" and RESTART_PREFIX in json.dumps(event.get("requestObject"))
            and (event.get("responseStatus") or {}).get("code", 200) < 300):
        return (ref.get("namespace", ""), ref.get("name", ""))
    return None


def template_patches(events: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """The first pod-template restart patch of each Deployment by the operator, by its time."""
    found: dict[tuple[str, str], float] = {}
    for event in events:
        key = restart_patch(event)
        if key is not None:
            found.setdefault(key, stamp(event))
    return found
