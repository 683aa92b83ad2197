"""The Versioned strategy's part of a rollout step: move a workload's references to the new
version, judge a rollout failed by its pods' restarts, and roll it back to the previous version.

The decisions are pure functions of the entry, the workload body and the pods; the one write is
the JSON patch the caller's :class:`Patcher` applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .versions import pod_restarts, references, retarget_patch

__all__ = ["Patcher", "VersionPlan", "failed_by_restarts", "retarget", "roll_back", "rolled_back_condition", "settled"]

# Fields of a rollout entry that only the Versioned strategy writes.
VERSION_FIELDS = ("secretName", "previousSecretName", "previousMark", "rejectedSecretName", "rolledBackAt")


@dataclass(frozen=True)
class VersionPlan:
    """What a Versioned rollout step works with."""

    target: str  # the plain target Secret's name
    current: str  # the version Secret of the data synced now; "" when the sync failed
    retry: bool = False  # `botsecret rotate --retry`: try a rolled-back version again


class Patcher(Protocol):
    def json_patch(self, kind: str, name: str, ops: list[dict[str, Any]]) -> None: ...


def _annotation(template: Mapping[str, Any], annotation: str) -> str | None:
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(annotation)
    return None if value is None else str(value)


def _most_named(template: Mapping[str, Any], target: str) -> str | None:
    names = [r.name for r in references(template.get("spec") or {}, target)]
    return max(sorted(set(names)), key=names.count) if names else None


def baseline(entry: dict[str, Any], template: Mapping[str, Any], target: str) -> None:
    """Record which version the workload's template names now."""
    named = _most_named(template, target)
    if named is not None:
        entry["secretName"] = named


def retarget(patcher: Patcher, kind: str, name: str, template: Mapping[str, Any], entry: dict[str, Any],
             plan: VersionPlan, *, annotation: str, mark: str) -> bool:
    """Point every reference of the template to the current version and set the mark; remember
    what to roll back to. Answer ``False`` when the template already names only that version (the
    data went back to a version it runs): nothing to roll out."""
    refs = references(template.get("spec") or {}, plan.target)
    if refs and all(r.name == plan.current for r in refs):
        return False
    previous = _most_named(template, plan.target)
    patcher.json_patch(kind, name,
                       retarget_patch(template, plan.target, plan.current, annotation=annotation, mark=mark))
    for field in VERSION_FIELDS:
        entry.pop(field, None)
    entry["secretName"] = plan.current
    if previous is not None:
        entry["previousSecretName"] = previous
    old_mark = _annotation(template, annotation)
    if old_mark is not None:
        entry["previousMark"] = old_mark
    return True


def settled(entry: dict[str, Any]) -> None:
    """A rollout that completed is never rolled back: its previous version need not be kept for it."""
    entry.pop("previousSecretName", None)
    entry.pop("previousMark", None)


def failed_by_restarts(pods: Sequence[Mapping[str, Any]], entry: Mapping[str, Any],
                       max_restarts: int | None) -> str | None:
    """Why the rollout counts as failed by its new pods' restarts, or ``None``."""
    secret = entry.get("secretName")
    if max_restarts is None or not secret:
        return None
    restarts, where = pod_restarts(pods, str(secret))
    if restarts < max_restarts:
        return None
    return f"{where} restarted {restarts} times (maxRestarts {max_restarts})"


def roll_back(patcher: Patcher, kind: str, name: str, template: Mapping[str, Any], entry: dict[str, Any],
              plan: VersionPlan, *, annotation: str, now: str) -> str | None:
    """Move the template back to the previous version's references and mark, so that it equals the
    old ReplicaSet's again and the controller scales that one back up. Answer the name rolled back
    to, or ``None`` when there is no previous version to go back to."""
    previous = entry.get("previousSecretName")
    if not previous:
        return None
    patcher.json_patch(kind, name, retarget_patch(template, plan.target, str(previous), annotation=annotation,
                                                  mark=entry.get("previousMark")))
    entry["rejectedSecretName"] = entry.get("secretName")
    entry["secretName"] = previous
    entry["rolledBackAt"] = now
    entry.pop("previousSecretName", None)
    entry.pop("previousMark", None)
    entry.pop("mark", None)  # the template carries the previous mark again, on purpose: no RestartConflict
    return str(previous)


def rolled_back_condition(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    rolled = [e for e in entries if e.get("phase") == "RolledBack"]
    if not rolled:
        return None
    parts = [f"{e['kind']}/{e['name']} to {e.get('secretName')} (keys {', '.join(e.get('restartedFor') or [])})"
             for e in rolled]
    return {"status": "False", "reason": "RolledBack",
            "message": "rolled back: " + "; ".join(parts)
            + "; not tried again until the data changes or `botsecret rotate NAME --retry`"}
