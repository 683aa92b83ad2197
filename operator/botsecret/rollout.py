"""Restart the bot workloads exactly once per rotation of the data they consume, and follow each
rollout to its end.

A restart is a patch of the pod-template annotation ``restarted-for.botsecret.dev/<BotSecret>``
(one key per BotSecret, so two BotSecrets feeding one workload never overwrite each other's mark)
whose value is a keyed HMAC of the data the workload consumes: content-addressed, so the same data
never restarts twice, whatever replays, resyncs or operator restarts happen. What was last
restarted for, a pending debounce and each rollout's phase live in the BotSecret's status, so they
survive an operator restart. Where the mark lives and how a rollout is judged depend on the kind
(an Argo Rollout is restarted through ``spec.restartAt``): :mod:`botsecret.kinds`; reading and
patching: :mod:`botsecret.workload_api`. A mark another writer removes or rewrites is a
``RestartConflict``, never a second patch for the same data.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import metrics, versioned
from .fingerprint import data_hmac
from .kinds import LEGACY_RESTART_ANNOTATION, NOT_FOLLOWED, restart_patch, rival_manager
from .reconcile import SyncResult
from .spec import APPS_V1, DEFAULT_PROGRESS_DEADLINE_SECONDS, BotSecretSpec
from .values import SecretValue
from .versioned import VersionPlan
from .versions import is_version_of
from .workload_api import WORKLOAD_FIELD_MANAGER, RestartRefused, Unresolved, Workload, Workloads
from .workloads import EVERY_KEY, keys_read, referenced_keys

__all__ = [
    "LEGACY_RESTART_ANNOTATION",
    "RolloutOutcome",
    "Workload",
    "Workloads",
    "advance",
    "key_id",
    "pending_record",
    "restart_annotation",
    "restart_patch",
]

RESTART_ANNOTATION_PREFIX = "restarted-for.botsecret.dev"
ANNOTATION_NAME_MAX = 63
FOLLOW_INTERVAL = 2.0
MAX_FOLLOW_INTERVAL = 30.0
PAUSED_RECHECK = 15.0
FAILED_RECHECK = 30.0  # a failed rollout is looked at again, so that a repair by hand is seen
REFUSED_RETRY = 30.0  # a restart patch the apiserver refused (RBAC, admission) is tried again
MISSING_RECHECK = 15.0  # nothing watches workloads: a named target that does not exist is looked for
# A workload that stays paused, or a rollout that stays failed, is looked at less and less often:
# a quarter of the time it has been so, between the rechecks above and this.
MAX_STUCK_RECHECK = 600.0
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


@dataclass
class RolloutOutcome:
    entries: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    condition: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    wake_in: float | None = None
    key_id: str | None = None
    versions: list[dict[str, Any]] | None = None  # status.versions, with strategy Versioned
    refused: list[str] = field(default_factory=list)  # restart patches the apiserver refused

    def wake(self, seconds: float) -> None:
        self.wake_in = seconds if self.wake_in is None else min(self.wake_in, seconds)


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
    found, unresolved = workloads.resolve(spec.rollout_targets)
    if result.secret_name is not None:
        # Opted in from the workload's side: a target like a named one (or, with "auto", like one a
        # selector matched); an entry of spec.rollout.targets for the same workload comes first.
        listed = {(w.kind, w.name) for w in found}
        found = sorted([*found, *(w for w in workloads.opted_in(result.secret_name) if (w.kind, w.name) not in listed)],
                       key=lambda w: (w.kind, w.name))
    if unresolved:
        outcome.wake(MISSING_RECHECK)

    due: list[tuple[Workload, str, frozenset[str]]] = []
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for workload in found:
        entry = previous.get((workload.kind, workload.name)) or _new_entry(workload)
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
            paused, refused = _restart(workloads, mark, due, entries, pending, now, outcome, plan)
            pending = pending if paused or refused else None
            if paused:
                outcome.wake(stuck_recheck(PAUSED_RECHECK, (pending or {}).get("firstChangedAt"), now))
            if refused:
                outcome.wake(REFUSED_RETRY)
    else:
        pending = None

    outcome.entries = [entries[k] for k in sorted(entries)]
    outcome.pending = pending
    outcome.condition = _condition(outcome.entries, pending, unresolved, waiting, paused_names=[
        _name(w) for w, _, _ in due if w.paused and pending is not None])
    if outcome.refused:
        outcome.condition = {"status": "False", "reason": "RolloutError", "message": "; ".join(outcome.refused)}
    return outcome


def _new_entry(workload: Workload) -> dict[str, Any]:
    entry = {"kind": workload.kind, "name": workload.name}
    if workload.api_version != APPS_V1:
        entry["apiVersion"] = workload.api_version
    return entry


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
             now: datetime.datetime, outcome: RolloutOutcome,
             plan: VersionPlan | None = None) -> tuple[bool, list[str]]:
    """Patch every due workload that is not paused; answer whether any was paused, and what the
    apiserver refused (one refusal must not keep the other workloads from their restart)."""
    any_paused = False
    refused: list[str] = []
    for workload, value, keys in due:
        entry = entries[(workload.kind, workload.name)]
        if workload.paused:
            any_paused = True
            # Nothing of ours is rolling out now; the last restart's times would only mislead.
            entry.pop("startedAt", None)
            entry.pop("finishedAt", None)
            entry.update(phase="Progressing", message="paused; restarts when it is resumed")
            continue
        try:
            if plan is None or workload.workload_kind.style != "apps":
                workloads.restart(workload, mark, value)
            elif not versioned.retarget(workloads, workload.kind, workload.name, workload.template, entry, plan,
                                        annotation=mark, mark=value):
                # The data is back to the version the template names: nothing rolls out.
                entry.update(dataHMAC=value, phase="Complete", message=f"already runs {plan.current}")
                continue
        except RestartRefused as e:
            refused.append(e.describe())  # nothing recorded: still due, tried again
            continue
        if plan is not None and workload.workload_kind.style == "apps":
            metrics.RESTARTS.labels(workload.kind).inc()
        changed = [k for k in pending.get("keys", []) if k in keys] or sorted(keys)
        entry.pop("finishedAt", None)
        entry.update(dataHMAC=value, mark=value, phase="Progressing", startedAt=_iso(now), message="restarted",
                     restartedFor=changed)
        outcome.events.append(("Normal", "RolloutRestarted",
                               f"restarted {_name(workload)}; changed keys: {', '.join(changed)}"))
        outcome.wake(FOLLOW_INTERVAL)  # follow the rollout just started
    if refused:
        outcome.refused = refused
    return any_paused, refused


def _follow(workloads: Workloads, found: list[Workload], entries: dict[tuple[str, str], dict[str, Any]],
            spec: BotSecretSpec, mark: str, now: datetime.datetime, outcome: RolloutOutcome,
            plan: VersionPlan | None = None) -> None:
    bodies = {(w.kind, w.name): w for w in found}
    for key, entry in entries.items():
        workload = bodies.get(key)
        if workload is None or workload.paused or not entry.get("startedAt") or entry.get("phase") == "Conflict":
            continue  # a conflict stays reported until the next restart
        elapsed = (now - _parse(entry["startedAt"])).total_seconds()
        # patched in this cycle: the body read before the patch says nothing about it
        if elapsed > 0 and entry.get("phase") != "Failed" and _mark_lost(workload, entry, mark):
            _conflict(workload, entry, mark, now, outcome)
            continue
        if entry.get("phase") == "Failed":
            _look_again(workload, entry, now, outcome)
            continue
        if entry.get("phase") != "Progressing":
            continue
        # Checked often at first, then less: a rollout that takes long costs few reads.
        interval = max(FOLLOW_INTERVAL, min(MAX_FOLLOW_INTERVAL, elapsed / 4))
        if elapsed <= 0:
            outcome.wake(interval)
            continue
        phase, message = workload.workload_kind.phase(workload.body)
        if phase == "Unknown":
            entry.update(phase="Unknown", message=message)
            continue
        if workload.workload_kind.mark(workload.body, mark) != entry.get("dataHMAC"):
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
    if workload.workload_kind.style != "apps":
        return False  # Versioned retargets only the apps/v1 kinds; others restart in place
    back_to = versioned.roll_back(workloads, workload.kind, workload.name, workload.template, entry, plan,
                                  annotation=mark, now=_iso(now))
    if back_to is None:
        return False
    keys = ", ".join(entry.get("restartedFor") or [])
    entry.update(phase="RolledBack", message=f"rolled back to {back_to}: {why}")
    outcome.events.append(("Warning", "RolledBack",
                           f"{_name(workload)} rolled back to {back_to} ({why}); changed keys: {keys}"))
    return True


def _mark_lost(workload: Workload, entry: Mapping[str, Any], mark: str) -> bool:
    """Whether the mark this operator wrote for the entry's current data is gone from the workload
    or holds another value. Only entries whose last restart wrote it for that data can tell: not
    those of older versions (no ``mark``), nor a new baseline taken since (another ``dataHMAC``),
    nor a template change made another way (strategy Versioned) that left ``mark`` behind."""
    written = entry.get("mark")
    return (written is not None and written == entry.get("dataHMAC")
            and workload.workload_kind.mark(workload.body, mark) != written)


def _conflict(workload: Workload, entry: dict[str, Any], mark: str, now: datetime.datetime,
              outcome: RolloutOutcome) -> None:
    """Another field manager removed or rewrote the mark: its next write would undo a second
    restart too, so none is made for this data; one Warning, and the next change tries once more."""
    rival = rival_manager(workload.body, workload.workload_kind, mark, WORKLOAD_FIELD_MANAGER)
    who = f"field manager {rival!r}" if rival else "a writer that owns no field there"
    message = (f"the restart mark was removed or rewritten by {who}; restarted once for this data, "
               "not again until it changes")
    entry.update(phase="Conflict", message=message, finishedAt=_iso(now))
    outcome.events.append(("Warning", "RestartConflict", f"{_name(workload)}: {message}"))


def _look_again(workload: Workload, entry: dict[str, Any], now: datetime.datetime, outcome: RolloutOutcome) -> None:
    """A failed rollout is not the end: someone may repair the workload by hand."""
    phase, message = workload.workload_kind.phase(workload.body)
    if phase == "Complete":
        entry.update(phase="Complete", message=f"{message} (after a failed rollout)", finishedAt=_iso(now))
    else:
        outcome.wake(stuck_recheck(FAILED_RECHECK, entry.get("finishedAt"), now))


def stuck_recheck(first: float, since: str | None, now: datetime.datetime) -> float:
    """When to look again at a workload stuck (paused, failed) since ``since``: at first after
    ``first`` seconds, then after a quarter of the time it has been stuck, at most
    :data:`MAX_STUCK_RECHECK`."""
    try:
        stuck = (now - _parse(since)).total_seconds() if since else 0.0
    except ValueError:
        stuck = 0.0
    return min(MAX_STUCK_RECHECK, max(first, stuck / 4))


_UNRESOLVED = (("Forbidden", "forbidden"), ("KindNotServed", "kind not served"), ("TargetNotFound", "not found"))


def _unresolved_text(unresolved: list[Unresolved]) -> str:
    parts = []
    for reason, words in _UNRESOLVED:
        named = [str(u) for u in unresolved if u.reason == reason]
        if named:
            parts.append(f"{words}: {', '.join(named)}")
    return "; ".join(parts)


def _condition(entries: list[dict[str, Any]], pending: Mapping[str, Any] | None, unresolved: list[Unresolved],
               waiting: list[str], paused_names: list[str]) -> dict[str, Any]:
    def names(phase: str) -> list[str]:
        return [f"{e['kind']}/{e['name']}" for e in entries if e.get("phase") == phase]
    failed, progressing, unknown = names("Failed"), names("Progressing"), names("Unknown")
    conflicts = [f"{e['kind']}/{e['name']}: {e.get('message', '')}" for e in entries if e.get("phase") == "Conflict"]
    problems = _unresolved_text(unresolved)
    suffix = "; " + problems if problems else ""
    rolled_back = versioned.rolled_back_condition(entries)
    if failed:
        return {"status": "False", "reason": "RolloutFailed", "message": "failed: " + ", ".join(failed) + suffix}
    if rolled_back is not None:
        return {**rolled_back, "message": rolled_back["message"] + suffix}
    if paused_names:
        return {"status": "False", "reason": "Paused",
                "message": "paused, restart waits: " + ", ".join(paused_names) + suffix}
    if waiting:
        return {"status": "False", "reason": "WaitingForRollout",
                "message": "data changed; the restart waits for the rollout of " + ", ".join(waiting) + suffix}
    if pending is not None:
        return {"status": "False", "reason": "Debouncing",
                "message": "data changed; restart after the debounce" + suffix}
    if progressing:
        return {"status": "False", "reason": "Progressing",
                "message": "rolling out: " + ", ".join(progressing) + suffix}
    if conflicts:
        return {"status": "False", "reason": "RestartConflict", "message": "; ".join(conflicts) + suffix}
    if unresolved:
        reason = next(r for r, _ in _UNRESOLVED if any(u.reason == r for u in unresolved))
        return {"status": "False", "reason": reason, "message": problems}
    if unknown:
        return {"status": "Unknown", "reason": "NotFollowed",
                "message": f"{', '.join(unknown)}: {NOT_FOLLOWED}"}
    return {"status": "True", "reason": "RolloutComplete", "message": "every target runs the current data"}
