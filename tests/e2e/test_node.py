"""End to end on a real node: bots in pods see a rotated credential (tests/harness/node.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_rollout import Bot, rollout_entry
from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.host_changes import HostSnapshot
from tests.harness.leaks import secret_value
from tests.harness.node import Node, host_lock, missing_requirements
from tests.harness.node_fixtures import bot_deployment, digest, wait_for_bot_digests, wait_for_deployment_pods
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.node


@pytest.mark.hostcheck
@pytest.mark.timeout(1800)  # it may wait for another test run's node to go (tests/harness/node.py: host_lock)
def test_a_node_that_fails_to_start_leaves_the_host_as_it_was(cluster: ControlPlane, kube: Kube,
                                                               artifacts: Path) -> None:
    reason = missing_requirements()
    if reason:
        pytest.skip(f"no node on this host: {reason}")
    # The kubelet refuses an unknown flag: by then the bridge, containerd with its images and the
    # RBAC are in place, and all of it must be undone. The node lock is held around the whole
    # check, so no other test run's node changes the host meanwhile.
    broken = Node(cluster=cluster, kube=kube, scratch=artifacts / "node-failing", kubelet_args=["--no-such-flag"])
    with host_lock():
        before = HostSnapshot.take()
        with pytest.raises(RuntimeError, match="unknown flag: --no-such-flag"):
            broken.start()
        assert (artifacts / "node-failing" / "containerd.log").exists(), "the start failed before it changed the host"
        assert broken.ledger.steps == []
        assert before.differences() == []


def test_two_bots_see_a_rotated_credential_through_one_new_replicaset(
    node: Node, operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "bots"}])
    first = bs.secret_data(kube, namespace, "bot-env")
    assert first is not None
    bot_deployment(kube, namespace, "bots", node, replicas=2, secret="bot-env", keys=["A", "B"])
    old_pods = wait_for_deployment_pods(kube, namespace, "bots")
    for pod in old_pods:
        assert wait_for_bot_digests(kube, namespace, pod, ["A", "B"]) == {"A": digest(first["A"]), "B": digest(first["B"])}
    assert wl.replicasets(kube, namespace, "bots") == 1
    # The Deployment came after the BotSecret: the operator looks for it (every 15 s) and records
    # a baseline; a rotation before that would count as the data it started with.
    wait_for(lambda: rollout_entry(kube, namespace, "bot", "Deployment", "bots"), timeout=60,
             what="the BotSecret's baseline of the Deployment")

    rotated = secret_value("rot_A")
    bot.rotate("A", rotated)
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "bots")) and e.get("phase") == "Complete"
             and e.get("restartedFor") == ["A"], timeout=180, what="the rollout Complete in the BotSecret's status")
    new_pods = wait_for_deployment_pods(kube, namespace, "bots")
    assert not set(new_pods) & set(old_pods)
    live = {p.metadata.name for p in kube.core.list_namespaced_pod(namespace, label_selector="app=bots").items}
    assert live == set(new_pods), f"old pods still there: {live - set(new_pods)}"
    for pod in new_pods:
        assert wait_for_bot_digests(kube, namespace, pod, ["A", "B"]) == {"A": digest(rotated), "B": digest(first["B"])}
    assert wl.replicasets(kube, namespace, "bots") == 2, "not exactly one new ReplicaSet"
    assert bs.condition(bs.get(kube, namespace, "bot"), "RolloutComplete")["reason"] == "RolloutComplete"
