"""Bot workloads for rollout tests. There is no kubelet: pods never run, so a rollout with
replicas completes only at zero replicas."""

from __future__ import annotations

import hashlib
from typing import Any

from .cluster_fixtures import Kube

LEGACY_RESTART_ANNOTATION = "botsecret.dev/restarted-for"  # one key for every BotSecret, as older versions wrote


def restart_annotation(botsecret: str) -> str:
    """The documented mark of one BotSecret on a pod template, derived here independently of the
    operator: its name, or a cut name and a short hash when the name is longer than an annotation
    name may be."""
    name = botsecret if len(botsecret) <= 63 else f"{botsecret[:52]}-{hashlib.sha256(botsecret.encode()).hexdigest()[:10]}"
    return f"restarted-for.botsecret.dev/{name}"


def pod_template(app: str, env: list[dict[str, Any]] | None = None, env_from: list[dict[str, Any]] | None = None,
                 volumes: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "bot", "image": "example.invalid/bot:1"}
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    spec: dict[str, Any] = {"containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    metadata: dict[str, Any] = {"labels": {"app": app}}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": spec}


def uses_key(secret: str, *keys: str) -> dict[str, Any]:
    return {"env": [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": k}}} for k in keys]}


def uses_all(secret: str) -> dict[str, Any]:
    return {"env_from": [{"secretRef": {"name": secret}}]}


def deployment(kube: Kube, namespace: str, name: str, *, replicas: int = 0, labels: dict[str, str] | None = None,
               progress_deadline: int | None = None, paused: bool = False,
               workload_annotations: dict[str, str] | None = None, **template: Any) -> None:
    spec: dict[str, Any] = {
        "replicas": replicas, "paused": paused,
        "selector": {"matchLabels": {"app": name}},
        "template": pod_template(name, **template),
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    metadata = {"name": name, "labels": labels or {}, "annotations": workload_annotations or {}}
    kube.apps.create_namespaced_deployment(namespace, {"metadata": metadata, "spec": spec})


def statefulset(kube: Kube, namespace: str, name: str, labels: dict[str, str] | None = None, replicas: int = 0,
                workload_annotations: dict[str, str] | None = None, **template: Any) -> None:
    kube.apps.create_namespaced_stateful_set(namespace, {
        "metadata": {"name": name, "labels": labels or {}, "annotations": workload_annotations or {}},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": pod_template(name, **template)},
    })


def daemonset(kube: Kube, namespace: str, name: str, labels: dict[str, str] | None = None, **template: Any) -> None:
    pod = pod_template(name, **template)
    # On no node, whether the cluster has none (the test world without its node) or some (the
    # node, a user's kind cluster): its rollouts complete at zero pods everywhere.
    pod["spec"]["nodeSelector"] = {"botsecret.dev/test-no-node": "true"}
    kube.apps.create_namespaced_daemon_set(namespace, {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": pod},
    })


def replicasets(kube: Kube, namespace: str, app: str) -> int:
    return len(kube.apps.list_namespaced_replica_set(namespace, label_selector=f"app={app}").items)


def template_annotations(kube: Kube, namespace: str, kind: str, name: str) -> dict[str, str]:
    read = {"Deployment": kube.apps.read_namespaced_deployment, "StatefulSet": kube.apps.read_namespaced_stateful_set,
            "DaemonSet": kube.apps.read_namespaced_daemon_set}[kind]
    return dict(read(name, namespace).spec.template.metadata.annotations or {})


def template_annotation(kube: Kube, namespace: str, kind: str, name: str, botsecret: str = "bot") -> str | None:
    """The mark BotSecret ``botsecret`` left on the workload's pod template."""
    return template_annotations(kube, namespace, kind, name).get(restart_annotation(botsecret))


def scale(kube: Kube, namespace: str, kind: str, name: str, replicas: int) -> None:
    patch = {"Deployment": kube.apps.patch_namespaced_deployment,
             "StatefulSet": kube.apps.patch_namespaced_stateful_set}[kind]
    patch(name, namespace, {"spec": {"replicas": replicas}})
