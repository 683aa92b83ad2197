"""What the cluster holds, as text, for the leak scan; namespaces are captured before tests
delete them, so the scan also sees the events and statuses of every test that has finished."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from .cluster_fixtures import Kube

# Texts of namespaces already deleted, captured just before.
SNAPSHOTS: dict[str, str] = {}


def _dump(kube: Kube, obj: Any) -> str:
    return json.dumps(kube.api.sanitize_for_serialization(obj), sort_keys=True)


def namespace_texts(kube: Kube, namespace: str | None = None) -> dict[str, str]:
    """Every object of one namespace (or of all) as text; of Secrets only the metadata, since
    their data is where values belong."""
    def listing(namespaced: Any, everywhere: Any) -> list[Any]:
        return list((namespaced(namespace) if namespace else everywhere()).items)

    core, apps = kube.core, kube.apps
    texts: dict[str, str] = {}
    for kind, items in {
        "event": listing(core.list_namespaced_event, core.list_event_for_all_namespaces),
        "configmap": listing(core.list_namespaced_config_map, core.list_config_map_for_all_namespaces),
        "serviceaccount": listing(core.list_namespaced_service_account, core.list_service_account_for_all_namespaces),
        "deployment": listing(apps.list_namespaced_deployment, apps.list_deployment_for_all_namespaces),
        "replicaset": listing(apps.list_namespaced_replica_set, apps.list_replica_set_for_all_namespaces),
        "statefulset": listing(apps.list_namespaced_stateful_set, apps.list_stateful_set_for_all_namespaces),
        "daemonset": listing(apps.list_namespaced_daemon_set, apps.list_daemon_set_for_all_namespaces),
        "pod": listing(core.list_namespaced_pod, core.list_pod_for_all_namespaces),
    }.items():
        for item in items:
            texts[f"{kind} {item.metadata.namespace}/{item.metadata.name}"] = _dump(kube, item)
    for secret in listing(core.list_namespaced_secret, core.list_secret_for_all_namespaces):
        texts[f"secret metadata {secret.metadata.namespace}/{secret.metadata.name}"] = _dump(kube, secret.metadata)
    try:
        if namespace:
            botsecrets = kube.custom.list_namespaced_custom_object("botsecret.dev", "v1alpha1", namespace, "botsecrets")
        else:
            botsecrets = kube.custom.list_cluster_custom_object("botsecret.dev", "v1alpha1", "botsecrets")
    except ApiException as e:
        if e.status != 404:  # 404: the CRD is not installed (tests that need no operator)
            raise
        botsecrets = {"items": []}
    for item in botsecrets["items"]:
        texts[f"botsecret {item['metadata']['namespace']}/{item['metadata']['name']}"] = json.dumps(item)
    return texts


def capture(kube: Kube, namespace: str) -> None:
    """Keep a namespace's texts for the leak scan, before the namespace is deleted."""
    SNAPSHOTS.update({f"{k} (captured)": v for k, v in namespace_texts(kube, namespace).items()})
