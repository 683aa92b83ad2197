"""Versioned Secrets: names, pod-template references, the retargeting patch, failure by restarts
and what garbage collection may delete. Pure, over plain dicts in the API's camelCase shape.

With ``spec.rollout.strategy: Versioned`` every distinct data version lives in an immutable Secret
``<target>-<10 hex of its keyed HMAC>``. A restart moves a pod template's references from one
version to the next, so the old ReplicaSet (and every pod it starts, after an eviction or a drain)
keeps reading the old data, and a rollback is the same move backwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .fingerprint import PREFIX

__all__ = [
    "VERSION_LABEL",
    "Reference",
    "collectable",
    "is_version_of",
    "pod_restarts",
    "referenced_names",
    "references",
    "retarget_patch",
    "version_name",
]

# On every version Secret: the target Secret it is a version of.
VERSION_LABEL = "botsecret.dev/version-of"
HASH_CHARS = 10
NAME_MAX = 253
_HASH = re.compile(rf"[0-9a-f]{{{HASH_CHARS}}}")


def version_name(target: str, data_hmac: str) -> str:
    """The Secret name of the data version whose keyed HMAC is ``data_hmac``. Keyed, so the name
    tells nothing about a value to anyone without the operator's key."""
    digest = data_hmac.removeprefix(PREFIX)[:HASH_CHARS]
    return f"{target[:NAME_MAX - HASH_CHARS - 1]}-{digest}"


def is_version_of(name: str, target: str) -> bool:
    """Whether Secret ``name`` is the target itself or one of its versions."""
    stem = target[:NAME_MAX - HASH_CHARS - 1]
    if name == target:
        return True
    return name.startswith(stem + "-") and len(name) == len(stem) + 1 + HASH_CHARS \
        and bool(_HASH.fullmatch(name[len(stem) + 1:]))


@dataclass(frozen=True)
class Reference:
    """One place in a pod template that names a Secret: the JSON pointer of the name field."""

    pointer: str
    name: str


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _secret_fields(pod_spec: Mapping[str, Any], base: str) -> Iterable[Reference]:
    for group in ("initContainers", "containers"):
        for i, container in enumerate(pod_spec.get(group) or []):
            here = f"{base}/{group}/{i}"
            for j, source in enumerate(container.get("envFrom") or []):
                ref = source.get("secretRef") or {}
                if "name" in ref:
                    yield Reference(f"{here}/envFrom/{j}/secretRef/name", str(ref["name"]))
            for j, env in enumerate(container.get("env") or []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                if "name" in ref:
                    yield Reference(f"{here}/env/{j}/valueFrom/secretKeyRef/name", str(ref["name"]))
    for i, volume in enumerate(pod_spec.get("volumes") or []):
        secret = volume.get("secret") or {}
        if "secretName" in secret:
            yield Reference(f"{base}/volumes/{i}/secret/secretName", str(secret["secretName"]))
        for j, source in enumerate((volume.get("projected") or {}).get("sources") or []):
            projected = source.get("secret") or {}
            if "name" in projected:
                yield Reference(f"{base}/volumes/{i}/projected/sources/{j}/secret/name", str(projected["name"]))


def references(pod_spec: Mapping[str, Any], target: str, base: str = "") -> list[Reference]:
    """Every reference of ``pod_spec`` to the target Secret or to one of its versions."""
    return [r for r in _secret_fields(pod_spec, base) if is_version_of(r.name, target)]


def referenced_names(pod_spec: Mapping[str, Any]) -> set[str]:
    """Every Secret name ``pod_spec`` references."""
    return {r.name for r in _secret_fields(pod_spec, "")}


TEMPLATE = "/spec/template"


def retarget_patch(template: Mapping[str, Any], target: str, to_name: str, *, annotation: str,
                   mark: str | None, base: str = TEMPLATE) -> list[dict[str, Any]]:
    """The JSON patch that points every reference of the pod template (at ``base`` in the object)
    to the target or its versions at ``to_name``, and sets (or, with ``None``, removes) the
    annotation ``annotation`` to ``mark``.

    Every replaced field is tested first: a template edited since it was read fails the whole
    patch instead of landing half-way.
    """
    ops: list[dict[str, Any]] = []
    for ref in references(template.get("spec") or {}, target, f"{base}/spec"):
        ops.append({"op": "test", "path": ref.pointer, "value": ref.name})
        ops.append({"op": "replace", "path": ref.pointer, "value": to_name})
    metadata = template.get("metadata")
    annotations = (metadata or {}).get("annotations")
    pointer = f"{base}/metadata/annotations/{_escape(annotation)}"
    if mark is None:
        if annotations and annotation in annotations:
            ops.append({"op": "test", "path": pointer, "value": annotations[annotation]})
            # The last annotation takes the map with it, as the template had none before.
            only = len(annotations) == 1
            ops.append({"op": "remove", "path": f"{base}/metadata/annotations" if only else pointer})
    elif metadata is None:
        ops.append({"op": "add", "path": f"{base}/metadata", "value": {"annotations": {annotation: mark}}})
    elif annotations is None:
        ops.append({"op": "add", "path": f"{base}/metadata/annotations", "value": {annotation: mark}})
    else:
        if annotation in annotations:
            ops.append({"op": "test", "path": pointer, "value": annotations[annotation]})
        ops.append({"op": "add", "path": pointer, "value": mark})
    return ops


def pod_restarts(pods: Iterable[Mapping[str, Any]], secret: str) -> tuple[int, str | None]:
    """The most restarts of one container among the pods that reference Secret ``secret``, and
    which pod and container that is."""
    worst, where = 0, None
    for pod in pods:
        if secret not in referenced_names(pod.get("spec") or {}):
            continue
        status = pod.get("status") or {}
        for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            count = int(container.get("restartCount") or 0)
            if count > worst:
                worst = count
                where = f"pod {(pod.get('metadata') or {}).get('name')} container {container.get('name')}"
    return worst, where


def collectable(versions: Sequence[Mapping[str, Any]], keep: int, referenced: set[str]) -> list[str]:
    """Of ``status.versions`` entries (oldest first, as they were made), the names garbage
    collection may delete: all but the ``keep`` newest, and never one that something still
    references. The order of the list decides, not ``createdAt``: several versions can be made
    within one second."""
    newest_first = list(reversed(versions))
    return [str(v["secretName"]) for v in newest_first[keep:] if v.get("secretName") not in referenced]
