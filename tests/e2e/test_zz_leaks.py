"""After the suite: no test value appears anywhere but in the data of Secrets.

Every value the tests put into a provider is unique and recorded (tests/harness/leaks.py). This
scans what the cluster and the operator produced: every BotSecret (annotations, labels, status),
every event, the metadata of every Secret, every workload, pod and ConfigMap (of namespaces still
there, and of those captured before a test deleted them), the operator's whole log output and
metrics, the output of every `botsecret` command the tests ran (but render's values), the node's
logs and every pod's log (tests/harness/node.py keeps them after their pods are gone), `make demo`'s
output and its world's logs, its node's and pods' included (tests/e2e/test_demo.py), and the
control plane's logs with the apiserver's audit log, which holds the body of
every write the operator made to anything but a Secret. Each value is searched as itself,
JSON-escaped and base64-encoded (tests/harness/leaks.py).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import leaks
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.leak_scan import SNAPSHOTS, namespace_texts
from tests.harness.node import node_log_files
from tests.harness.operator_process import OPERATOR_NAMESPACE

pytestmark = pytest.mark.leaks

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:botsecret-operator"


def operator_texts(artifacts: Path) -> dict[str, str]:
    """The operator's output, the control plane's logs (apiserver audit log included), and the
    node's: its daemons' logs and every pod's log, kept after the pod is gone."""
    logs = [*artifacts.glob("operator*.log"), *(artifacts / "cluster").glob("*.log"),
            *(artifacts / "cli").glob("*.log"), *node_log_files(artifacts / "node"),
            *(artifacts / "demo").rglob("*.log")]  # the demo's node and pod logs are among them
    return {f"log {p.relative_to(artifacts)}": p.read_text(errors="replace") for p in logs}


def find_leaks(texts: dict[str, str], values: list[str]) -> list[str]:
    forms = {value: leaks.searchable_forms(value) for value in values}
    return [f"{where}: contains test value {value[:24]}..." for where, text in texts.items()
            for value in values if any(form in text for form in forms[value])]


def test_the_scanner_finds_a_planted_value() -> None:
    planted = leaks.secret_value("planted")
    assert find_leaks({"somewhere": f"prefix {planted} suffix"}, [planted]) == [f"somewhere: contains test value {planted[:24]}..."]
    leaks.ISSUED.remove(planted)


@pytest.mark.parametrize("prefix", [b"", b"k", b"ke"])
def test_the_scanner_finds_a_value_inside_a_base64_blob(prefix: bytes) -> None:
    planted = leaks.secret_value("planted64")
    blob = prefix + planted.encode() + b"\n"
    texts = {"std": f'"data": "{base64.b64encode(blob).decode()}"',
             "urlsafe": base64.urlsafe_b64encode(b"\xfb\xff" + blob).decode()}
    assert sorted(find_leaks(texts, [planted])) == [f"{where}: contains test value {planted[:24]}..." for where in sorted(texts)]
    assert find_leaks({"other": base64.b64encode(leaks.secret_value("unrelated").encode()).decode()}, [planted]) == []
    leaks.ISSUED.remove(planted)


def test_the_scanner_finds_a_json_escaped_value() -> None:
    # Test values are plain ASCII; a value with quotes, newlines or non-ASCII text changes when
    # it is written into JSON, and again when that JSON is itself a string in a log record.
    issued = leaks.secret_value("plantedjson")
    planted = issued + '"\n\u00e9\\'
    once = json.dumps({"v": planted})
    texts = {"once": once, "twice": json.dumps({"log": once}), "unicode": json.dumps({"v": planted}, ensure_ascii=False)}
    assert planted not in texts["once"]
    assert sorted(find_leaks(texts, [planted])) == [f"{where}: contains test value {planted[:24]}..." for where in sorted(texts)]
    leaks.ISSUED.remove(issued)


def test_the_audit_log_holds_the_operators_writes_but_no_secret_body(
    cluster: ControlPlane, operator: Any, kube: Kube, namespace: str,
) -> None:
    from tests.harness import botsecrets as bs
    from tests.harness.waiting import wait_for

    # A BotSecret whose source does not exist still gets a status write and an event.
    bs.create(kube, namespace, "audited", {"sources": [bs.gcp_source("http://127.0.0.1:9")],
                                           "data": [{"key": "K", "remoteRef": {"name": "absent"}}]})
    bs.wait_ready(kube, namespace, "audited", status="False", timeout=60)

    def operator_writes() -> list[dict[str, Any]]:
        return [e for e in cluster.audit_events() if e.get("user", {}).get("username") == OPERATOR_USER
                and (e.get("objectRef") or {}).get("namespace") == namespace and "requestObject" in e]

    written = wait_for(lambda: {(e["objectRef"].get("resource"), e["objectRef"].get("subresource")) for e in operator_writes()}
                       >= {("botsecrets", "status"), ("events", None)} and operator_writes(),
                       timeout=60, what="the operator's status and event writes, with bodies, in the audit log")
    status_write = next(e for e in written if e["objectRef"].get("subresource") == "status")
    assert "conditions" in json.dumps(status_write["requestObject"])
    secret_bodies = [e for e in cluster.audit_events() if (e.get("objectRef") or {}).get("resource") == "secrets"
                     and ("requestObject" in e or "responseObject" in e)]
    assert secret_bodies == []


def test_no_test_value_leaks_into_the_cluster_or_the_operator_output(
    kube: Kube, artifacts: Path, operator: Any,
) -> None:
    values = list(leaks.ISSUED)
    if not values:
        pytest.skip("no test values were issued in this run")
    texts = {**SNAPSHOTS, **namespace_texts(kube), **operator_texts(artifacts), "operator metrics": operator.metrics()}
    assert any(k.startswith("log operator") for k in texts), "the operator's output was not found"
    assert any(k.startswith("log cluster/audit") for k in texts), "the apiserver's audit log was not found"
    assert any(k.startswith("botsecret ") for k in texts), "no BotSecret was scanned"
    assert any(k.startswith("event ") for k in texts), "no event was scanned"
    if (artifacts / "cli").is_dir():
        assert any(k.startswith("log cli/") for k in texts), "the botsecret commands' output was not scanned"
    if (artifacts / "node" / "kubelet.log").exists():
        assert any(k.startswith("log node/pod-logs-kept/") for k in texts), "the pods' logs were not scanned"
    print(f"leak scan: {len(values)} values against {len(texts)} objects and logs")
    assert find_leaks(texts, values) == []


def test_the_scan_reads_the_logs_of_pods_the_node_kept(tmp_path: Path) -> None:
    kept = tmp_path / "node" / "pod-logs-kept"
    kept.mkdir(parents=True)
    planted = leaks.secret_value("plantedpod")
    (kept / "ns_pod_uid__bot__0.log").write_text(f"2026-12-07T00:00:00Z stdout F {planted}\n")
    assert find_leaks(operator_texts(tmp_path), [planted]) == [
        f"log node/pod-logs-kept/ns_pod_uid__bot__0.log: contains test value {planted[:24]}..."]
    leaks.ISSUED.remove(planted)
