"""``botsecret uninstall``: what the operator does when a BotSecret goes, done for every BotSecret
at once and without the operator, so that the CRD can be deleted.

kopf puts a finalizer on every BotSecret, and a stopped operator (or a CRD being deleted, which
kopf will not serve) never removes it: ``kubectl delete crd`` would hang for ever, and removing
the finalizers by hand lets the garbage collector delete every ``Owner`` Secret whatever its
``deletionPolicy``. Plain functions, no kopf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .cycle import FINALIZER, release_secret
from .spec import InvalidSpec, parse_spec

__all__ = ["Outcome", "botsecrets", "plan", "uninstall", "uninstall_one"]

GROUP, VERSION, PLURAL = "botsecret.dev", "v1alpha1", "botsecrets"


@dataclass(frozen=True)
class Outcome:
    namespace: str
    name: str
    done: str
    ok: bool = True

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}: {self.done}"


def botsecrets(custom: Any, namespaces: Iterable[str] = ()) -> list[dict[str, Any]]:
    scopes = list(namespaces)
    if not scopes:
        return list(custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"])
    return [item for ns in scopes for item in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]]


def plan(body: Mapping[str, Any]) -> str:
    """What uninstalling this BotSecret will do to its Secret."""
    meta = body["metadata"]
    try:
        target = parse_spec(body.get("spec") or {}, name=meta["name"]).target
    except InvalidSpec:
        return "spec invalid: Secret left alone"
    what = {
        ("Owner", "Delete"): "delete Secret", ("Owner", "Retain"): "keep Secret, drop its ownerReference",
        ("Orphan", "Delete"): "delete Secret", ("Orphan", "Retain"): "keep Secret",
        ("Merge", "Delete"): "remove its keys from Secret", ("Merge", "Retain"): "keep its keys in Secret",
    }[(target.creation_policy, target.deletion_policy)]
    return f"{what} {target.name!r} ({target.creation_policy}, deletionPolicy {target.deletion_policy})"


def _delete(custom: Any, meta: Mapping[str, Any]) -> None:
    try:
        custom.delete_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"])
    except ApiException as e:
        if e.status != 404:
            raise


def _remove_finalizer(custom: Any, namespace: str, name: str) -> None:
    """Remove our finalizer and only ours; the ``test`` makes a concurrent change fail, not vanish."""
    for _ in range(5):
        try:
            body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        finalizers = list(body["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            return
        index = finalizers.index(FINALIZER)
        try:
            custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, [
                {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
                {"op": "remove", "path": f"/metadata/finalizers/{index}"},
            ], _content_type="application/json-patch+json")
            return
        except ApiException as e:
            if e.status == 404:
                return
            if e.status not in (409, 422):
                raise
    raise RuntimeError(f"the finalizers of BotSecret {namespace}/{name} keep changing")


def uninstall_one(core: Any, custom: Any, body: Mapping[str, Any]) -> str:
    """Delete one BotSecret the way the operator would: its deletion policy, then its finalizer."""
    meta = body["metadata"]
    if FINALIZER not in (meta.get("finalizers") or []):
        # Gone as soon as it is deleted, and the garbage collector follows: release first.
        done = release_secret(core, body)
        _delete(custom, meta)
        return done
    # Deleted first, so that a running operator stops syncing it (its cycles write nothing for a
    # BotSecret being deleted) instead of undoing what follows.
    _delete(custom, meta)
    done = release_secret(core, body)
    _remove_finalizer(custom, meta["namespace"], meta["name"])
    return done


def uninstall(api: Any, namespaces: Iterable[str] = ()) -> list[Outcome]:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    outcomes = []
    for body in botsecrets(custom, namespaces):
        meta = body["metadata"]
        try:
            outcomes.append(Outcome(meta["namespace"], meta["name"], uninstall_one(core, custom, body)))
        except ApiException as e:
            outcomes.append(Outcome(meta["namespace"], meta["name"], f"failed with HTTP {e.status} {e.reason}",
                                    ok=False))
        except RuntimeError as e:
            outcomes.append(Outcome(meta["namespace"], meta["name"], f"failed: {e}", ok=False))
    return outcomes
