"""Read, write and release the target Secret by name. Never a watch on Secrets.

Writes are server-side applies under one field manager per BotSecret, so ``Merge`` adds and later
removes only the keys this operator applied, and a drifted key is taken back on the next apply.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from .spec import FORBIDDEN_TARGET_TYPES, Target
from .values import SecretValue

__all__ = [
    "FIELD_MANAGER_PREFIX",
    "MANAGED_BY_LABEL",
    "OWNER_LABEL",
    "Owner",
    "Refused",
    "TargetConflict",
    "apply",
    "check_ownership",
    "live_data",
    "read",
    "release",
]

FIELD_MANAGER_PREFIX = "botsecret/"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "botsecret-operator"
OWNER_LABEL = "botsecret.dev/botsecret"
APPLY = "application/apply-patch+yaml"


class TargetConflict(Exception):
    """The target Secret belongs to someone else."""


@dataclass(frozen=True)
class Owner:
    """The BotSecret a Secret is written for."""

    name: str
    namespace: str
    uid: str
    api_version: str = "botsecret.dev/v1alpha1"
    kind: str = "BotSecret"

    @property
    def field_manager(self) -> str:
        # One manager per BotSecret, as ESO has one per ExternalSecret: two BotSecrets merging
        # into one Secret then own, and on deletion drop, only their own keys.
        return (FIELD_MANAGER_PREFIX + self.name)[:128]


def read(core: Any, namespace: str, name: str) -> Any | None:
    try:
        return core.read_namespaced_secret(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def live_data(secret: Any) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}


def check_ownership(secret: Any | None, owner: Owner, target: Target) -> None:
    """Refuse a Secret this BotSecret may not write; ``Merge`` may add keys to any plain Secret.

    A Secret labelled as the operator's is this BotSecret's only if its owner label names this
    BotSecret: one without that label (the operator's own HMAC key Secret, a leftover, a lookalike)
    is nobody's to take, whatever the policy.
    """
    if secret is None:
        return
    if secret.type in FORBIDDEN_TARGET_TYPES:
        raise TargetConflict(f"Secret {target.name!r} is of type {secret.type}, which the cluster fills in itself")
    labels = secret.metadata.labels or {}
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY:
        named = labels.get(OWNER_LABEL)
        if named is None:
            raise TargetConflict(
                f"Secret {target.name!r} is labelled {MANAGED_BY_LABEL}={MANAGED_BY} but names no BotSecret "
                f"in {OWNER_LABEL}; it is not this BotSecret's")
        if named != owner.name:
            raise TargetConflict(f"Secret {target.name!r} is already managed by BotSecret {named!r}")
        controller = next((r for r in secret.metadata.owner_references or [] if r.controller), None)
        if controller is not None and (controller.kind, controller.name) != (owner.kind, owner.name):
            raise TargetConflict(f"Secret {target.name!r} is controlled by {controller.kind} {controller.name!r}")
    elif target.creation_policy != "Merge":
        raise TargetConflict(
            f"Secret {target.name!r} exists and is not managed by botsecret-operator; "
            "set spec.target.creationPolicy: Merge to add keys to it")
    if secret.type != target.type and target.creation_policy == "Merge":
        raise TargetConflict(f"Secret {target.name!r} has type {secret.type}, not {target.type}")


def needs_write(secret: Any | None, owner: Owner, target: Target, data: Mapping[str, SecretValue]) -> bool:
    """Whether the live Secret differs from what this BotSecret would apply."""
    if secret is None:
        return True
    live = live_data(secret)
    if any(live.get(k) != v.reveal() for k, v in data.items()):
        return True
    if target.creation_policy == "Merge":
        # A key this BotSecret applied before and gives no more (a find that no longer lists its
        # remote secret) must go; the apply drops the keys its field manager no longer sends.
        return bool(applied_keys(secret, owner) - set(data))
    if secret.type != target.type or set(live) != set(data):
        return True
    labels, annotations = secret.metadata.labels or {}, secret.metadata.annotations or {}
    if any(labels.get(k) != v for k, v in _labels(owner, target).items()):
        return True
    if any(annotations.get(k) != v for k, v in target.annotations.items()):
        return True
    owned = any(ref.uid == owner.uid for ref in (secret.metadata.owner_references or []))
    return owned != (target.creation_policy == "Owner")


def applied_keys(secret: Any, owner: Owner) -> set[str]:
    """The data keys this BotSecret's field manager owns in the live Secret (its managedFields)."""
    keys: set[str] = set()
    for entry in secret.metadata.managed_fields or []:
        if entry.manager != owner.field_manager or entry.operation != "Apply":
            continue
        fields = entry.fields_v1 if isinstance(entry.fields_v1, dict) else {}
        data = fields.get("f:data")
        keys |= {k[2:] for k in (data if isinstance(data, dict) else {}) if k.startswith("f:")}
    return keys


def _labels(owner: Owner, target: Target) -> dict[str, str]:
    return {**target.labels, MANAGED_BY_LABEL: MANAGED_BY, OWNER_LABEL: owner.name}


def _manifest(owner: Owner, target: Target, data: Mapping[str, SecretValue]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": target.name, "namespace": owner.namespace}
    if target.creation_policy != "Merge":
        metadata["labels"] = _labels(owner, target)
        metadata["annotations"] = dict(target.annotations)
    if target.creation_policy == "Owner":
        metadata["ownerReferences"] = [{
            "apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name, "uid": owner.uid,
            "controller": True, "blockOwnerDeletion": True,
        }]
    manifest: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "metadata": metadata,
        "data": {k: base64.b64encode(v.reveal()).decode("ascii") for k, v in data.items()},
    }
    if target.creation_policy != "Merge":
        manifest["type"] = target.type
    return manifest


class Refused(ApiException):
    """The apiserver would not accept the Secret as the spec wants it; the live one was kept."""


def _refused_fields(error: ApiException) -> list[str]:
    # Field paths such as data[tls.crt] name keys, never values; the messages may quote input.
    try:
        causes = json.loads(error.body or "{}").get("details", {}).get("causes") or []
    except (ValueError, AttributeError):
        return []
    return sorted({str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")})


def _replace(core: Any, secret: Any, owner: Owner, target: Target, data: Mapping[str, SecretValue]) -> None:
    """Give the Secret a new type. The type is immutable, so that means delete and create; a dry-run
    create under another name asks the apiserver first, so a Secret it would refuse never costs
    the consumers the one they have."""
    manifest = _manifest(owner, target, data)
    probe = {**manifest, "metadata": {**manifest["metadata"], "generateName": "botsecret-type-check-"}}
    del probe["metadata"]["name"]
    try:
        core.create_namespaced_secret(owner.namespace, probe, dry_run="All")
    except ApiException as e:
        fields = _refused_fields(e)
        raise Refused(status=e.status, reason=(
            f"{e.reason}: refused as type {target.type}" + (f" ({', '.join(fields)})" if fields else "")
            + f"; the Secret of type {secret.type} is kept")) from None
    # Preconditions: never delete a Secret that changed since it was checked.
    core.delete_namespaced_secret(target.name, owner.namespace, body={"preconditions": {
        "uid": secret.metadata.uid, "resourceVersion": secret.metadata.resource_version}})
    core.patch_namespaced_secret(
        target.name, owner.namespace, manifest, field_manager=owner.field_manager, force=True, _content_type=APPLY,
    )


def apply(core: Any, secret: Any | None, owner: Owner, target: Target, data: Mapping[str, SecretValue]) -> None:
    """Create or update the Secret so that it holds ``data``; the caller has checked ownership."""
    if secret is not None and secret.type != target.type and target.creation_policy != "Merge":
        _replace(core, secret, owner, target, data)
        return
    foreign = set(live_data(secret)) - set(data) if secret is not None else set()
    if foreign and target.creation_policy != "Merge":
        # Keys someone else added to a Secret we own; an apply would leave them, as they have
        # another field manager.
        core.patch_namespaced_secret(target.name, owner.namespace, {"data": dict.fromkeys(foreign)})
    core.patch_namespaced_secret(
        target.name, owner.namespace, _manifest(owner, target, data),
        field_manager=owner.field_manager, force=True, _content_type=APPLY,
    )


def release(core: Any, owner: Owner, target: Target) -> str:
    """Carry out the deletion policy when the BotSecret goes away; returns what was done."""
    secret = read(core, owner.namespace, target.name)
    if secret is None:
        return "absent"
    labels = secret.metadata.labels or {}
    ours = labels.get(MANAGED_BY_LABEL) == MANAGED_BY and labels.get(OWNER_LABEL) == owner.name
    if target.creation_policy == "Merge":
        if target.deletion_policy == "Delete":
            # An empty apply drops every field this manager owns: our keys, nothing else.
            core.patch_namespaced_secret(
                target.name, owner.namespace,
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": target.name}},
                field_manager=owner.field_manager, force=True, _content_type=APPLY,
            )
            return "keys removed"
        return "retained"
    if not ours:
        return "not ours"
    if target.deletion_policy == "Delete":
        try:
            core.delete_namespaced_secret(target.name, owner.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
        return "deleted"
    refs = [r for r in (secret.metadata.owner_references or []) if r.uid != owner.uid]
    if len(refs) != len(secret.metadata.owner_references or []):
        core.patch_namespaced_secret(
            target.name, owner.namespace,
            [{"op": "replace", "path": "/metadata/ownerReferences",
              "value": [core.api_client.sanitize_for_serialization(r) for r in refs]}],
        )
    return "retained"
