"""Restart the bot workloads exactly once per rotation of the data they consume, and follow each
rollout to its end.

A restart is a patch of the pod-template annotation ``restarted-for.botsecret.dev/<BotSecret>``
(one key per BotSecret, so two BotSecrets feeding one workload never overwrite each other's mark)
whose value is a keyed HMAC of the data the workload consumes: content-addressed, so the same data
never restarts twice, whatever replays, resyncs or operator restarts happen. What was last
restarted for, a pending debounce and each rollout's phase live in the BotSecret's status, so they
survive an operator restart.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import metrics, version_store, versioned
from .fingerprint import data_hmac
from .reconcile import SyncResult
from .spec import DEFAULT_PROGRESS_DEADLINE_SECONDS, BotSecretSpec, RolloutTarget
from .values import SecretValue
from .versioned import VersionPlan
from .versions import is_version_of
from .workloads import EVERY_KEY, keys_read, referenced_keys, restart_on, rollout_phase

__all__ = [
    "LEGACY_RESTART_ANNOTATION",
    "RolloutOutcome",
    "Workload",
    "advance",
    "key_id",
    "pending_record",
    "restart_annotation",
    "restart_patch",
]

RESTART_ANNOTATION_PREFIX = "restarted-for.botsecret.dev"
# The one key every BotSecret wrote before each got its own; dropped by the next restart.
LEGACY_RESTART_ANNOTATION = "botsecret.dev/restarted-for"
ANNOTATION_NAME_MAX = 63
FOLLOW_INTERVAL = 2.0
MAX_FOLLOW_INTERVAL = 30.0
PAUSED_RECHECK = 15.0
FAILED_RECHECK = 30.0  # a failed rollout is looked at again, so that a repair by hand is seen
MISSING_RECHECK = 15.0  # nothing watches workloads: a named target that does not exist is looked for
# However often the data keeps changing, a restart waits at most this many debounce periods
# (and at least a minute) after the first change.
MAX_DEBOUNCE_FACTOR = 6


def restart_annotation(botsecret: str) -> str:
    """The pod-template annotation key that carries BotSecret ``botsecret``'s mark.

    The name part of an annotation key holds at most 63 characters and a BotSecret name up to 253:
    a longer name is cut and a short hash of the whole name keeps two such names apart.
    """
    name = botsecret
    if len(name) > ANNOTATION_NAME_MAX:
        name = f"{name[:ANNOTATION_NAME_MAX - 11]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return f"{RESTART_ANNOTATION_PREFIX}/{name}"


def restart_patch(annotation: str, value: str) -> dict[str, Any]:
    """The patch of one restart. It drops the legacy single key in the same template change, so
    the upgrade from it costs no rollout of its own."""
    return {"spec": {"template": {"metadata": {"annotations": {annotation: value, LEGACY_RESTART_ANNOTATION: None}}}}}


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
    versions: list[dict[str, Any]] | None = None  # status.versions, with strategy Versioned

    def wake(self, seconds: float) -> None:
        self.wake_in = seconds if self.wake_in is None else min(self.wake_in, seconds)


KINDS = ("Deployment", "StatefulSet", "DaemonSet")


class Workloads:
    """Reads and patches Deployments, StatefulSets and DaemonSets of one namespace, for one cycle."""

    def __init__(self, api: Any, namespace: str) -> None:
        self._apps = client.AppsV1Api(api)
        self._api = api
        self._namespace = namespace
        self._opted: dict[str, list[Workload]] = {}
        self._pods: list[dict[str, Any]] | None = None

    def opted_in(self, secret_name: str) -> list[Workload]:
        """The workloads of the namespace whose ``botsecret.dev/restart-on`` annotation opts in to
        restarts for ``secret_name``. Listed (the operator's existing ``list`` on the three kinds),
        not watched; once per cycle."""
        if secret_name not in self._opted:
            found: list[Workload] = []
            for kind in KINDS:
                for obj in self._call("list", kind, self._namespace).items:
                    how = restart_on(obj.metadata.annotations, secret_name)
                    if how is not None:
                        found.append(Workload(kind, obj.metadata.name, self._api.sanitize_for_serialization(obj),
                                              named=how == "named"))
            self._opted[secret_name] = found
        return self._opted[secret_name]

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

    def restart(self, workload: Workload, annotation: str, value: str) -> None:
        self._call("patch", workload.kind, workload.name, self._namespace, restart_patch(annotation, value))
        metrics.RESTARTS.labels(workload.kind).inc()

    def json_patch(self, kind: str, name: str, ops: list[dict[str, Any]]) -> None:
        """A JSON patch (RFC 6902; the client sends a list as one): its ``test`` operations make an
        edited template fail it whole."""
        self._call("patch", kind, name, self._namespace, ops)

    def pods(self) -> list[dict[str, Any]]:
        """The namespace's pods that have not finished, listed once per cycle (for maxRestarts)."""
        if self._pods is None:
            self._pods = version_store.live_pods(self._api, self._namespace)
        return self._pods


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Consumption:
    hmac: str  # of the keys read, with their values
    referenced: frozenset[str]  # as the template names them (EVERY_KEY for the whole Secret)
    keys: frozenset[str]  # of the Secret's keys, those read


def consumed(key: bytes, workload: Workload, secret_name: str, data: Mapping[str, SecretValue], *,
             with_versions: bool = False) -> Consumption | None:
    """What ``workload`` reads of the Secret (or, ``with_versions``, of the Secret and its versions);
    ``None`` when a workload matched only by selector does not read the Secret at all."""
    referenced = referenced_keys(workload.template,
                                 (lambda name: is_version_of(str(name), secret_name)) if with_versions else secret_name)
    if referenced is None:
        if not workload.named:
            return None
        referenced = frozenset({EVERY_KEY})  # named explicitly: restarted for any change
    keys = keys_read(referenced, data)
    return Consumption(data_hmac(key, {k: data[k] for k in keys}), referenced, keys)


def key_id(hmac_key: bytes) -> str:
    """A short public name of the HMAC key, so a new key is noticed instead of read as new data."""
    return data_hmac(hmac_key, {"botsecret.dev/key-id": SecretValue(b"")})[-12:]


def _name(workload: Workload) -> str:
    return f"{workload.kind}/{workload.name}"


def advance(workloads: Workloads, hmac_key: bytes, status: Mapping[str, Any], result: SyncResult,
            now: datetime.datetime, *, botsecret: str, skip_debounce: bool = False,
            plan: VersionPlan | None = None) -> RolloutOutcome:
    """One step of the rollout state machine after a sync. Restarts only after a successful sync.

    ``skip_debounce`` (``botsecret rotate --now``) treats the debounce as elapsed for this step; a
    rollout still in progress is still waited for. With a ``plan`` (strategy Versioned) a restart
    moves the template's references to the current version, and a failed rollout is rolled back."""
    spec = result.spec
    outcome = RolloutOutcome(key_id=key_id(hmac_key))
    if spec is None:
        return outcome
    mark = restart_annotation(botsecret)
    # HMACs under another key cannot be compared with ours: take a new baseline, restart nothing.
    same_key = status.get("hmacKeyId") in (None, outcome.key_id)
    previous = {(e.get("kind"), e.get("name")): dict(e) for e in status.get("rollout") or []} if same_key else {}
    pending = dict(status.get("pendingRollout") or {}) or None
    found, missing = workloads.resolve(spec.rollout_targets)
    if result.secret_name is not None:
        # Opted in from the workload's side: a target like a named one (or, with "auto", like one a
        # selector matched); an entry of spec.rollout.targets for the same workload comes first.
        listed = {(w.kind, w.name) for w in found}
        found = sorted([*found, *(w for w in workloads.opted_in(result.secret_name) if (w.kind, w.name) not in listed)],
                       key=lambda w: (w.kind, w.name))
    if missing:
        outcome.wake(MISSING_RECHECK)

    due: list[tuple[Workload, str, frozenset[str]]] = []
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for workload in found:
        entry = previous.get((workload.kind, workload.name)) or {"kind": workload.kind, "name": workload.name}
        entries[(workload.kind, workload.name)] = entry
        if not result.ready or result.secret_name is None:
            continue
        reads = consumed(hmac_key, workload, result.secret_name, result.data, with_versions=plan is not None)
        if reads is None:
            entries.pop((workload.kind, workload.name))
            continue
        names = sorted(reads.referenced)
        recorded = entry.get("consumedKeys")  # absent in entries written before it was recorded
        entry["consumedKeys"] = names
        # Only our own record counts: the template annotation may have been written by anyone.
        # A template that now reads other keys was edited, and rolled out by whoever edited it:
        # its new pods read the data of now, so that is a new baseline, not a restart.
        if entry.get("dataHMAC") is None or (recorded is not None and recorded != names):
            entry["dataHMAC"] = reads.hmac
            if plan is not None:
                versioned.baseline(entry, workload.template, plan.target)
        elif entry["dataHMAC"] != reads.hmac or (
                plan is not None and plan.retry and entry.get("phase") == "RolledBack"):
            due.append((workload, reads.hmac, reads.keys))
    if plan is not None and plan.retry:
        skip_debounce = True

    # First: whether a rollout is still going decides below.
    _follow(workloads, found, entries, spec, mark, now, outcome, plan)
    waiting: list[str] = []
    if not result.ready:
        pass  # no news about the data: a pending restart stays pending
    elif due:
        pending = pending_record(pending, result, now)
        ready_at = _due_at(pending, spec.debounce_seconds)
        busy = [w for w, _, _ in due if entries[(w.kind, w.name)].get("phase") == "Progressing" and not w.paused
                and entries[(w.kind, w.name)].get("startedAt")]
        if now < ready_at and not skip_debounce:
            outcome.wake((ready_at - now).total_seconds())
        elif busy:
            # One rollout at a time, so pods never run half-rotated data; the wait is bounded by
            # the progress deadline, after which _follow calls the rollout failed.
            waiting = [_waiting_for(w, entries[(w.kind, w.name)], spec) for w in busy]
            outcome.wake(MAX_FOLLOW_INTERVAL)
        else:
            paused = _restart(workloads, mark, due, entries, pending, now, outcome, plan)
            pending = pending if paused else None
            if paused:
                outcome.wake(PAUSED_RECHECK)
    else:
        pending = None

    outcome.entries = [entries[k] for k in sorted(entries)]
    outcome.pending = pending
    outcome.condition = _condition(outcome.entries, pending, missing, waiting, paused_names=[
        _name(w) for w, _, _ in due if w.paused and pending is not None])
    return outcome


def pending_record(pending: Mapping[str, Any] | None, result: SyncResult, now: datetime.datetime) -> dict[str, Any]:
    """``status.pendingRollout`` for a restart that waits: what it is for, since when, which keys."""
    if pending is not None and pending.get("dataHMAC") == result.data_hmac:
        return dict(pending)
    changed = sorted(set(pending.get("keys", []) if pending else []) | set(result.changed_keys))
    first = pending.get("firstChangedAt", pending.get("changedAt")) if pending else None
    return {"dataHMAC": result.data_hmac, "changedAt": _iso(now), "firstChangedAt": first or _iso(now),
            "keys": changed}


def _due_at(pending: Mapping[str, Any], debounce: float) -> datetime.datetime:
    settled = _parse(pending["changedAt"]) + datetime.timedelta(seconds=debounce)
    latest = _parse(pending["firstChangedAt"]) + datetime.timedelta(seconds=max(debounce * MAX_DEBOUNCE_FACTOR, 60))
    return min(settled, latest)


def _deadline(workload: Workload, spec: BotSecretSpec) -> float | None:
    """Seconds a restart's rollout may take; ``None``: the Deployment controller's own deadline."""
    if spec.progress_deadline_seconds is not None:
        return spec.progress_deadline_seconds
    return None if workload.kind == "Deployment" else DEFAULT_PROGRESS_DEADLINE_SECONDS


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def _waiting_for(workload: Workload, entry: Mapping[str, Any], spec: BotSecretSpec) -> str:
    deadline = _deadline(workload, spec)
    if deadline is None:
        return f"{_name(workload)} (until it completes or exceeds its progressDeadlineSeconds)"
    until = _parse(entry["startedAt"]) + datetime.timedelta(seconds=deadline)
    return f"{_name(workload)} (at most until {_iso(until)})"


def _restart(workloads: Workloads, mark: str, due: list[tuple[Workload, str, frozenset[str]]],
             entries: dict[tuple[str, str], dict[str, Any]], pending: Mapping[str, Any],
             now: datetime.datetime, outcome: RolloutOutcome, plan: VersionPlan | None = None) -> bool:
    """Patch every due workload that is not paused; answer whether any was paused."""
    any_paused = False
    for workload, value, keys in due:
        entry = entries[(workload.kind, workload.name)]
        if workload.paused:
            any_paused = True
            # Nothing of ours is rolling out now; the last restart's times would only mislead.
            entry.pop("startedAt", None)
            entry.pop("finishedAt", None)
            entry.update(phase="Progressing", message="paused; restarts when it is resumed")
            continue
        if plan is None:
            workloads.restart(workload, mark, value)
        elif not versioned.retarget(workloads, workload.kind, workload.name, workload.template, entry, plan,
                                    annotation=mark, mark=value):
            # The data is back to the version the template names: nothing rolls out.
            entry.update(dataHMAC=value, phase="Complete", message=f"already runs {plan.current}")
            continue
        else:
            metrics.RESTARTS.labels(workload.kind).inc()
        changed = [k for k in pending.get("keys", []) if k in keys] or sorted(keys)
        entry.pop("finishedAt", None)
        entry.update(dataHMAC=value, phase="Progressing", startedAt=_iso(now), message="restarted",
                     restartedFor=changed)
        outcome.events.append(("Normal", "RolloutRestarted",
                               f"restarted {_name(workload)}; changed keys: {', '.join(changed)}"))
        outcome.wake(FOLLOW_INTERVAL)  # follow the rollout just started
    return any_paused


def _own_mark(workload: Workload, mark: str) -> str | None:
    annotations = (workload.template.get("metadata") or {}).get("annotations") or {}
    # A rollout an older version started carries the legacy key until the next restart.
    value = annotations.get(mark, annotations.get(LEGACY_RESTART_ANNOTATION))
    return None if value is None else str(value)


def _follow(workloads: Workloads, found: list[Workload], entries: dict[tuple[str, str], dict[str, Any]],
            spec: BotSecretSpec, mark: str, now: datetime.datetime, outcome: RolloutOutcome,
            plan: VersionPlan | None = None) -> None:
    bodies = {(w.kind, w.name): w for w in found}
    for key, entry in entries.items():
        workload = bodies.get(key)
        if workload is None or workload.paused or not entry.get("startedAt"):
            continue
        if entry.get("phase") == "Failed":
            _look_again(workload, entry, now, outcome)
            continue
        if entry.get("phase") != "Progressing":
            continue
        elapsed = (now - _parse(entry["startedAt"])).total_seconds()
        # Checked often at first, then less: a rollout that takes long costs few reads.
        interval = max(FOLLOW_INTERVAL, min(MAX_FOLLOW_INTERVAL, elapsed / 4))
        if elapsed <= 0:
            outcome.wake(interval)
            continue  # patched in this cycle: the body read before the patch says nothing about it
        phase, message = rollout_phase(workload.kind, workload.body)
        if _own_mark(workload, mark) != entry.get("dataHMAC"):
            message += "; the template was changed since by someone else"
        deadline = _deadline(workload, spec)
        restarted = None
        if phase == "Progressing" and plan is not None:
            restarted = versioned.failed_by_restarts(workloads.pods() if spec.rollout_policy.max_restarts else [],
                                                     entry, spec.rollout_policy.max_restarts)
        if restarted is not None:
            phase, message = "Failed", restarted
        elif phase == "Progressing" and deadline is not None:
            if elapsed < deadline:
                entry.update(phase=phase, message=message)
                outcome.wake(min(interval, deadline - elapsed))
                continue
            phase, message = "Failed", f"not finished within progressDeadline {_duration(deadline)}: {message}"
        entry.update(phase=phase, message=message)
        if phase == "Progressing":
            outcome.wake(interval)
            continue
        entry["finishedAt"] = _iso(now)
        if phase == "Complete":
            versioned.settled(entry)
        if phase == "Failed":
            metrics.ROLLOUT_FAILURES.labels(workload.kind).inc()
            if plan is not None and spec.rollout_policy.failure_policy == "Rollback" and _roll_back(
                    workloads, workload, entry, plan, mark, now, message, outcome):
                continue
            outcome.events.append(("Warning", "RolloutFailed", f"{_name(workload)}: {message}"))
            outcome.wake(FAILED_RECHECK)


def _roll_back(workloads: Workloads, workload: Workload, entry: dict[str, Any], plan: VersionPlan, mark: str,
               now: datetime.datetime, why: str, outcome: RolloutOutcome) -> bool:
    back_to = versioned.roll_back(workloads, workload.kind, workload.name, workload.template, entry, plan,
                                  annotation=mark, now=_iso(now))
    if back_to is None:
        return False
    keys = ", ".join(entry.get("restartedFor") or [])
    entry.update(phase="RolledBack", message=f"rolled back to {back_to}: {why}")
    outcome.events.append(("Warning", "RolledBack",
                           f"{_name(workload)} rolled back to {back_to} ({why}); changed keys: {keys}"))
    return True


def _look_again(workload: Workload, entry: dict[str, Any], now: datetime.datetime, outcome: RolloutOutcome) -> None:
    """A failed rollout is not the end: someone may repair the workload by hand."""
    phase, message = rollout_phase(workload.kind, workload.body)
    if phase == "Complete":
        entry.update(phase="Complete", message=f"{message} (after a failed rollout)", finishedAt=_iso(now))
    else:
        outcome.wake(FAILED_RECHECK)


def _condition(entries: list[dict[str, Any]], pending: Mapping[str, Any] | None, missing: list[str],
               waiting: list[str], paused_names: list[str]) -> dict[str, Any]:
    failed = [f"{e['kind']}/{e['name']}" for e in entries if e.get("phase") == "Failed"]
    rolled_back = versioned.rolled_back_condition(entries)
    progressing = [f"{e['kind']}/{e['name']}" for e in entries if e.get("phase") == "Progressing"]
    not_found = "; not found: " + ", ".join(missing) if missing else ""
    if failed:
        return {"status": "False", "reason": "RolloutFailed", "message": "failed: " + ", ".join(failed) + not_found}
    if rolled_back is not None:
        return {**rolled_back, "message": rolled_back["message"] + not_found}
    if paused_names:
        return {"status": "False", "reason": "Paused",
                "message": "paused, restart waits: " + ", ".join(paused_names) + not_found}
    if waiting:
        return {"status": "False", "reason": "WaitingForRollout",
                "message": "data changed; the restart waits for the rollout of " + ", ".join(waiting) + not_found}
    if pending is not None:
        return {"status": "False", "reason": "Debouncing",
                "message": "data changed; restart after the debounce" + not_found}
    if progressing:
        return {"status": "False", "reason": "Progressing",
                "message": "rolling out: " + ", ".join(progressing) + not_found}
    if missing:
        return {"status": "False", "reason": "TargetNotFound", "message": "not found: " + ", ".join(missing)}
    return {"status": "True", "reason": "RolloutComplete", "message": "every target runs the current data"}
