"""The operator under test, run as its own process under its own ServiceAccount.

It runs with exactly the RBAC of ``manifests/rbac.yaml`` (what the chart ships), not as admin,
and its whole output goes to a log file that the leak test scans.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import yaml
from kubernetes import utils
from kubernetes.client.exceptions import ApiException

from . import processes
from .cluster import REPO, ControlPlane, write_kubeconfig
from .cluster_fixtures import Kube

OPERATOR_NAMESPACE = "botsecret-system"
CRD_FILE = REPO / "crds" / "botsecret.dev_botsecrets.yaml"
CRD_FILES = sorted((REPO / "crds").glob("*.yaml"))


def apply_file(kube: Kube, path: Path) -> None:
    """Create each object of a YAML file, replacing (or leaving) what already exists."""
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        try:
            utils.create_from_dict(kube.api, doc)
        except utils.FailToCreateError as e:
            if not all(isinstance(x, ApiException) and x.status == 409 for x in e.api_exceptions):
                raise


def install_crd(kube: Kube) -> None:
    """Install (or update) every CRD of crds/ and wait until each is served."""
    for path in CRD_FILES:
        install_crd_file(kube, path)


def install_crd_file(kube: Kube, path: Path) -> None:
    """Create (or replace) one CRD and wait until it is Established."""
    crd = yaml.safe_load(path.read_text())
    name = crd["metadata"]["name"]
    try:
        live = kube.crds.read_custom_resource_definition(name)
        crd["metadata"]["resourceVersion"] = live.metadata.resource_version
        kube.crds.replace_custom_resource_definition(name, crd)
    except ApiException as e:
        if e.status != 404:
            raise
        kube.crds.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conditions = kube.crds.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        time.sleep(0.2)
    # Established can precede serving by a moment.
    group, version, plural = crd["spec"]["group"], crd["spec"]["versions"][0]["name"], crd["spec"]["names"]["plural"]
    while time.monotonic() < deadline:
        try:
            kube.custom.list_cluster_custom_object(group, version, plural)
            return
        except ApiException as e:
            if e.status != 404:
                raise
            time.sleep(0.2)
    raise TimeoutError(f"CRD {name} not served")


def operator_kubeconfig(kube: Kube, cluster: ControlPlane, path: Path) -> Path:
    """A kubeconfig with a token of the operator's ServiceAccount."""
    request = {"spec": {"expirationSeconds": 86400}}
    token = kube.core.create_namespaced_service_account_token("botsecret-operator", OPERATOR_NAMESPACE, request)
    return write_kubeconfig(path, server=cluster.server, ca=cluster.ca_path, user="botsecret-operator",
                            token=token.status.token)


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: Popen[bytes] | None = field(default=None, repr=False)
    health_port: int = 0
    metrics_port: int = 0
    # A started operator leads (holds the Lease) before start() returns, unless a test runs a standby.
    await_leadership: bool = True

    def start(self) -> None:
        self.health_port, self.metrics_port = processes.free_port(), processes.free_port()
        self.proc = processes.start(
            [sys.executable, "-m", "botsecret.cli", "run", "--liveness",
             f"http://127.0.0.1:{self.health_port}/healthz",
             "--metrics-address", "127.0.0.1", "--metrics-port", str(self.metrics_port)],
            log=self.log,
            env={"KUBECONFIG": str(self.kubeconfig), "BOTSECRET_NAMESPACE": OPERATOR_NAMESPACE,
                 "PYTHONUNBUFFERED": "1", **self.env},
        )
        processes.wait_until(self._healthy, timeout=60, what="operator", proc=self.proc, log=self.log)
        if self.await_leadership:
            # A Lease left by a killed operator expires after its duration (15 s).
            processes.wait_until(lambda: self.metric("botsecret_leader") == 1, timeout=60,
                                 what="operator leading", proc=self.proc, log=self.log)

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc, timeout=20)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a node loss ends it: no cleanup handler, no last write."""
        if self.proc is not None:
            processes.kill(self.proc)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets and state and reads nothing, as a frozen node's does."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str, /, **labels: str) -> float:
        """The value of one sample of the operator's Prometheus metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# The operator's own (ambient) cloud identity in the tests, and the one namespace allowed to use it.
AMBIENT_NAMESPACE = "botsecret-ambient-ok"
AMBIENT_ENV = {
    "BOTSECRET_AMBIENT_NAMESPACES": AMBIENT_NAMESPACE,
    "AWS_ACCESS_KEY_ID": "ambient-testing", "AWS_SECRET_ACCESS_KEY": "ambient-testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# The session's operator is one process, as `--no-leader-election` runs it in development: the
# chaos suite stops the apiserver and etcd for longer than a leader may go without renewing its
# Lease, and a leader that cannot renew exits at once (as client-go's do; in a cluster its Pod
# restarts), which would leave the rest of the session without an operator. Leader election is
# tested by tests/e2e/test_replicas.py, whose processes turn it on.
SINGLE_PROCESS_ENV = {"BOTSECRET_LEADER_ELECTION": "false"}


def deploy(kube: Kube, cluster: ControlPlane, artifacts: Path, **env: Any) -> OperatorProcess:
    install_crd(kube)
    try:
        kube.core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    except ApiException as e:
        if e.status != 409:
            raise
    apply_file(kube, REPO / "manifests" / "rbac.yaml")
    apply_file(kube, REPO / "manifests" / "user-roles.yaml")
    kubeconfig = operator_kubeconfig(kube, cluster, artifacts / "operator.kubeconfig")
    operator = OperatorProcess(kubeconfig=kubeconfig, log=artifacts / "operator.log",
                               env={**AMBIENT_ENV, **SINGLE_PROCESS_ENV, **{k: str(v) for k, v in env.items()}})
    operator.start()
    return operator
