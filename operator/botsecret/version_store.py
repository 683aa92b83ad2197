"""Version Secrets in the cluster: create by name, find what still references them, delete.

Never a list or watch of Secrets: ``status.versions`` is the record of which versions exist, and
each is read, created and deleted by name. ReplicaSets, ControllerRevisions and pods are listed
(read only) to know which versions something still runs on.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .secrets import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL, Owner, TargetConflict
from .spec import Target
from .values import SecretValue
from .versions import VERSION_LABEL, collectable, referenced_names

__all__ = ["ensure", "garbage_collect", "live_pods", "live_references", "release", "version_record"]

FINISHED_POD_PHASES = ("Succeeded", "Failed")


def version_record(name: str, data_hmac: str, now: datetime.datetime) -> dict[str, str]:
    """One ``status.versions`` entry."""
    return {"secretName": name, "version": data_hmac.split(":")[-1][:10],
            "createdAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _label_value(name: str) -> str:
    # A label value holds at most 63 characters and must end in a letter or digit.
    return name[:63].rstrip("-.")


def _ours(secret: Any, owner: Owner, target: Target) -> bool:
    labels = secret.metadata.labels or {}
    return labels.get(OWNER_LABEL) == owner.name and labels.get(VERSION_LABEL) == _label_value(target.name) \
        and labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def ensure(core: Any, owner: Owner, target: Target, name: str, data: Mapping[str, SecretValue]) -> bool:
    """Create the immutable version Secret ``name`` unless it exists; answer whether it was created.
    Its name is content-addressed, so one that exists and is ours holds this data already."""
    try:
        existing = core.read_namespaced_secret(name, owner.namespace)
    except ApiException as e:
        if e.status != 404:
            raise
        existing = None
    if existing is not None:
        if not _ours(existing, owner, target):
            raise TargetConflict(f"Secret {name!r} (a version of {target.name!r}) exists and is not this BotSecret's")
        return False
    labels = {**target.labels, MANAGED_BY_LABEL: MANAGED_BY, OWNER_LABEL: owner.name,
              VERSION_LABEL: _label_value(target.name)}
    core.create_namespaced_secret(owner.namespace, {
        "apiVersion": "v1", "kind": "Secret", "type": target.type, "immutable": True,
        "metadata": {
            "name": name, "namespace": owner.namespace, "labels": labels, "annotations": dict(target.annotations),
            # Owned, never controlled: the BotSecret's deletion policy decides, as for the target.
            "ownerReferences": [{"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                                 "uid": owner.uid, "controller": False, "blockOwnerDeletion": False}],
        },
        "data": {k: base64.b64encode(v.reveal()).decode("ascii") for k, v in data.items()},
    }, field_manager=owner.field_manager)
    return True


def _items(response: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(response.data).get("items") or []
    return items


def live_pods(api: Any, namespace: str) -> list[dict[str, Any]]:
    """Pods of the namespace that are not finished, as plain dicts."""
    pods = _items(client.CoreV1Api(api).list_namespaced_pod(namespace, _preload_content=False))
    return [p for p in pods if (p.get("status") or {}).get("phase") not in FINISHED_POD_PHASES]


def live_references(api: Any, namespace: str, names: Iterable[str]) -> set[str]:
    """Of Secret ``names``, those that a pod that has not finished, a ReplicaSet with replicas or
    any ControllerRevision references."""
    wanted = set(names)
    found: set[str] = set()
    for pod in live_pods(api, namespace):
        found |= referenced_names(pod.get("spec") or {}) & wanted
    apps = client.AppsV1Api(api)
    for rs in _items(apps.list_namespaced_replica_set(namespace, _preload_content=False)):
        if (rs.get("spec") or {}).get("replicas", 1) or (rs.get("status") or {}).get("replicas"):
            template = (rs.get("spec") or {}).get("template") or {}
            found |= referenced_names(template.get("spec") or {}) & wanted
    for revision in _items(apps.list_namespaced_controller_revision(namespace, _preload_content=False)):
        # A revision holds a patch of the template in whatever shape its controller chose.
        text = json.dumps(revision.get("data"))
        found |= {name for name in wanted if json.dumps(name) in text}
    return found


def _delete(core: Any, namespace: str, name: str) -> None:
    try:
        core.delete_namespaced_secret(name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise


def garbage_collect(core: Any, api: Any, namespace: str, versions: Sequence[Mapping[str, Any]], keep: int,
                    in_templates: set[str]) -> list[str]:
    """Delete the versions beyond the ``keep`` newest that nothing references (the targets' own
    templates, ``in_templates``, included); answer the names deleted."""
    candidates = collectable(versions, keep, in_templates)
    if not candidates:
        return []
    referenced = live_references(api, namespace, candidates)
    deleted = [name for name in candidates if name not in referenced]
    for name in deleted:
        _delete(core, namespace, name)
    return deleted


def release(core: Any, owner: Owner, target: Target, versions: Sequence[Mapping[str, Any]]) -> str:
    """The deletion policy, for every version ``status.versions`` records."""
    done = 0
    for record in versions:
        name = str(record.get("secretName", ""))
        try:
            secret = core.read_namespaced_secret(name, owner.namespace)
        except ApiException as e:
            if e.status == 404:
                continue
            raise
        if not _ours(secret, owner, target):
            continue
        if target.deletion_policy == "Delete":
            _delete(core, owner.namespace, name)
        else:
            refs = [r for r in (secret.metadata.owner_references or []) if r.uid != owner.uid]
            core.patch_namespaced_secret(name, owner.namespace, [{
                "op": "replace", "path": "/metadata/ownerReferences",
                "value": [core.api_client.sanitize_for_serialization(r) for r in refs]}])
        done += 1
    verb = "deleted" if target.deletion_policy == "Delete" else "retained"
    return f"{done} versions {verb}"
