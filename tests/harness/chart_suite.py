"""Run end-to-end tests against the operator as the chart's Pods: ``python -m tests.harness.chart_suite``.

It starts a control plane and the node, installs the chart from the image the test world builds
(in ``botsecret-system``, which enforces Pod Security Admission ``restricted``), then runs pytest
(default: ``-m "rollout or leaks"``; other arguments replace that) with the switches of
tests/harness/external.py: the cluster is this one, the operator is external, the test servers
listen on the node's bridge, metrics come from the leading Pod. Everything is stopped afterwards.
``.ci/run`` calls it after ``make test``. Exit status: pytest's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import node_images
from .cluster import REPO, ControlPlane, binaries
from .cluster_fixtures import kube_for
from .incluster import leader_value, operator_image, operator_pods, relay, values_file
from .node import Node, missing_requirements
from .node_config import NODE_IP
from .operator_process import OPERATOR_NAMESPACE, install_crd
from .waiting import wait_for

RELEASE = "botsecret-operator"  # the Pods' names, the Lease's and the ClusterRole's


def _helm(plane: ControlPlane, *args: str) -> None:
    subprocess.run([str(plane.bin_dir / "helm"), *args, "--kubeconfig", str(plane.admin_kubeconfig)],
                   check=True, stdout=subprocess.DEVNULL, timeout=600)


def main(pytest_args: list[str]) -> int:
    reason = missing_requirements()
    if reason:
        print(f"chart-suite: skipped, no node on this host: {reason}")
        return 0
    artifacts = Path(os.environ.get("BOTSECRET_ARTIFACTS", REPO / "test-artifacts")) / "chart-suite"
    shutil.rmtree(artifacts, ignore_errors=True)  # an earlier run's etcd data and logs would mislead
    artifacts.mkdir(parents=True)
    began = time.monotonic()
    plane = ControlPlane(workdir=artifacts / "cluster", bin_dir=binaries())
    plane.start()
    try:
        kube = kube_for(plane.admin_kubeconfig)
        install_crd(kube)
        node = Node(cluster=plane, kube=kube, scratch=artifacts / "node")
        node.start()
        try:
            image = operator_image()
            node_images.import_into(node.socket, image.archive)
            with relay(NODE_IP, plane.api_port) as api:
                kube.core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE, "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted"}}})
                _helm(plane, "install", RELEASE, str(REPO / "charts" / "botsecret-operator"), "--namespace",
                      OPERATOR_NAMESPACE, "--skip-crds", "--wait", "--timeout", "5m",
                      "--values", str(values_file(artifacts / "values.yaml", image.reference, api.port)))
                pods = operator_pods(kube, OPERATOR_NAMESPACE, RELEASE)
                leader = wait_for(lambda: next((p for p in operator_pods(kube, OPERATOR_NAMESPACE, RELEASE)
                                                if leader_value(p) == 1.0), None), timeout=120,
                                  what="the leading operator Pod")
                print(f"chart-suite: {len(pods)} operator Pods Ready from {image.reference} "
                      f"{time.monotonic() - began:.0f} s after start; running pytest against them", flush=True)
                env = {**os.environ, "BOTSECRET_KUBECONFIG": str(plane.admin_kubeconfig),
                       "BOTSECRET_OPERATOR": "external", "BOTSECRET_PROVIDER_HOST": NODE_IP,
                       "BOTSECRET_OPERATOR_METRICS_URL": f"http://{leader.status.pod_ip}:9102/metrics",
                       "BOTSECRET_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
                       "BOTSECRET_ARTIFACTS": str(artifacts / "suite")}
                args = pytest_args or ["tests/e2e", "-m", "rollout or leaks"]
                status = subprocess.call([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                                         cwd=REPO, env=env)
                _helm(plane, "uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")
        finally:
            node.stop()
    finally:
        plane.stop()
    print(f"chart-suite: pytest exited {status}; {time.monotonic() - began:.0f} s in all")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
