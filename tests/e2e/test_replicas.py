"""Two operator replicas: a Lease decides which one reconciles; when it dies, the other takes over.

Both replicas run as the same ServiceAccount, so the apiserver cannot tell their writes apart;
each process's own metrics and log say what it did.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.test_rollout import Bot, rollout_entry, sync_and_settle, wait_rollout
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.operator_process import OPERATOR_NAMESPACE, OperatorProcess
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.packaging

LEASE = "botsecret-operator"


def synced(operator: OperatorProcess) -> float:
    return operator.metric("botsecret_syncs_total", reason="Synced")


@pytest.fixture
def two_replicas(operator: OperatorProcess, artifacts: Path,
                 request: pytest.FixtureRequest) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """Two operator processes in place of the session's one, which comes back afterwards."""
    operator.stop()
    test = request.node.name.removeprefix("test_")[:40]
    replicas = tuple(OperatorProcess(kubeconfig=operator.kubeconfig, log=artifacts / f"operator-{test}-{n}.log",
                                     env={**operator.env, "BOTSECRET_LEADER_ELECTION": "true"})
                     for n in ("a", "b"))
    try:
        for replica in replicas:
            replica.await_leadership = False  # the second one stays a standby
            replica.start()
        yield replicas[0], replicas[1]
    finally:
        for replica in replicas:
            replica.stop()
        operator.start()


@pytest.mark.operator_process
@pytest.mark.operator_metrics
def test_one_of_two_replicas_reconciles_and_the_other_takes_over_a_rotation(
    two_replicas: tuple[OperatorProcess, OperatorProcess], kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    replicas = list(two_replicas)
    wl.deployment(kube, namespace, "app", **wl.uses_all("bot-env"))
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}])
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    sync_and_settle(kube, namespace, "bot")

    reconciling = [r for r in replicas if synced(r) > 0]
    assert len(reconciling) == 1, f"{len(reconciling)} of 2 replicas synced the BotSecret"
    [leader] = reconciling
    [standby] = [r for r in replicas if r is not leader]
    assert leader.metric("botsecret_leader") == 1
    assert standby.metric("botsecret_leader") == 0
    assert standby.metric("botsecret_secret_writes_total") == 0
    assert namespace not in standby.output(), "the standby handled a BotSecret of the test's namespace"
    lease = client.CoordinationV1Api(kube.api).read_namespaced_lease(LEASE, OPERATOR_NAMESPACE)
    assert lease.spec.holder_identity and lease.spec.holder_identity in leader.output()

    # The leader dies without a word; a rotation comes while nobody leads.
    assert leader.proc is not None
    killed = time.monotonic()
    os.killpg(leader.proc.pid, signal.SIGKILL)
    leader.proc.wait(10)
    bot.rotate("A")

    wait_for(lambda: standby.metric("botsecret_leader") == 1, timeout=60, what="the standby took the Lease")
    took_over = time.monotonic() - killed
    print(f"\nfailover: the standby led {took_over:.1f} s after SIGKILL of the leader "
          f"(lease duration {lease.spec.lease_duration_seconds} s)")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "app")) and e.get("phase") == "Complete"
             and e.get("restartedFor") == ["A"], timeout=60, what="the rotation's rollout Complete")
    print(f"failover: the rotation's rollout was Complete {time.monotonic() - killed:.1f} s after SIGKILL")
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 2, "the rotation during failover gave not exactly one restart"
    assert standby.metric("botsecret_restarts_total", kind="Deployment") == 1
    after = client.CoordinationV1Api(kube.api).read_namespaced_lease(LEASE, OPERATOR_NAMESPACE)
    assert after.spec.holder_identity != lease.spec.holder_identity
    assert after.spec.holder_identity in standby.output()
    assert (after.spec.lease_transitions or 0) == (lease.spec.lease_transitions or 0) + 1


@pytest.mark.operator_process
def test_a_leader_stopped_gracefully_hands_the_lease_over(
    two_replicas: tuple[OperatorProcess, OperatorProcess], kube: Kube,
) -> None:
    first = wait_for(lambda: next((r for r in two_replicas if r.metric("botsecret_leader") == 1), None),
                     what="one replica leads")
    [other] = [r for r in two_replicas if r is not first]
    stopped = time.monotonic()
    first.stop()
    assert "released the Lease" in first.output()
    wait_for(lambda: other.metric("botsecret_leader") == 1, what="the other replica took the released Lease")
    print(f"\nhandover: the other replica led {time.monotonic() - stopped:.1f} s after the leader was stopped")
    lease = client.CoordinationV1Api(kube.api).read_namespaced_lease(LEASE, OPERATOR_NAMESPACE)
    assert lease.spec.holder_identity in other.output()
