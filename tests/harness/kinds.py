"""Workloads of other kinds for the rollout tests: an Argo Rollout (on a structural CRD of our own,
tests/data/argo-rollout-crd.yaml; no Argo controller runs, so the tests write its status as that
controller would), a kind of our own with a pod template (BotRunner), a competing field manager
that strips the restart mark, and the operator's workload patches counted in the audit log."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .cluster import OPERATOR_USER, ControlPlane
from .cluster_fixtures import Kube
from .operator_process import install_crd_file
from .workloads import pod_template

DATA = Path(__file__).resolve().parents[1] / "data"
ARGO_CRD = DATA / "argo-rollout-crd.yaml"
RUNNER_CRD = DATA / "botrunner-crd.yaml"
ARGO = ("argoproj.io", "v1alpha1", "rollouts")
RUNNER = ("example.botsecret.dev", "v1", "botrunners")
MERGE = "application/merge-patch+json"


def install_crd(kube: Kube, path: Path) -> None:
    """Create (or replace) a CRD of tests/data and wait until the API serves it."""
    install_crd_file(kube, path)


def create_rollout(kube: Kube, namespace: str, name: str, **template: Any) -> dict[str, Any]:
    """A Rollout as it stands once Argo's controller has rolled out its first ReplicaSet: Healthy,
    current pod hash = stable ReplicaSet."""
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
                     "template": pod_template(name, **template)}}
    made = kube.custom.create_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], body)
    set_rollout_status(kube, namespace, name, phase="Healthy", observedGeneration=str(made["metadata"]["generation"]),
                       currentPodHash="6d4b8c7f9", stableRS="6d4b8c7f9", replicas=1, updatedReplicas=1,
                       readyReplicas=1, availableReplicas=1)
    return get_rollout(kube, namespace, name)


def get_rollout(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.custom.get_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], name))


def set_rollout_status(kube: Kube, namespace: str, name: str, **status: Any) -> None:
    kube.custom.patch_namespaced_custom_object_status(*ARGO[:2], namespace, ARGO[2], name, {"status": status},
                                                      _content_type=MERGE)


def create_runner(kube: Kube, namespace: str, name: str, **template: Any) -> dict[str, Any]:
    body = {"apiVersion": "example.botsecret.dev/v1", "kind": "BotRunner", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 1, "template": pod_template(name, **template)}}
    return dict(kube.custom.create_namespaced_custom_object(*RUNNER[:2], namespace, RUNNER[2], body))


def get_runner(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.custom.get_namespaced_custom_object(*RUNNER[:2], namespace, RUNNER[2], name))


def set_runner_status(kube: Kube, namespace: str, name: str, status: dict[str, Any]) -> None:
    kube.custom.patch_namespaced_custom_object_status(*RUNNER[:2], namespace, RUNNER[2], name, {"status": status},
                                                      _content_type=MERGE)


def grant_runners(kube: Kube, namespace: str) -> None:
    """What rbac.extraRules gives the operator, as a Role of one namespace (RBAC is cluster-wide
    state; a Role keeps it to this test)."""
    rule = {"apiGroups": [RUNNER[0]], "resources": [RUNNER[2]], "verbs": ["get", "list", "patch"]}
    kube.rbac.create_namespaced_role(namespace, {"metadata": {"name": "botrunners"}, "rules": [rule]})
    kube.rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "botrunners"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "botrunners"},
        "subjects": [{"kind": "ServiceAccount", "name": "botsecret-operator", "namespace": "botsecret-system"}]})


def operator_patches(cluster: ControlPlane, resource: str, namespace: str, name: str) -> int:
    """The operator's PATCH requests on one workload, from the apiserver's audit log."""
    return sum(1 for e in cluster.audit_events()
               if e.get("stage") == "ResponseComplete" and e.get("verb") == "patch"
               and (e.get("user") or {}).get("username") == OPERATOR_USER
               and (e.get("objectRef") or {}).get("resource") == resource
               and not (e.get("objectRef") or {}).get("subresource")
               and (e.get("objectRef") or {}).get("namespace") == namespace
               and (e.get("objectRef") or {}).get("name") == name)


class Stripper:
    """Another owner of a Deployment's pod template, under its own field manager, that removes the
    given annotation whenever it appears (as a tool re-applying its own idea of the template does).
    Runs in a thread on its own API client until stopped."""

    MANAGER = "template-owner"
    PERIOD = 0.05  # its own rhythm: the fault being injected, not a wait for evidence

    def __init__(self, api: Any, namespace: str, name: str, annotation: str) -> None:
        self._apps = client.AppsV1Api(api)
        self._namespace, self._name, self._annotation = namespace, name, annotation
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stripper", daemon=True)
        self.removed = 0

    def __enter__(self) -> Stripper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        path = "/spec/template/metadata/annotations/" + self._annotation.replace("~", "~0").replace("/", "~1")
        while not self._stop.is_set():
            try:
                live = self._apps.read_namespaced_deployment(self._name, self._namespace)
                if self._annotation in (live.spec.template.metadata.annotations or {}):
                    self._apps.patch_namespaced_deployment(
                        self._name, self._namespace,
                        [{"op": "remove", "path": path}],
                        field_manager=self.MANAGER, _content_type="application/json-patch+json")
                    self.removed += 1
            except ApiException as e:
                if e.status not in (409, 422):  # gone meanwhile, or raced with another write: look again
                    raise
            time.sleep(self.PERIOD)
