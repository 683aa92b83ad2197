"""After the suite: no test value appears anywhere but in the data of Secrets.

Every value the tests put into a provider is unique and recorded (tests/harness/leaks.py). This
scans what the cluster and the operator produced: every BotSecret (annotations, labels, status),
every event, the metadata of every Secret, every workload, pod and ConfigMap (of namespaces still
there, and of those captured before a test deleted them), the operator's whole log output and
metrics, and the control plane's logs with the apiserver's audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness import leaks
from tests.harness.cluster_fixtures import Kube
from tests.harness.leak_scan import SNAPSHOTS, namespace_texts

pytestmark = pytest.mark.leaks


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
    texts = {**SNAPSHOTS, **namespace_texts(kube), **operator_texts(artifacts), "operator metrics": operator.metrics()}
    assert any(k.startswith("log operator") for k in texts), "the operator's output was not found"
    assert any(k.startswith("log cluster/audit") for k in texts), "the apiserver's audit log was not found"
    assert any(k.startswith("botsecret ") for k in texts), "no BotSecret was scanned"
    assert any(k.startswith("event ") for k in texts), "no event was scanned"
    print(f"leak scan: {len(values)} values against {len(texts)} objects and logs")
    assert find_leaks(texts, values) == []
