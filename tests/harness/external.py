"""Switches to run the end-to-end suite against a cluster and an operator it did not start.

A user's CI (``.github/workflows/ci.yml``: a kind cluster, the chart installed) sets:

- ``BOTSECRET_KUBECONFIG``: use that cluster (as admin) instead of starting a control plane.
- ``BOTSECRET_OPERATOR=external``: the operator already runs (the chart's Pod); start none.
- ``BOTSECRET_PROVIDER_HOST``: the address the test servers (moto, OpenBao) listen on and stores
  name, one the cluster's Pods can reach (default 127.0.0.1).
- ``BOTSECRET_OPERATOR_METRICS_URL``: where the external operator serves its metrics
  (e.g. a ``kubectl port-forward``); without it, tests that read metrics are skipped.
- ``BOTSECRET_OPERATOR_NAMESPACE``: the external operator's namespace (default botsecret-system),
  whose Pods' logs the leak scan reads.

Tests that need what only the harness has carry a marker and are skipped, saying why, when it
is missing (``tests/unit/test_external_markers.py`` finds unmarked ones).
"""

from __future__ import annotations

import base64
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# Marker -> why a test carrying it cannot run against an external cluster or operator.
NEEDS = {
    "operator_process": "needs the harness's own operator process (restart, kill, environment, log), "
                        "and the operator runs elsewhere (BOTSECRET_OPERATOR=external)",
    "operator_metrics": "needs the operator's metrics, and BOTSECRET_OPERATOR_METRICS_URL is not set",
    "control_plane": "needs the harness's control-plane processes (audit log, apiserver/etcd stops, "
                     "binaries), and the suite runs against BOTSECRET_KUBECONFIG",
}


def existing_kubeconfig() -> Path | None:
    value = os.environ.get("BOTSECRET_KUBECONFIG")
    return Path(value) if value else None


def operator_is_external() -> bool:
    return os.environ.get("BOTSECRET_OPERATOR", "") == "external"


def provider_host() -> str:
    return os.environ.get("BOTSECRET_PROVIDER_HOST") or "127.0.0.1"


def metrics_url() -> str | None:
    return os.environ.get("BOTSECRET_OPERATOR_METRICS_URL") or None


def operator_namespace() -> str:
    return os.environ.get("BOTSECRET_OPERATOR_NAMESPACE") or "botsecret-system"


def missing(marker: str) -> bool:
    """Whether what ``marker`` needs is missing in this run."""
    if marker == "control_plane":
        return existing_kubeconfig() is not None
    if marker == "operator_process":
        return operator_is_external()
    if marker == "operator_metrics":
        return operator_is_external() and metrics_url() is None
    raise KeyError(marker)


# Markers of others that need one of ours: the node joins the harness's own control plane.
IMPLIES = {"node": "control_plane"}


def skip_what_is_missing(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in (*NEEDS, *IMPLIES):
            if item.get_closest_marker(marker) is not None and missing(IMPLIES.get(marker, marker)):
                item.add_marker(pytest.mark.skip(reason=NEEDS[IMPLIES.get(marker, marker)]))
                break


@dataclass
class ExistingCluster:
    """The parts of ``ControlPlane`` that a cluster the suite did not start also has."""

    admin_kubeconfig: Path
    server: str
    ca_path: Path

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, workdir: Path) -> ExistingCluster:
        config = yaml.safe_load(kubeconfig.read_text())
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        workdir.mkdir(parents=True, exist_ok=True)
        ca_path = workdir / "ca.crt"
        if "certificate-authority-data" in cluster:
            ca_path.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        else:
            ca_path.write_bytes((kubeconfig.parent / cluster["certificate-authority"]).read_bytes())
        return cls(admin_kubeconfig=kubeconfig, server=cluster["server"], ca_path=ca_path)


@dataclass
class ExternalOperator:
    """The operator as its Pods run it: metrics from a URL, output from the Pods' logs."""

    kube: Any
    namespace: str
    log: Path

    def metrics(self) -> str:
        url = metrics_url()
        if url is None:
            pytest.skip(NEEDS["operator_metrics"])
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str, /, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def write_pod_logs(self) -> str:
        """Every operator Pod's log, also written to ``log`` where the leak scan reads the
        process's own."""
        pods = self.kube.core.list_namespaced_pod(
            self.namespace, label_selector="app.kubernetes.io/name=botsecret-operator").items
        text = "".join(self.kube.core.read_namespaced_pod_log(p.metadata.name, self.namespace) for p in pods)
        self.log.write_text(text)
        return text

    def output(self) -> str:
        return self.write_pod_logs()
