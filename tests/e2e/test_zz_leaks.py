"""After the suite: no test value appears anywhere but in the data of Secrets.

Every value the tests put into a provider is unique and recorded (tests/harness/leaks.py). This
scans what the cluster and the operator produced: every BotSecret (annotations, including kopf's
last-handled-configuration, labels, status), every event, the metadata of every Secret, every
workload and ConfigMap, and the operator's whole log output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import leaks
from tests.harness.cluster_fixtures import Kube

pytestmark = pytest.mark.leaks


def _dump(kube: Kube, obj: Any) -> str:
    return json.dumps(kube.api.sanitize_for_serialization(obj), sort_keys=True)


def cluster_texts(kube: Kube) -> dict[str, str]:
    texts: dict[str, str] = {}
    for kind, items in {
        "event": kube.core.list_event_for_all_namespaces().items,
        "configmap": kube.core.list_config_map_for_all_namespaces().items,
        "serviceaccount": kube.core.list_service_account_for_all_namespaces().items,
        "namespace": kube.core.list_namespace().items,
        "deployment": kube.apps.list_deployment_for_all_namespaces().items,
        "replicaset": kube.apps.list_replica_set_for_all_namespaces().items,
        "statefulset": kube.apps.list_stateful_set_for_all_namespaces().items,
        "daemonset": kube.apps.list_daemon_set_for_all_namespaces().items,
        "pod": kube.core.list_pod_for_all_namespaces().items,
    }.items():
        for item in items:
            texts[f"{kind} {item.metadata.namespace}/{item.metadata.name}"] = _dump(kube, item)
    for secret in kube.core.list_secret_for_all_namespaces().items:
        # The data of a Secret is where values belong; its metadata is not.
        texts[f"secret metadata {secret.metadata.namespace}/{secret.metadata.name}"] = _dump(kube, secret.metadata)
    botsecrets = kube.custom.list_cluster_custom_object("botsecret.dev", "v1alpha1", "botsecrets")
    for item in botsecrets["items"]:
        texts[f"botsecret {item['metadata']['namespace']}/{item['metadata']['name']}"] = json.dumps(item)
    return texts


def operator_texts(artifacts: Path) -> dict[str, str]:
    """The operator's output, and the control plane's logs (apiserver audit log included)."""
    logs = [*artifacts.glob("operator*.log"), *(artifacts / "cluster").glob("*.log")]
    return {f"log {p.relative_to(artifacts)}": p.read_text(errors="replace") for p in logs}


def find_leaks(texts: dict[str, str], values: list[str]) -> list[str]:
    return [f"{where}: contains test value {value[:24]}..." for where, text in texts.items()
            for value in values if value in text]


def test_the_scanner_finds_a_planted_value() -> None:
    planted = leaks.secret_value("planted")
    assert find_leaks({"somewhere": f"prefix {planted} suffix"}, [planted]) == [f"somewhere: contains test value {planted[:24]}..."]
    leaks.ISSUED.remove(planted)


def test_no_test_value_leaks_into_the_cluster_or_the_operator_output(
    kube: Kube, artifacts: Path, operator: Any,
) -> None:
    values = list(leaks.ISSUED)
    if not values:
        pytest.skip("no test values were issued in this run")
    texts = {**cluster_texts(kube), **operator_texts(artifacts), "operator metrics": operator.metrics()}
    assert any(k.startswith("log operator") for k in texts), "the operator's output was not found"
    assert any(k.startswith("log cluster/audit") for k in texts), "the apiserver's audit log was not found"
    assert any(k.startswith("botsecret ") for k in texts), "no BotSecret was scanned"
    print(f"leak scan: {len(values)} values against {len(texts)} objects and logs")
    assert find_leaks(texts, values) == []
