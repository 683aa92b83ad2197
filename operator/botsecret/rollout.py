"""Restart the bot workloads exactly once per rotation of the data they consume, and follow each
rollout to its end.

A restart is a patch of the pod-template annotation ``botsecret.dev/restarted-for`` whose value
is a keyed HMAC of the data the workload consumes: content-addressed, so the same data never
restarts twice, whatever replays, resyncs or operator restarts happen. What was last restarted
for, a pending debounce and each rollout's phase live in the BotSecret's status, so they survive
an operator restart.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import metrics
from .fingerprint import data_hmac
from .reconcile import SyncResult
from .spec import RolloutTarget
from .values import SecretValue
from .workloads import consumed_keys, rollout_phase

__all__ = ["RESTART_ANNOTATION", "RolloutOutcome", "Workload", "advance", "key_id"]

RESTART_ANNOTATION = "botsecret.dev/restarted-for"
FOLLOW_INTERVAL = 2.0
MAX_FOLLOW_INTERVAL = 30.0
PAUSED_RECHECK = 15.0
# However often the data keeps changing, a restart waits at most this many debounce periods
# (and at least a minute) after the first change.
MAX_DEBOUNCE_FACTOR = 6


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    body: Mapping[str, Any]
    named: bool  # named explicitly in spec.rollout.targets, not matched by a selector

    @property
    def template(self) -> Mapping[str, Any]:
        return (self.body.get("spec") or {}).get("template") or {}

    @property
    def paused(self) -> bool:
        return bool((self.body.get("spec") or {}).get("paused"))


@dataclass
class RolloutOutcome:
    entries: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    condition: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    wake_in: float | None = None
    key_id: str | None = None

    def wake(self, seconds: float) -> None:
        self.wake_in = seconds if self.wake_in is None else min(self.wake_in, seconds)


class Workloads:
    """Reads and patches Deployments, StatefulSets and DaemonSets of one namespace."""

    def __init__(self, api: Any, namespace: str) -> None:
        self._apps = client.AppsV1Api(api)
        self._api = api
        self._namespace = namespace

    def _call(self, verb: str, kind: str, *args: Any, **kwargs: Any) -> Any:
        method = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}[kind]
        return getattr(self._apps, f"{verb}_namespaced_{method}")(*args, **kwargs)

    def resolve(self, targets: Sequence[RolloutTarget]) -> tuple[list[Workload], list[str]]:
        found: dict[tuple[str, str], Workload] = {}
        missing: list[str] = []
        for target in targets:
            if target.name is not None:
                try:
                    obj = self._call("read", target.kind, target.name, self._namespace)
                except ApiException as e:
                    if e.status != 404:
                        raise
                    missing.append(f"{target.kind}/{target.name}")
                    continue
                found[(target.kind, target.name)] = Workload(
                    target.kind, target.name, self._api.sanitize_for_serialization(obj), named=True)
                continue
            selector = ",".join(f"{k}={v}" for k, v in sorted((target.match_labels or {}).items()))
            for obj in self._call("list", target.kind, self._namespace, label_selector=selector).items:
                key = (target.kind, obj.metadata.name)
                if key not in found:
                    found[key] = Workload(target.kind, obj.metadata.name,
                                          self._api.sanitize_for_serialization(obj), named=False)
        return sorted(found.values(), key=lambda w: (w.kind, w.name)), missing

    def restart(self, workload: Workload, value: str) -> None:
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: value}}}}}
        self._call("patch", workload.kind, workload.name, self._namespace, patch)
        metrics.RESTARTS.labels(workload.kind).inc()


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def consumed_hmac(key: bytes, workload: Workload, secret_name: str,
                  data: Mapping[str, SecretValue]) -> tuple[str, frozenset[str]] | None:
    """The HMAC of what ``workload`` reads of the Secret, with those keys; ``None`` when a workload
    matched only by selector does not read the Secret at all."""
    keys = consumed_keys(workload.template, secret_name, data)
    if keys is None:
        if not workload.named:
            return None
        keys = frozenset(data)  # named explicitly: restarted for any change
    return data_hmac(key, {k: data[k] for k in keys}), keys


def key_id(hmac_key: bytes) -> str:
    """A short public name of the HMAC key, so a new key is noticed instead of read as new data."""
    return data_hmac(hmac_key, {"botsecret.dev/key-id": SecretValue(b"")})[-12:]


def advance(workloads: Workloads, hmac_key: bytes, status: Mapping[str, Any], result: SyncResult,
            now: datetime.datetime) -> RolloutOutcome:
    """One step of the rollout state machine after a sync. Restarts only after a successful sync."""
    spec = result.spec
    outcome = RolloutOutcome(key_id=key_id(hmac_key))
    if spec is None or not spec.rollout_targets:
        return outcome
    # HMACs under another key cannot be compared with ours: take a new baseline, restart nothing.
    same_key = status.get("hmacKeyId") in (None, outcome.key_id)
    previous = {(e.get("kind"), e.get("name")): dict(e) for e in status.get("rollout") or []} if same_key else {}
    pending = dict(status.get("pendingRollout") or {}) or None
    found, missing = workloads.resolve(spec.rollout_targets)

    due: list[tuple[Workload, str, frozenset[str]]] = []
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for workload in found:
        entry = previous.get((workload.kind, workload.name)) or {"kind": workload.kind, "name": workload.name}
        entries[(workload.kind, workload.name)] = entry
        if not result.ready or result.secret_name is None:
            continue
        consumed = consumed_hmac(hmac_key, workload, result.secret_name, result.data)
        if consumed is None:
            entries.pop((workload.kind, workload.name))
            continue
        value, keys = consumed
        # Only our own record counts: the template annotation may have been written for another
        # BotSecret, or by anyone.
        baseline = entry.get("dataHMAC")
        if baseline is None:
            entry["dataHMAC"] = value  # first sight: nothing to restart for
        elif baseline != value:
            due.append((workload, value, keys))

    _follow(found, entries, now, outcome)  # first: whether a rollout is still going decides below
    if not result.ready:
        pass  # no news about the data: a pending restart stays pending
    elif due:
        pending = _pending(pending, result, now)
        ready_at = _due_at(pending, spec.debounce_seconds)
        busy = [w for w, _, _ in due if entries[(w.kind, w.name)].get("phase") == "Progressing" and not w.paused
                and entries[(w.kind, w.name)].get("startedAt")]
        if now < ready_at:
            outcome.wake((ready_at - now).total_seconds())
        elif busy:
            outcome.wake(FOLLOW_INTERVAL)  # one rollout at a time: pods never run half-rotated data
        else:
            paused = _restart(workloads, due, entries, pending, now, outcome)
            pending = pending if paused else None
            if paused:
                outcome.wake(PAUSED_RECHECK)
    else:
        pending = None

    outcome.entries = [entries[k] for k in sorted(entries)]
    outcome.pending = pending
    outcome.condition = _condition(outcome.entries, pending, missing, paused_names=[
        f"{w.kind}/{w.name}" for w, _, _ in due if w.paused and pending is not None])
    return outcome


def _pending(pending: dict[str, Any] | None, result: SyncResult, now: datetime.datetime) -> dict[str, Any]:
    if pending is not None and pending.get("dataHMAC") == result.data_hmac:
        return pending
    changed = sorted(set(pending.get("keys", []) if pending else []) | set(result.changed_keys))
    first = pending.get("firstChangedAt", pending.get("changedAt")) if pending else None
    return {"dataHMAC": result.data_hmac, "changedAt": _iso(now), "firstChangedAt": first or _iso(now),
            "keys": changed}


def _due_at(pending: Mapping[str, Any], debounce: float) -> datetime.datetime:
    settled = _parse(pending["changedAt"]) + datetime.timedelta(seconds=debounce)
    latest = _parse(pending["firstChangedAt"]) + datetime.timedelta(seconds=max(debounce * MAX_DEBOUNCE_FACTOR, 60))
    return min(settled, latest)


def _restart(workloads: Workloads, due: list[tuple[Workload, str, frozenset[str]]],
             entries: dict[tuple[str, str], dict[str, Any]], pending: Mapping[str, Any],
             now: datetime.datetime, outcome: RolloutOutcome) -> bool:
    """Patch every due workload that is not paused; answer whether any was paused."""
    any_paused = False
    for workload, value, keys in due:
        entry = entries[(workload.kind, workload.name)]
        if workload.paused:
            any_paused = True
            entry.update(phase="Progressing", message="paused; restarts when it is resumed")
            continue
        workloads.restart(workload, value)
        changed = [k for k in pending.get("keys", []) if k in keys] or sorted(keys)
        entry.pop("finishedAt", None)
        entry.update(dataHMAC=value, phase="Progressing", startedAt=_iso(now), message="restarted",
                     restartedFor=changed)
        outcome.events.append(("Normal", "RolloutRestarted",
                               f"restarted {workload.kind}/{workload.name}; changed keys: {', '.join(changed)}"))
        outcome.wake(FOLLOW_INTERVAL)  # follow the rollout just started
    return any_paused


def _follow(found: list[Workload], entries: dict[tuple[str, str], dict[str, Any]], now: datetime.datetime,
            outcome: RolloutOutcome) -> None:
    bodies = {(w.kind, w.name): w for w in found}
    for key, entry in entries.items():
        if entry.get("phase") != "Progressing" or not entry.get("startedAt"):
            continue
        workload = bodies.get(key)
        if workload is None or workload.paused:
            continue
        elapsed = (now - _parse(entry["startedAt"])).total_seconds()
        # Checked often at first, then less: a rollout that takes long costs few reads.
        interval = max(FOLLOW_INTERVAL, min(MAX_FOLLOW_INTERVAL, elapsed / 4))
        if elapsed <= 0:
            outcome.wake(interval)
            continue  # patched in this cycle: the body read before the patch says nothing about it
        phase, message = rollout_phase(workload.kind, workload.body)
        annotations = (workload.template.get("metadata") or {}).get("annotations") or {}
        if annotations.get(RESTART_ANNOTATION) != entry.get("dataHMAC"):
            message += "; the template was changed since by someone else"
        entry.update(phase=phase, message=message)
        if phase == "Progressing":
            outcome.wake(interval)
            continue
        entry["finishedAt"] = _iso(now)
        if phase == "Failed":
            outcome.events.append(("Warning", "RolloutFailed", f"{workload.kind}/{workload.name}: {message}"))


def _condition(entries: list[dict[str, Any]], pending: Mapping[str, Any] | None, missing: list[str],
               paused_names: list[str]) -> dict[str, Any]:
    failed = [f"{e['kind']}/{e['name']}" for e in entries if e.get("phase") == "Failed"]
    progressing = [f"{e['kind']}/{e['name']}" for e in entries if e.get("phase") == "Progressing"]
    if failed:
        return {"status": "False", "reason": "RolloutFailed", "message": "failed: " + ", ".join(failed)}
    if paused_names:
        return {"status": "False", "reason": "Paused", "message": "paused, restart waits: " + ", ".join(paused_names)}
    if pending is not None:
        return {"status": "False", "reason": "Debouncing", "message": "data changed; restart after the debounce"}
    if progressing:
        return {"status": "False", "reason": "Progressing", "message": "rolling out: " + ", ".join(progressing)}
    message = "every target runs the current data"
    if missing:
        message += "; not found: " + ", ".join(missing)
    return {"status": "True", "reason": "RolloutComplete", "message": message}
