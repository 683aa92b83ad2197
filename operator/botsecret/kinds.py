"""How each kind of workload is restarted and followed. Pure, over plain dicts in the API's shape.

Three styles:

- the apps/v1 kinds (Deployment, StatefulSet, DaemonSet): the BotSecret's mark on the pod template,
  as a strategic-merge patch; followed as ``kubectl rollout status`` follows them;
- Argo Rollouts (``argoproj.io`` ``Rollout``): the mark on the Rollout's own metadata and
  ``spec.restartAt`` in one merge patch, as Argo's docs say to restart one (its controller then
  recreates the pods without a canary or blue-green update); followed through ``status.phase``;
- any other kind with a pod template at ``spec.template``: the mark on the template, as a merge
  patch (custom resources take no strategic merge); followed where its status keeps the
  Deployment conventions (observedGeneration, updatedReplicas, conditions), else ``Unknown``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .spec import APPS_V1, BUILTIN_WORKLOAD_KINDS
from .workloads import Phase, rollout_phase

__all__ = [
    "ARGO_GROUP",
    "LEGACY_RESTART_ANNOTATION",
    "NOT_FOLLOWED",
    "Followed",
    "WorkloadKind",
    "argo_phase",
    "conventional_phase",
    "restart_patch",
    "rival_manager",
]

Followed = Phase | Literal["Unknown"]
# The one key every BotSecret wrote before each got its own; dropped by the next restart.
LEGACY_RESTART_ANNOTATION = "botsecret.dev/restarted-for"
ARGO_GROUP = "argoproj.io"
NOT_FOLLOWED = ("restarted; not followed: its status does not keep the Deployment conventions "
                "(observedGeneration with updatedReplicas or conditions)")
Style = Literal["apps", "argo", "generic"]


def restart_patch(annotation: str, value: str) -> dict[str, Any]:
    """The patch of one pod-template restart. It drops the legacy single key in the same template
    change, so the upgrade from it costs no rollout of its own."""
    return {"spec": {"template": {"metadata": {"annotations": {annotation: value, LEGACY_RESTART_ANNOTATION: None}}}}}


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WorkloadKind:
    api_version: str
    kind: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def style(self) -> Style:
        if self.api_version == APPS_V1 and self.kind in BUILTIN_WORKLOAD_KINDS:
            return "apps"
        if self.group == ARGO_GROUP and self.kind == "Rollout":
            return "argo"
        return "generic"

    @property
    def mark_parent(self) -> tuple[str, ...]:
        """Where the BotSecret's mark lives: the Rollout's own annotations (a template change would
        be an Argo update, with its canary steps), else the pod template's."""
        if self.style == "argo":
            return ("metadata", "annotations")
        return ("spec", "template", "metadata", "annotations")

    @property
    def owner_scope(self) -> tuple[str, ...]:
        """The part of the object whose other owners may be the ones rewriting the mark."""
        return ("metadata", "annotations") if self.style == "argo" else ("spec", "template")

    def restart_patch(self, annotation: str, value: str, now: datetime.datetime) -> dict[str, Any]:
        if self.style == "argo":
            return {"metadata": {"annotations": {annotation: value, LEGACY_RESTART_ANNOTATION: None}},
                    "spec": {"restartAt": _iso(now)}}
        return restart_patch(annotation, value)

    def mark(self, body: Mapping[str, Any], annotation: str) -> str | None:
        """The value of ``annotation`` where this kind keeps the mark (or, written by an older
        version, the legacy single key)."""
        node: Any = body
        for part in self.mark_parent:
            node = node.get(part) if isinstance(node, Mapping) else None
        annotations = node if isinstance(node, Mapping) else {}
        value = annotations.get(annotation, annotations.get(LEGACY_RESTART_ANNOTATION))
        return None if value is None else str(value)

    def phase(self, body: Mapping[str, Any]) -> tuple[Followed, str]:
        if self.style == "apps":
            return rollout_phase(self.kind, body)
        if self.style == "argo":
            return argo_phase(body)
        return conventional_phase(body)


def _time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def argo_phase(obj: Mapping[str, Any]) -> tuple[Phase, str]:
    """An Argo Rollout's progress after a restart: ``Healthy`` is Complete only once the controller
    says it restarted the pods (``status.restartedAt`` at or after ``spec.restartAt``) and no
    update is under way (``currentPodHash == stableRS``); ``Degraded`` is Failed."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")  # a string in Argo's status
    if observed is not None and generation is not None and str(observed) != str(generation):
        return "Progressing", f"waiting for the Argo Rollouts controller to observe generation {generation}"
    phase = status.get("phase")
    if phase == "Degraded":
        return "Failed", "Degraded" + (f": {status['message']}" if status.get("message") else "")
    requested, restarted = _time(spec.get("restartAt")), _time(status.get("restartedAt"))
    if requested is not None and (restarted is None or restarted < requested):
        return "Progressing", f"waiting for the pods created before {spec.get('restartAt')} to be replaced"
    if status.get("currentPodHash") != status.get("stableRS"):
        return "Progressing", "an update is rolling out (currentPodHash differs from stableRS)"
    if phase == "Healthy":
        return "Complete", "Healthy; pods restarted" if requested is not None else "Healthy"
    return "Progressing", f"phase {phase}" if phase else "waiting for the controller to report a phase"


def conventional_phase(obj: Mapping[str, Any]) -> tuple[Followed, str]:
    """A workload of another kind, judged as a Deployment where its status looks like one's."""
    status = obj.get("status") or {}
    if "observedGeneration" not in status or not ("updatedReplicas" in status or "conditions" in status):
        return "Unknown", NOT_FOLLOWED
    return rollout_phase("Deployment", obj)


def _owned_depth(fields: Any, path: tuple[str, ...]) -> int:
    """How far down ``path`` a managedFields entry's fieldsV1 owns something."""
    depth = 0
    node = fields
    for part in path:
        node = node.get(f"f:{part}") if isinstance(node, Mapping) else None
        if node is None:
            break
        depth += 1
    return depth


def rival_manager(body: Mapping[str, Any], kind: WorkloadKind, annotation: str, ours: str) -> str | None:
    """The field manager most likely to have removed or rewritten our mark, from managedFields: one
    that owns the mark itself (it wrote another value), else the one that owns most of the place
    the mark lives in (a manager that only removes a key owns nothing of it afterwards: the owner
    of the template is the tool applying its own idea of it), the latest first. ``None`` if no
    other manager owns anything there."""
    path = (*kind.mark_parent, annotation)
    scope = len(kind.owner_scope)
    best: tuple[int, str, str] | None = None
    for entry in (body.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager")
        if not manager or manager == ours or entry.get("subresource"):
            continue
        depth = _owned_depth(entry.get("fieldsV1") or {}, path)
        if depth < scope:
            continue
        candidate = (depth, str(entry.get("time") or ""), str(manager))
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[2]
