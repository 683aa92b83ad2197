"""The operator as users run it: ``helm install`` of the chart runs it as Pods from the image the
test world builds, on the test world's node, in a namespace that enforces Pod Security Admission
``restricted``; the Pods become Ready through their probes, serve metrics, sync from AWS and from
OpenBao over TLS with a ``caBundle`` under the chart's ``readOnlyRootFilesystem``; ``helm upgrade``
with changed values rolls them; ``helm uninstall`` keeps the synced Secrets and the BotSecrets.

The Pods sit on the node's bridge, so what they talk to listens there (tests/harness/incluster.py).
The session's own operator process is stopped meanwhile, so that one operator reconciles.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import botsecrets as bs
from tests.harness import node_images, processes
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.incluster import (
    BridgedOpenBao,
    leader_value,
    metrics_of,
    operator_image,
    operator_pods,
    relay,
    values_file,
)
from tests.harness.leaks import secret_value
from tests.harness.node import Node
from tests.harness.node_config import NODE_IP
from tests.harness.operator_process import OperatorProcess
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.packaging, pytest.mark.node, pytest.mark.operator_process, pytest.mark.control_plane]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "botsecret-operator"
RELEASE = "bsop"
FULLNAME = f"{RELEASE}-botsecret-operator"


def helm(cluster: ControlPlane, *args: str) -> str:
    done = subprocess.run([str(cluster.bin_dir / "helm"), *args, "--kubeconfig", str(cluster.admin_kubeconfig)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def restricted_namespace(kube: Kube) -> Iterator[str]:
    name = f"bsop-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}})
    yield name
    kube.core.delete_namespace(name)


@pytest.fixture
def no_session_operator(operator: OperatorProcess) -> Iterator[None]:
    """One operator at a time: the chart's Pods reconcile while the session's process is stopped."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


def ready_pods(kube: Kube, namespace: str, replicas: int, generation_hash: str | None = None) -> list[Any]:
    """The operator's Pods once ``replicas`` of them (of the current ReplicaSet) are Ready."""
    def ready() -> list[Any] | None:
        deployment = kube.apps.read_namespaced_deployment(FULLNAME, namespace)
        status = deployment.status
        if (status.observed_generation or 0) < deployment.metadata.generation or not (
                status.updated_replicas == status.ready_replicas == status.replicas == replicas):
            return None
        pods = operator_pods(kube, namespace, RELEASE)
        if len(pods) != replicas or not all(any(c.type == "Ready" and c.status == "True"
                                                for c in p.status.conditions or []) for p in pods):
            return None
        return pods
    found: list[Any] = wait_for(ready, timeout=300, interval=0.5, what=f"{replicas} Ready operator Pods")
    return found


def test_helm_install_runs_the_operator_as_pods_under_psa_restricted_and_uninstall_keeps_the_secrets(
    node: Node, cluster: ControlPlane, kube: Kube, namespace: str, restricted_namespace: str,
    no_session_operator: None, artifacts: Path,
) -> None:
    ns = restricted_namespace
    # Pod Security Admission is on and enforces `restricted` there: a privileged Pod is refused.
    with pytest.raises(ApiException) as refused:
        kube.core.create_namespaced_pod(ns, {"metadata": {"name": "privileged"}, "spec": {"containers": [{
            "name": "c", "image": node.images["bot"], "securityContext": {"privileged": True}}]}})
    assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body)

    image = operator_image()
    print(f"\nincluster: image {image.reference}: {image.size} in buildah's store, "
          f"{image.archive.stat().st_size / 1e6:.0f} MB as OCI archive")
    node_images.import_into(node.socket, image.archive)

    workdir = artifacts / "incluster"
    moto = MotoServer(port=processes.free_port(), log=workdir / "moto.log", host=NODE_IP)
    bao = BridgedOpenBao(host=NODE_IP, workdir=workdir / "openbao")
    workdir.mkdir(parents=True, exist_ok=True)
    moto.start()
    bao.start()
    try:
        with relay(NODE_IP, cluster.api_port) as api:
            _install_sync_upgrade_uninstall(kube, cluster, ns, namespace, image.reference, api.port, moto, bao, workdir)
    finally:
        helm_state = subprocess.run([str(cluster.bin_dir / "helm"), "status", RELEASE, "--namespace", ns,
                                     "--kubeconfig", str(cluster.admin_kubeconfig)], capture_output=True, check=False)
        if helm_state.returncode == 0:  # a failure before the uninstall: leave no operator Pods running
            helm(cluster, "uninstall", RELEASE, "--namespace", ns, "--wait")
        moto.stop()
        bao.stop()


def _install_sync_upgrade_uninstall(kube: Kube, cluster: ControlPlane, ns: str, namespace: str, image_ref: str,
                                    api_port: int, moto: MotoServer, bao: BridgedOpenBao, workdir: Path) -> None:
    start = time.monotonic()
    helm(cluster, "install", RELEASE, str(CHART), "--namespace", ns, "--skip-crds",
         "--values", str(values_file(workdir / "values.yaml", image_ref, api_port)))
    pods = ready_pods(kube, ns, replicas=2)
    print(f"incluster: helm install -> 2 operator Pods Ready in {time.monotonic() - start:.1f} s")
    container = pods[0].spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert container.readiness_probe.http_get.path == container.liveness_probe.http_get.path == "/healthz"
    # Metrics are served; exactly one Pod leads (the Lease), the other stands by.
    leaders = wait_for(lambda: sorted(leader_value(p) for p in pods) == [0.0, 1.0] and pods, timeout=120,
                       what="one leading operator Pod and one standby, by their metrics")
    assert "botsecret_build_info" in metrics_of(leaders[0])

    # Sync from AWS (moto on the bridge) and from OpenBao over TLS with a caBundle: the Pod's root
    # filesystem is read-only, so the CA must reach TLS without a temporary file.
    aws_value, vault_value = secret_value("incluster_aws"), secret_value("incluster_vault")
    moto.client().create_secret(Name=f"{namespace}/aws", SecretString=aws_value)
    bao.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}-v", secret={"v": vault_value})  # type: ignore[attr-defined]
    bs.create(kube, namespace, "from-aws", {"sources": [bs.aws_source(kube, namespace, moto.endpoint)],
                                            "data": [{"key": "A", "remoteRef": {"name": f"{namespace}/aws"}}]})
    bs.create(kube, namespace, "from-vault", {"sources": [bs.vault_source(
        kube, namespace, bao.address, name="tls", caBundle=bao.ca_path.read_text())],
        "data": [{"key": "V", "remoteRef": {"name": f"{namespace}-v", "property": "v"}}]})
    for name in ("from-aws", "from-vault"):
        bs.wait_ready(kube, namespace, name, reason="Synced", timeout=120)
    assert bs.secret_data(kube, namespace, "from-aws") == {"A": aws_value.encode()}
    assert bs.secret_data(kube, namespace, "from-vault") == {"V": vault_value.encode()}

    # helm upgrade with changed values: new Pods with the new flags, still syncing.
    before = {p.metadata.name for p in pods}
    start = time.monotonic()
    helm(cluster, "upgrade", RELEASE, str(CHART), "--namespace", ns, "--skip-crds", "--values", str(
        values_file(workdir / "values-2.yaml", image_ref, api_port, leaderElection={"leaseDurationSeconds": 20})))
    upgraded = wait_for(lambda: (p := ready_pods(kube, ns, replicas=2)) and not before & {x.metadata.name for x in p}
                        and p, timeout=300, what="the upgraded operator Pods Ready, the old ones gone")
    print(f"incluster: helm upgrade -> new Pods Ready in {time.monotonic() - start:.1f} s")
    args = upgraded[0].spec.containers[0].args
    assert args[args.index("--lease-duration") + 1] == "20"
    rotated = secret_value("incluster_aws_rotated")
    moto.client().put_secret_value(SecretId=f"{namespace}/aws", SecretString=rotated)
    bs.force_sync(kube, namespace, "from-aws")
    wait_for(lambda: bs.secret_data(kube, namespace, "from-aws") == {"A": rotated.encode()}, timeout=120,
             what="the rotated value synced by the upgraded operator")

    # helm uninstall: the operator goes; the Secrets it made stay (same objects) and so do the BotSecrets.
    made = {name: kube.core.read_namespaced_secret(name, namespace).metadata.uid for name in ("from-aws", "from-vault")}
    helm(cluster, "uninstall", RELEASE, "--namespace", ns, "--wait")
    wait_for(lambda: not operator_pods(kube, ns, RELEASE), timeout=120, what="the operator Pods gone")
    with pytest.raises(ApiException) as gone:
        kube.apps.read_namespaced_deployment(FULLNAME, ns)
    assert gone.value.status == 404
    for name, uid in made.items():
        kept = kube.core.read_namespaced_secret(name, namespace)
        assert kept.metadata.uid == uid and kept.metadata.deletion_timestamp is None
        assert not bs.gone(kube, namespace, name), "helm uninstall keeps the BotSecrets"
    assert bs.secret_data(kube, namespace, "from-aws") == {"A": rotated.encode()}
