"""What a workload consumes of a Secret, and how far its rollout got. Pure, over plain dicts in
the API's camelCase shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

__all__ = [
    "EVERY_KEY", "RESTART_ON_ANNOTATION", "Phase", "consumed_keys", "keys_read", "referenced_keys", "restart_on",
    "rollout_phase",
]

Phase = Literal["Progressing", "Complete", "Failed"]
# Stands for "the whole Secret" among key names; no Secret key can be "*".
EVERY_KEY = "*"
# On a workload's own metadata: the Secrets whose rotations restart it, or "auto".
RESTART_ON_ANNOTATION = "botsecret.dev/restart-on"
AUTO = "auto"


def restart_on(annotations: Mapping[str, str] | None, secret: str) -> Literal["named", "auto"] | None:
    """Whether a workload with these annotations opts in to restarts for Secret ``secret``:
    ``"named"`` when the annotation lists the Secret (restarted for any change, like a target named
    in spec.rollout, whether or not its template reads the Secret), ``"auto"`` when it says
    ``auto`` (restarted only for what its template reads), ``None`` otherwise."""
    value = (annotations or {}).get(RESTART_ON_ANNOTATION)
    if not isinstance(value, str):
        return None
    names = {name.strip() for name in value.split(",")}
    if secret in names:
        return "named"
    return "auto" if AUTO in names else None


def _containers(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]


def referenced_keys(pod_template: Mapping[str, Any], secret: str | Callable[[str], bool]) -> frozenset[str] | None:
    """The keys of Secret ``secret`` (a name, or a test of names: a Secret and its versions) that
    the pod template names, as it names them: ``{"*"}``
    (:data:`EVERY_KEY`) when it reads the whole Secret through ``envFrom`` or a volume without
    ``items``; ``None`` if it does not reference the Secret at all.

    What the template says, not what the Secret holds: a change of this set is an edit of the
    workload (rolled out by whoever made it), while a key that appears in the Secret later is not.
    """
    matches: Callable[[Any], bool] = secret if callable(secret) else (lambda name: name == secret)
    named: set[str] = set()
    referenced = False
    pod_spec = pod_template.get("spec") or {}
    for container in _containers(pod_spec):
        for source in container.get("envFrom") or []:
            if matches((source.get("secretRef") or {}).get("name")):
                return frozenset({EVERY_KEY})
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if matches(ref.get("name")):
                referenced = True
                named.add(ref.get("key", ""))
    for volume in pod_spec.get("volumes") or []:
        sources = [volume.get("secret") or {}]
        sources += [p.get("secret") or {} for p in (volume.get("projected") or {}).get("sources") or []]
        for src in sources:
            if not matches(src.get("secretName", src.get("name"))):
                continue
            items = src.get("items")
            if not items:
                return frozenset({EVERY_KEY})
            referenced = True
            named.update(item.get("key", "") for item in items)
    return frozenset(named) if referenced else None


def keys_read(referenced: frozenset[str], keys: Iterable[str]) -> frozenset[str]:
    """Which of the Secret's ``keys`` a template with these :func:`referenced_keys` reads."""
    every = frozenset(keys)
    return every if EVERY_KEY in referenced else referenced & every


def consumed_keys(pod_template: Mapping[str, Any], secret: str, keys: Iterable[str]) -> frozenset[str] | None:
    """The keys of Secret ``secret`` that the pod template reads, or ``None`` if it reads none.

    A key-by-key reference (``env[].valueFrom.secretKeyRef``, or a volume with ``items``) counts
    only those keys; ``envFrom`` or a volume of the whole Secret counts every key.
    """
    referenced = referenced_keys(pod_template, secret)
    return None if referenced is None else keys_read(referenced, keys)


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def rollout_phase(kind: str, obj: Mapping[str, Any]) -> tuple[Phase, str]:
    """The phase of a workload's rollout, judged the way ``kubectl rollout status`` does."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return "Progressing", "waiting for the controller to observe the new template"
    if kind == "Deployment":
        if _condition(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded":
            return "Failed", "progress deadline exceeded"
        desired = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        if updated < desired:
            return "Progressing", f"{updated} of {desired} replicas updated"
        if status.get("replicas", 0) > updated:
            return "Progressing", f"{status.get('replicas', 0) - updated} old replicas pending termination"
        if status.get("availableReplicas", 0) < updated:
            return "Progressing", f"{status.get('availableReplicas', 0)} of {updated} updated replicas available"
        return "Complete", f"{updated} replicas updated and available"
    if kind == "StatefulSet":
        desired = spec.get("replicas", 1)
        if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            return "Complete", "OnDelete strategy: pods pick up the template when they are deleted"
        strategy = spec.get("updateStrategy") or {}
        partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
        if partition > 0:
            # Only the ordinals at or above the partition are updated, as kubectl rollout status judges.
            expected = max(desired - partition, 0)
            if status.get("updatedReplicas", 0) < expected:
                return "Progressing", f"{status.get('updatedReplicas', 0)} of {expected} partitioned replicas updated"
            return "Complete", f"{expected} replicas at or above partition {partition} updated"
        if status.get("updatedReplicas", 0) < desired:
            return "Progressing", f"{status.get('updatedReplicas', 0)} of {desired} replicas updated"
        if status.get("readyReplicas", 0) < desired:
            return "Progressing", f"{status.get('readyReplicas', 0)} of {desired} replicas ready"
        if status.get("updateRevision") != status.get("currentRevision") and desired > 0:
            return "Progressing", "waiting for the update revision to become current"
        return "Complete", f"{desired} replicas updated and ready"
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return "Complete", "OnDelete strategy: pods pick up the template when they are deleted"
    desired = status.get("desiredNumberScheduled", 0)
    updated = status.get("updatedNumberScheduled", 0)
    if updated < desired:
        return "Progressing", f"{updated} of {desired} pods updated"
    if status.get("numberAvailable", 0) < desired:
        return "Progressing", f"{status.get('numberAvailable', 0)} of {desired} pods available"
    return "Complete", f"{desired} pods updated and available"
