"""One cycle for one BotSecret: sync (or, to follow a rollout, the data already synced), the
rollout step, status. Plain functions, no kopf, so the handler layer stays a thin translation."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import metrics, secrets, version_store
from .fingerprint import namespace_key
from .reconcile import FORCE_SYNC_ANNOTATION, SyncResult, fresh_read, from_synced, sync
from .rollout import RolloutOutcome, Workloads, advance
from .runtime import Runtime
from .spec import InvalidSpec, parse_spec
from .status import events_for, rollout_status_patch, status_patch
from .versioned import VersionPlan
from .versions import version_name

__all__ = [
    "FINALIZER",
    "FORCE_SYNC_ANNOTATION",
    "RETRY_ROLLOUT_ANNOTATION",
    "ROTATE_NOW_ANNOTATION",
    "CycleOutcome",
    "release_secret",
    "release_target",
    "rotate_now",
    "run_cycle",
    "run_rollout_cycle",
]

# Set to the same value as force-sync (`botsecret rotate --now`): the sync that handles that value
# restarts without waiting out the debounce. Once handled (status.forceSyncHandled), it is inert.
ROTATE_NOW_ANNOTATION = "botsecret.dev/rotate-now"
# Set to the same value as force-sync (`botsecret rotate --retry`): the sync that handles that value
# rolls out again a version that was rolled back, though its data did not change.
RETRY_ROLLOUT_ANNOTATION = "botsecret.dev/retry-rollout"
# kopf's finalizer on every BotSecret (its daemons require one); `botsecret uninstall` removes it.
FINALIZER = "botsecret.dev/finalizer"


@dataclass
class CycleOutcome:
    result: SyncResult
    events: list[tuple[str, str, str]] = field(default_factory=list)
    wake_in: float | None = None
    # The status as this cycle left it. The daemon is the only writer of status, so its own copy is
    # newer than a body whose watch event has not arrived yet.
    status: dict[str, Any] = field(default_factory=dict)


def rotate_now(body: Mapping[str, Any], annotation: str = ROTATE_NOW_ANNOTATION) -> bool:
    """Whether this cycle handles a `rotate --now` (or, with the retry annotation, a `rotate
    --retry`): its force-sync value is new and the annotation names the same value."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    wanted = annotations.get(annotation)
    return (wanted is not None and wanted == annotations.get(FORCE_SYNC_ANNOTATION)
            and (body.get("status") or {}).get("forceSyncHandled") != wanted)


def _version_plan(runtime: Runtime, body: Mapping[str, Any], result: SyncResult, now: datetime.datetime,
                  versions: list[dict[str, Any]], *, retry: bool) -> VersionPlan | None:
    """With strategy Versioned, make sure the version Secret of the data synced now exists (and is
    in ``versions``) before any template may name it."""
    spec = result.spec
    if spec is None or not spec.rollout_policy.versioned:
        return None
    if not result.ready or not result.data_hmac:
        # No news about the data: nothing is restarted, but a failed rollout is still rolled back.
        return VersionPlan(spec.target.name, "", retry=False)
    meta = body["metadata"]
    name = version_name(spec.target.name, result.data_hmac)
    if all(v.get("secretName") != name for v in versions):
        owner = secrets.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))
        version_store.ensure(runtime.core, owner, spec.target, name, result.data)
        versions.append(version_store.version_record(name, result.data_hmac, now))
    return VersionPlan(spec.target.name, name, retry=retry)


def _collect(runtime: Runtime, namespace: str, outcome: RolloutOutcome, plan: VersionPlan, keep: int,
             versions: list[dict[str, Any]]) -> None:
    """Garbage-collect versions beyond ``keep``; what a target names or may roll back to stays."""
    named = {plan.current} | {str(e[k]) for e in outcome.entries for k in ("secretName", "previousSecretName")
                              if e.get(k)}
    if len(versions) > keep:
        gone = set(version_store.garbage_collect(runtime.core, runtime.api, namespace, versions, keep, named))
        versions[:] = [v for v in versions if v.get("secretName") not in gone]
    outcome.versions = versions


def _rollout_step(runtime: Runtime, body: Mapping[str, Any], result: SyncResult,
                  now: datetime.datetime, *, skip_debounce: bool = False, retry: bool = False) -> RolloutOutcome | None:
    if result.spec is None:
        return None
    workloads = Workloads(runtime.api, body["metadata"]["namespace"], runtime.opt_in_listing,
                          fresh=_may_restart(body, result))
    try:
        if not result.spec.rollout_targets and not (body.get("status") or {}).get("rollout") and (
                not result.ready or result.secret_name is None or not workloads.opted_in(result.secret_name)):
            return None  # nothing to restart, nothing recorded: no rollout status at all
        key = namespace_key(runtime.hmac_key, body["metadata"]["namespace"])
        versions = [dict(v) for v in (body.get("status") or {}).get("versions") or []]
        plan = _version_plan(runtime, body, result, now, versions, retry=retry)
        outcome = advance(workloads, key, body.get("status") or {}, result, now, botsecret=body["metadata"]["name"],
                          skip_debounce=skip_debounce, plan=plan)
        if plan is not None and plan.current and result.spec is not None:
            _collect(runtime, body["metadata"]["namespace"], outcome, plan, result.spec.rollout_policy.keep_versions,
                     versions)
        return outcome
    except secrets.TargetConflict as e:
        outcome = _kept(body)
        outcome.condition = {"status": "False", "reason": "VersionConflict", "message": str(e)}
        return outcome
    except ApiException as e:
        # Nothing was recorded as restarted; the next cycle tries again.
        outcome = _kept(body)
        outcome.condition = {"status": "False", "reason": "RolloutError",
                             "message": f"reading workloads failed with HTTP {e.status}"}
        return outcome


def _kept(body: Mapping[str, Any]) -> RolloutOutcome:
    """The rollout status as it stands, for a step that could not be taken; tried again in 30 s."""
    status = body.get("status") or {}
    return RolloutOutcome(entries=list(status.get("rollout") or []), pending=status.get("pendingRollout"),
                          wake_in=30.0, key_id=status.get("hmacKeyId"))


def _may_restart(body: Mapping[str, Any], result: SyncResult) -> bool:
    """Whether this cycle may restart or follow a rollout, and so needs a fresh listing of the
    workloads that opt in: the data changed since the last sync, a restart waits, a rollout is not
    complete, or the user asked (force-sync, spec edit). An idle refresh, a failure and a first
    sync (which only records baselines) may use the namespace's shared listing."""
    status = body.get("status") or {}
    changed = result.ready and bool(status.get("dataHMAC")) and result.data_hmac != status.get("dataHMAC")
    return (changed or fresh_read(body) or bool(status.get("pendingRollout"))
            or any(e.get("phase") in ("Progressing", "Failed") for e in status.get("rollout") or []))


def _rollout_fields(rollout: RolloutOutcome) -> dict[str, Any]:
    return {"entries": rollout.entries, "pending": rollout.pending, "condition": rollout.condition,
            "keyId": rollout.key_id, "versions": rollout.versions}


def _write_status(runtime: Runtime, meta: Mapping[str, Any], current: Mapping[str, Any],
                  patch: dict[str, Any] | None) -> dict[str, Any]:
    """Apply the status patch (if any); answer the status as it now stands."""
    if patch is not None:
        try:
            runtime.patch_status(meta["namespace"], meta["name"], patch)
        except ApiException as e:
            if e.status != 404:  # deleted meanwhile: nothing to report to
                raise
    return {k: v for k, v in {**current, **(patch or {})}.items() if v is not None}


def _now() -> tuple[datetime.datetime, str]:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return now, now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _being_deleted(runtime: Runtime, body: Mapping[str, Any]) -> bool:
    """Whether this BotSecret is going away. Deletion bumps the generation, which wakes the daemon
    just as release runs; the lock orders nothing, so a cycle may come after release, and its
    snapshot may be older than the deletion. Either sign is enough to write nothing."""
    meta = body.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) or runtime.released.has(str(meta.get("uid", "")))


def _nothing_written(body: Mapping[str, Any]) -> CycleOutcome:
    # Not a failure (no backoff, no status: there is nothing left to report to).
    result = SyncResult(True, "Deleting", "the BotSecret is being deleted; nothing written")
    return CycleOutcome(result, status=dict(body.get("status") or {}))


def run_cycle(runtime: Runtime, body: Mapping[str, Any]) -> CycleOutcome:
    """One full cycle. The caller holds the BotSecret's lock, the one release takes too."""
    if _being_deleted(runtime, body):
        return _nothing_written(body)
    now, stamp = _now()
    with metrics.SYNC_SECONDS.time():
        result = sync(runtime.sync_context, body)
        rollout = _rollout_step(runtime, body, result, now, skip_debounce=rotate_now(body),
                                retry=rotate_now(body, RETRY_ROLLOUT_ANNOTATION))
    metrics.SYNCS.labels(result.reason).inc()
    metrics.sync_outcome(body["metadata"]["namespace"], body["metadata"]["name"], result.ready)
    if result.written:
        metrics.SECRET_WRITES.inc()

    meta, current = body["metadata"], body.get("status") or {}
    previous_ready = next((c for c in current.get("conditions") or [] if c.get("type") == "Ready"), None)
    patch = status_patch(
        result, current=current, generation=int(meta.get("generation") or 0), now=stamp,
        force_sync=(meta.get("annotations") or {}).get(FORCE_SYNC_ANNOTATION),
        rollout=None if rollout is None else _rollout_fields(rollout),
    )
    status = _write_status(runtime, meta, current, patch)
    events = events_for(result, previous_ready=previous_ready)
    if result.warnings and (result.written or previous_ready is None or any(e[0] == "Warning" for e in events)):
        events += [("Warning", reason, message) for reason, message in result.warnings]
    if rollout is not None:
        events += rollout.events
    return CycleOutcome(result, events, rollout.wake_in if rollout is not None else None, status)


def run_rollout_cycle(runtime: Runtime, body: Mapping[str, Any]) -> CycleOutcome | None:
    """Advance rollouts from the data already synced, without asking any provider.

    ``None`` when that cannot be trusted (the last sync failed, the Secret drifted): the caller
    runs a full cycle instead.
    """
    if _being_deleted(runtime, body):
        return _nothing_written(body)
    now, stamp = _now()
    result = from_synced(runtime.sync_context, body)
    if result is None:
        return None
    rollout = _rollout_step(runtime, body, result, now)
    if rollout is None:
        return CycleOutcome(result, status=dict(body.get("status") or {}))
    meta, current = body["metadata"], body.get("status") or {}
    patch = rollout_status_patch(current=current, generation=int(meta.get("generation") or 0), now=stamp,
                                 rollout=_rollout_fields(rollout))
    return CycleOutcome(result, list(rollout.events), rollout.wake_in, _write_status(runtime, meta, current, patch))


def release_secret(core: Any, body: Mapping[str, Any]) -> str:
    """Carry out the deletion policy for a BotSecret that is going away; answers what was done."""
    meta = body["metadata"]
    try:
        spec = parse_spec(body.get("spec") or {}, name=meta["name"])
    except InvalidSpec:
        return "spec invalid; Secret left alone"
    owner = secrets.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))
    done = secrets.release(core, owner, spec.target)
    versions = (body.get("status") or {}).get("versions") or []
    if versions:  # whatever the strategy is now: versions made under Versioned follow the policy too
        done += "; " + version_store.release(core, owner, spec.target, versions)
    return done


def release_target(runtime: Runtime, body: Mapping[str, Any]) -> str:
    """Release's part, under the BotSecret's lock: from now on no cycle writes for it."""
    runtime.released.add(str(body["metadata"].get("uid", "")))
    metrics.forget(body["metadata"].get("namespace", ""), body["metadata"].get("name", ""))
    return release_secret(runtime.core, body)
