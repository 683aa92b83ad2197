"""Reads and patches the workloads of one namespace, for one cycle.

The apps/v1 kinds go through their typed API; every other kind (Argo Rollouts, any kind with a pod
template at ``spec.template``) is a custom object whose resource name discovery gives. What cannot
be read is an :class:`Unresolved` naming the target and why (not found, kind not served, RBAC),
never an exception: one such target must not stop the restarts of the others.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import metrics, version_store
from .kinds import WorkloadKind
from .optin import OptInListing
from .spec import APPS_V1, RolloutTarget
from .workloads import restart_on

__all__ = ["WORKLOAD_FIELD_MANAGER", "RestartRefused", "Unresolved", "Workload", "Workloads"]

# The field manager of every restart patch, so managedFields tell our writes from other owners'.
WORKLOAD_FIELD_MANAGER = "botsecret-operator"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    body: Mapping[str, Any]
    named: bool  # named explicitly in spec.rollout.targets, not matched by a selector
    api_version: str = APPS_V1

    @property
    def workload_kind(self) -> WorkloadKind:
        return WorkloadKind(self.api_version, self.kind)

    @property
    def template(self) -> Mapping[str, Any]:
        return (self.body.get("spec") or {}).get("template") or {}

    @property
    def paused(self) -> bool:
        return bool((self.body.get("spec") or {}).get("paused"))


@dataclass(frozen=True)
class Unresolved:
    """A rollout target that could not be read: ``reason`` is the condition's reason."""

    reason: Literal["TargetNotFound", "KindNotServed", "Forbidden"]
    target: str  # Kind/name, or Kind with its selector
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.target} ({self.detail})" if self.detail else self.target


def _label(target: RolloutTarget) -> str:
    if target.name is not None:
        return f"{target.kind}/{target.name}"
    return f"{target.kind} {','.join(f'{k}={v}' for k, v in sorted((target.match_labels or {}).items()))}"


def _selector(target: RolloutTarget) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((target.match_labels or {}).items()))


class Workloads:
    """The workloads of one namespace, read and patched for one cycle."""

    def __init__(self, api: Any, namespace: str, listing: OptInListing | None = None, *, fresh: bool = True) -> None:
        self._apps = client.AppsV1Api(api)
        self._custom: Any = client.CustomObjectsApi(api)
        self._api = api
        self._namespace = namespace
        self._listing = listing or OptInListing(api)
        self._fresh = fresh
        self._opted: dict[str, list[Workload]] = {}
        # apiVersion -> {kind: resource name} of its namespaced kinds; None: not served.
        self._served: dict[str, dict[str, str] | None] = {}
        self._pods: list[dict[str, Any]] | None = None

    def opted_in(self, secret_name: str) -> list[Workload]:
        """The apps/v1 workloads of the namespace whose ``botsecret.dev/restart-on`` annotation opts
        in to restarts for ``secret_name``. Listed (the operator's existing ``list`` on the three
        kinds), not watched; the namespace's listing is shared by its BotSecrets (see optin.py)."""
        if secret_name not in self._opted:
            found: list[Workload] = []
            for kind, body in self._listing.get(self._namespace, fresh=self._fresh):
                meta = body.get("metadata") or {}
                how = restart_on(meta.get("annotations"), secret_name)
                if how is not None:
                    found.append(Workload(kind, str(meta.get("name", "")), body, named=how == "named"))
            self._opted[secret_name] = found
        return self._opted[secret_name]

    def _call(self, verb: str, kind: str, *args: Any, **kwargs: Any) -> Any:
        method = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}[kind]
        return getattr(self._apps, f"{verb}_namespaced_{method}")(*args, **kwargs)

    def _resource(self, kind: WorkloadKind) -> str | None:
        """The resource name (plural) of a namespaced kind, from discovery; ``None`` if the API
        does not serve it."""
        if kind.api_version not in self._served:
            try:
                listing = self._custom.get_api_resources(kind.group, kind.version)
            except ApiException as e:
                if e.status != 404:
                    raise
                self._served[kind.api_version] = None
            else:
                self._served[kind.api_version] = {
                    r.kind: r.name for r in listing.resources or [] if "/" not in r.name and r.namespaced}
        return (self._served[kind.api_version] or {}).get(kind.kind)

    def resolve(self, targets: Sequence[RolloutTarget]) -> tuple[list[Workload], list[Unresolved]]:
        found: dict[tuple[str, str], Workload] = {}
        unresolved: list[Unresolved] = []
        for target in targets:
            try:
                for workload in self._read(target):
                    key = (workload.kind, workload.name)
                    if key not in found or workload.named:
                        found[key] = workload
            except _Unreadable as e:
                unresolved.append(e.unresolved)
        return sorted(found.values(), key=lambda w: (w.kind, w.name)), unresolved

    def _read(self, target: RolloutTarget) -> list[Workload]:
        kind = WorkloadKind(target.api_version, target.kind)
        if kind.style == "apps":
            try:
                if target.name is not None:
                    obj = self._call("read", target.kind, target.name, self._namespace)
                    return [Workload(target.kind, target.name, self._api.sanitize_for_serialization(obj), named=True)]
                items = self._call("list", target.kind, self._namespace, label_selector=_selector(target)).items
            except ApiException as e:
                raise _unreadable(e, target, f"{target.kind.lower()}s.apps") or e from None
            return [Workload(target.kind, o.metadata.name, self._api.sanitize_for_serialization(o), named=False)
                    for o in items]
        plural = self._resource(kind)
        if plural is None:
            raise _Unreadable(Unresolved("KindNotServed", _label(target),
                                         f"the API does not serve kind {kind.kind} in {kind.api_version}"))
        try:
            if target.name is not None:
                body: dict[str, Any] = self._custom.get_namespaced_custom_object(
                    kind.group, kind.version, self._namespace, plural, target.name)
                return [Workload(target.kind, target.name, body, named=True, api_version=target.api_version)]
            listing: dict[str, Any] = self._custom.list_namespaced_custom_object(
                kind.group, kind.version, self._namespace, plural, label_selector=_selector(target))
        except ApiException as e:
            raise _unreadable(e, target, f"{plural}.{kind.group}") or e from None
        return [Workload(target.kind, o["metadata"]["name"], o, named=False, api_version=target.api_version)
                for o in listing.get("items") or []]

    def restart(self, workload: Workload, annotation: str, value: str) -> None:
        kind = workload.workload_kind
        patch = kind.restart_patch(annotation, value, datetime.datetime.now(datetime.UTC))
        resource = f"{workload.kind.lower()}s.apps" if kind.style == "apps" else ""
        try:
            if kind.style == "apps":
                self._call("patch", workload.kind, workload.name, self._namespace, patch,
                           field_manager=WORKLOAD_FIELD_MANAGER)
            else:
                plural = self._resource(kind)
                assert plural is not None, "a workload read this cycle has a resource name"
                resource = f"{plural}.{kind.group}"
                self._custom.patch_namespaced_custom_object(
                    kind.group, kind.version, self._namespace, plural, workload.name, patch,
                    field_manager=WORKLOAD_FIELD_MANAGER, _content_type=MERGE_PATCH)
        except ApiException as e:
            raise RestartRefused(e, f"{workload.kind}/{workload.name}", resource) from None
        metrics.RESTARTS.labels(workload.kind).inc()


    def json_patch(self, kind: str, name: str, ops: list[dict[str, Any]]) -> None:
        """A JSON patch (RFC 6902; the client sends a list as one) of an apps/v1 workload, for strategy
        Versioned: its ``test`` operations make an edited template fail it whole."""
        try:
            self._call("patch", kind, name, self._namespace, ops, field_manager=WORKLOAD_FIELD_MANAGER)
        except ApiException as e:
            raise RestartRefused(e, f"{kind}/{name}", f"{kind.lower()}s.apps") from None

    def pods(self) -> list[dict[str, Any]]:
        """The namespace's pods that have not finished, listed once per cycle (for maxRestarts)."""
        if self._pods is None:
            self._pods = version_store.live_pods(self._api, self._namespace)
        return self._pods


class RestartRefused(ApiException):
    """A restart patch the apiserver refused, naming the workload (and for a 403, the right the
    operator lacks). Still an :class:`ApiException`: nothing was recorded, the cycle tries again."""

    def __init__(self, error: ApiException, workload: str, resource: str) -> None:
        super().__init__(status=error.status, reason=error.reason)
        self.workload = workload
        self.resource = resource

    def describe(self) -> str:
        lacking = f" (the operator may not patch {self.resource})" if self.status == 403 else ""
        return f"patching {self.workload} failed with HTTP {self.status}{lacking}"


class _Unreadable(Exception):
    def __init__(self, unresolved: Unresolved) -> None:
        super().__init__(str(unresolved))
        self.unresolved = unresolved


def _unreadable(error: ApiException, target: RolloutTarget, resource: str) -> _Unreadable | None:
    """The apiserver's 404 for a named target and its 403 as :class:`Unresolved`; ``None`` for any
    other answer, raised as it came (the cycle reports it and tries again)."""
    if error.status == 404 and target.name is not None:
        return _Unreadable(Unresolved("TargetNotFound", _label(target)))
    if error.status == 403:
        verb = "get" if target.name is not None else "list"
        return _Unreadable(Unresolved("Forbidden", _label(target), f"the operator may not {verb} {resource}"))
    return None
