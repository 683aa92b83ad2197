"""Translate the outcome of a sync (and of the rollout step after it) into the BotSecret's status.
Pure."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from .reconcile import SyncResult

__all__ = [
    "SYNCED_AT_MAX_AGE_SECONDS", "condition", "events_for", "found_status", "log_line", "ready_condition",
    "rollout_status_patch", "status_patch",
]

# A sync that changes nothing else patches status only when syncedAt is older than this: an idle
# refresh costs no write, and syncedAt still says "checked within the last day".
SYNCED_AT_MAX_AGE_SECONDS = 24 * 3600.0


def condition(kind: str, status: str, reason: str, message: str, *, generation: int, now: str,
              previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """A metav1.Condition; its lastTransitionTime moves only when status or reason changes."""
    since = now
    if previous and previous.get("status") == status and previous.get("reason") == reason:
        since = previous.get("lastTransitionTime") or now
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": since}


def _find(current: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in current.get("conditions") or [] if c.get("type") == kind), None)


def ready_condition(result: SyncResult, *, generation: int, now: str,
                    previous: Mapping[str, Any] | None) -> dict[str, Any]:
    return condition("Ready", "True" if result.ready else "False", result.reason, result.message,
                     generation=generation, now=now, previous=previous)


def status_patch(result: SyncResult, *, current: Mapping[str, Any], generation: int, now: str,
                 force_sync: str | None, rollout: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The merge patch for ``status`` (only the fields that change), or ``None`` when nothing does.

    ``syncedAt`` is the end of the last successful sync that changed anything in status (or, when
    nothing did, of the first one a day after the last recorded): an idle refresh patches nothing.
    ``writtenAt`` is the last time the Secret was written. A failure moves neither. ``rollout`` carries ``entries``,
    ``pending`` and ``condition`` (status, reason, message) from the rollout step, or is ``None``
    when the BotSecret names no rollout targets.
    """
    conditions = [ready_condition(result, generation=generation, now=now, previous=_find(current, "Ready"))]
    patch: dict[str, Any] = {"observedGeneration": generation}
    _add_rollout(patch, conditions, current, rollout, generation=generation, now=now)
    patch["conditions"] = conditions
    if result.secret_name:
        patch["secretName"] = result.secret_name
    if force_sync is not None:
        patch["forceSyncHandled"] = force_sync
    if result.ready:
        patch["dataHMAC"] = result.data_hmac
        patch["keys"] = [
            {"key": o.key, "template": True} if o.template else
            {"key": o.key, "source": o.source, "remoteName": o.remote_name, "version": o.version}
            for o in result.origins
        ]
        if result.spec is not None and result.found is not None and (result.spec.finds or "found" in current):
            # Only BotSecrets with finds carry the field (or had them: then it is emptied), so the
            # upgrade that introduced it costs no status patch for the others.
            patch["found"] = found_status(result)
    if result.ready and result.fetched and result.written:
        patch["writtenAt"] = now
    changed = {k: v for k, v in patch.items() if current.get(k) != v}
    if result.ready and result.fetched and (changed or _older_than(current.get("syncedAt"), now,
                                                                    SYNCED_AT_MAX_AGE_SECONDS)):
        changed["syncedAt"] = now
    return {k: v for k, v in changed.items() if current.get(k) != v} or None


def _older_than(stamp: Any, now: str, seconds: float) -> bool:
    try:
        then = datetime.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")
        return (datetime.datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ") - then).total_seconds() >= seconds
    except ValueError:
        return True  # never recorded, or unreadable


def found_status(result: SyncResult) -> list[dict[str, Any]]:
    """What each find matched at the last successful sync: names, versions and keys, never values."""
    assert result.spec is not None and result.found is not None
    return [{"dataFrom": item.index, "source": item.source, "matches": [
        {"name": o.remote_name, "version": o.version, "key": o.key}
        for o in sorted(result.found, key=lambda o: o.remote_name) if o.found_by == item.index]}
        for item in result.spec.finds]


def _add_rollout(patch: dict[str, Any], conditions: list[dict[str, Any]], current: Mapping[str, Any],
                 rollout: Mapping[str, Any] | None, *, generation: int, now: str) -> None:
    if rollout is None or rollout.get("condition") is None:
        return
    c = rollout["condition"]
    conditions.append(condition("RolloutComplete", c["status"], c["reason"], c["message"],
                                generation=generation, now=now, previous=_find(current, "RolloutComplete")))
    patch["rollout"] = list(rollout.get("entries") or [])
    patch["pendingRollout"] = rollout.get("pending")
    patch["hmacKeyId"] = rollout.get("keyId")
    if rollout.get("versions") is not None:
        patch["versions"] = list(rollout["versions"])


def rollout_status_patch(*, current: Mapping[str, Any], rollout: Mapping[str, Any], generation: int,
                         now: str) -> dict[str, Any] | None:
    """The status patch of a cycle that only advanced rollouts: the Ready condition stays."""
    ready = _find(current, "Ready")
    conditions = [dict(ready)] if ready else []
    patch: dict[str, Any] = {}
    _add_rollout(patch, conditions, current, rollout, generation=generation, now=now)
    patch["conditions"] = conditions
    if all(current.get(k) == v for k, v in patch.items()):
        return None
    return patch


def events_for(result: SyncResult, *, previous_ready: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """Events worth posting: a Normal one per write, a Warning when the BotSecret turns unready
    or its reason changes (not one per retry)."""
    events: list[tuple[str, str, str]] = []
    if result.ready and result.written:
        changed = ", ".join(result.changed_keys) or "metadata"
        events.append(("Normal", "Synced", f"Secret {result.secret_name!r} written; changed: {changed}"))
    if not result.ready:
        same = previous_ready is not None and previous_ready.get("status") == "False" \
            and previous_ready.get("reason") == result.reason
        if not same:
            events.append(("Warning", result.reason, result.message))
    return events


def log_line(result: SyncResult, *, namespace: str, name: str, seconds: float, next_in: float | None = None,
             events_poll: float | None = None) -> str:
    """The operator's log line for the outcome of one sync: which BotSecret, what, how long (and,
    when change events stretch its polls, ``events_poll``: the seconds until the next one)."""
    if result.ready:
        detail = f"{seconds:.2f} s, Secret {'written' if result.written else 'unchanged'}"
        if events_poll is not None:
            detail += f"; change events cover it, next poll in {events_poll:.0f} s"
    else:
        detail = f"{seconds:.2f} s" + (f"; next try in {next_in:.0f} s" if next_in is not None else "")
    return f"{namespace}/{name} {result.reason}: {result.message} ({detail})"
