"""Translate a sync result into the BotSecret's status. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .reconcile import SyncResult

__all__ = ["ready_condition", "status_patch"]


def ready_condition(result: SyncResult, *, generation: int, now: str,
                    previous: Mapping[str, Any] | None) -> dict[str, Any]:
    status = "True" if result.ready else "False"
    since = now
    if previous and previous.get("status") == status and previous.get("reason") == result.reason:
        since = previous.get("lastTransitionTime") or now
    return {
        "type": "Ready", "status": status, "reason": result.reason, "message": result.message,
        "observedGeneration": generation, "lastTransitionTime": since,
    }


def _conditions(current: Mapping[str, Any], condition: dict[str, Any]) -> list[dict[str, Any]]:
    others = [c for c in current.get("conditions") or [] if c.get("type") != condition["type"]]
    return [condition, *others]


def status_patch(result: SyncResult, *, current: Mapping[str, Any], generation: int, now: str,
                 force_sync: str | None) -> dict[str, Any] | None:
    """The merge patch for ``status``, or ``None`` when nothing but the time would change."""
    previous = next((c for c in current.get("conditions") or [] if c.get("type") == "Ready"), None)
    patch: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": _conditions(current, ready_condition(result, generation=generation, now=now,
                                                           previous=previous)),
    }
    if result.secret_name:
        patch["secretName"] = result.secret_name
    if force_sync is not None:
        patch["forceSyncHandled"] = force_sync
    if result.ready:
        patch["dataHMAC"] = result.data_hmac
        patch["keys"] = [
            {"key": o.key, "source": o.source, "remoteName": o.remote_name, "version": o.version}
            for o in result.origins
        ]
    if all(current.get(k) == v for k, v in patch.items()):
        return None
    if result.ready:
        patch["syncedAt"] = now
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
