"""End to end, with the real controller-manager (no kubelet: pods stay Pending): strategy
Versioned writes each data version to an immutable Secret, moves pod templates between versions,
rolls a failed rollout back, and garbage-collects versions."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.leak_scan import namespace_texts
from tests.harness.leaks import secret_value
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.revert, pytest.mark.rollout]


class VersionedBot:
    """A BotSecret of one key (A) in AWS, strategy Versioned, restarting Deployment ``app``."""

    def __init__(self, kube: Kube, namespace: str, aws: MotoServer, name: str = "bot", *, key: str = "A",
                 value: str | None = None, **rollout: Any) -> None:
        self.kube, self.namespace, self.name, self.sm = kube, namespace, name, aws.client()
        self.remote = f"{namespace}/{name}/{key}"
        self.value = value or secret_value("ver_A")
        self.sm.create_secret(Name=self.remote, SecretString=self.value)
        bs.create(kube, namespace, name, {
            "sources": [bs.aws_source(kube, namespace, aws.endpoint, name=f"aws-{name}")],
            "data": [{"key": key, "remoteRef": {"name": self.remote}}],
            "target": {"name": f"{name}-env", **rollout.pop("target", {})},
            "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": "0s",
                        "strategy": "Versioned", **rollout},
        })
        bs.wait_ready(kube, namespace, name)

    def status(self) -> dict[str, Any]:
        return bs.get(self.kube, self.namespace, self.name).get("status") or {}

    def versions(self) -> list[str]:
        return [v["secretName"] for v in self.status().get("versions") or []]

    def entry(self) -> dict[str, Any]:
        return next((dict(e) for e in self.status().get("rollout") or [] if e["name"] == "app"), {})

    def rotate(self, value: str | None = None) -> str:
        """A new value in AWS and a force-sync; answers the name of the version Secret it makes."""
        before = set(self.versions())
        self.value = value or secret_value("ver_A")
        self.sm.put_secret_value(SecretId=self.remote, SecretString=self.value)
        bs.force_sync(self.kube, self.namespace, self.name)
        made: str = wait_for(lambda: (set(self.versions()) - before or {""}).pop(), what="a new version in status")
        return made


def template_secret(kube: Kube, namespace: str) -> str:
    body = kube.apps.read_namespaced_deployment("app", namespace)
    return str(body.spec.template.spec.containers[0].env_from[0].secret_ref.name)


def pods_on(kube: Kube, namespace: str, version: str) -> list[str]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector="app=app").items
    return [p.metadata.name for p in pods if p.metadata.deletion_timestamp is None
            and p.spec.containers[0].env_from[0].secret_ref.name == version]


def replicas_by_version(kube: Kube, namespace: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rs in kube.apps.list_namespaced_replica_set(namespace, label_selector="app=app").items:
        name = rs.spec.template.spec.containers[0].env_from[0].secret_ref.name
        counts[name] = counts.get(name, 0) + (rs.spec.replicas or 0)
    return counts


def test_a_failed_rollout_is_rolled_back_and_the_old_version_keeps_serving(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    bot = VersionedBot(kube, namespace, aws)
    first = wait_for(lambda: bot.versions() and bot.versions()[0], what="the first version in status")
    v1 = bs.read_secret(kube, namespace, first)
    assert v1 is not None and v1.immutable and v1.data == bs.read_secret(kube, namespace, "bot-env").data
    assert v1.metadata.labels["botsecret.dev/version-of"] == "bot-env"
    assert [r.name for r in v1.metadata.owner_references] == ["bot"]

    # Pods never become available here, so the new version's rollout exceeds its 3 s deadline.
    wl.deployment(kube, namespace, "app", replicas=1, progress_deadline=3, env_from=[{"secretRef": {"name": first}}])
    wait_for(lambda: bot.entry().get("secretName") == first, what="the Deployment's baseline version in status")
    wait_for(lambda: pods_on(kube, namespace, first), what="a pod of the first version")

    second = bot.rotate()
    wait_for(lambda: template_secret(kube, namespace) == second, what="the template moved to the new version")
    assert bot.entry()["previousSecretName"] == first
    # An eviction during the rollout: the old ReplicaSet brings the pod back on the old version.
    old_pod = pods_on(kube, namespace, first)[0]
    kube.core.delete_namespaced_pod(old_pod, namespace, grace_period_seconds=0)
    wait_for(lambda: [p for p in pods_on(kube, namespace, first) if p != old_pod],
             what="a new pod of the old ReplicaSet on the old version")

    entry = wait_for(lambda: (e := bot.entry()).get("phase") == "RolledBack" and e, timeout=90,
                     what="the rollout rolled back")
    assert entry["rejectedSecretName"] == second and entry["secretName"] == first and entry["restartedFor"] == ["A"]
    assert template_secret(kube, namespace) == first
    rolled = bs.condition({"status": bot.status()}, "RolloutComplete")
    assert rolled is not None and rolled["reason"] == "RolledBack" and "Deployment/app" in rolled["message"]
    events = kube.core.list_namespaced_event(namespace, field_selector="reason=RolledBack").items
    assert len(events) == 1 and events[0].type == "Warning" and "changed keys: A" in events[0].message
    # The old ReplicaSet is the Deployment's current one again (no third ReplicaSet) and kept its
    # replica. Scaling the rejected one down needs available pods: that part is the node test's.
    def current_revision() -> str | None:
        revision = (kube.apps.read_namespaced_deployment("app", namespace).metadata.annotations or {}).get(
            "deployment.kubernetes.io/revision")
        for rs in kube.apps.list_namespaced_replica_set(namespace, label_selector="app=app").items:
            if (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision") == revision:
                return str(rs.spec.template.spec.containers[0].env_from[0].secret_ref.name)
        return None
    wait_for(lambda: current_revision() == first, what="the old ReplicaSet the Deployment's current revision")
    assert replicas_by_version(kube, namespace)[first] == 1
    assert len(kube.apps.list_namespaced_replica_set(namespace, label_selector="app=app").items) == 2
    assert bs.read_secret(kube, namespace, "bot-env").data == bs.read_secret(kube, namespace, second).data, \
        "the plain target keeps the latest data"

    # The same data is not tried again.
    handled = bs.force_sync(kube, namespace, "bot")
    status = wait_for(lambda: (s := bot.status()).get("forceSyncHandled") == handled and s, what="force-sync handled")
    assert template_secret(kube, namespace) == first and status["rollout"][0]["phase"] == "RolledBack"

    # A new rotation once the Deployment can complete (scaled to zero here) rolls out.
    wl.scale(kube, namespace, "Deployment", "app", 0)
    third = bot.rotate()
    wait_for(lambda: bot.entry().get("phase") == "Complete" and bot.entry().get("secretName") == third,
             timeout=60, what="the next version's rollout complete")
    assert template_secret(kube, namespace) == third
    complete = bs.condition({"status": bot.status()}, "RolloutComplete")
    assert complete is not None and complete["reason"] == "RolloutComplete"


def test_retry_rolls_out_a_rolled_back_version_again(operator: Any, kube: Kube, namespace: str,
                                                     aws: MotoServer) -> None:
    bot = VersionedBot(kube, namespace, aws, progressDeadline="3s")
    first = wait_for(lambda: bot.versions() and bot.versions()[0], what="the first version")
    wl.deployment(kube, namespace, "app", replicas=1, env_from=[{"secretRef": {"name": first}}])
    wait_for(lambda: bot.entry().get("secretName") == first, what="baseline")
    second = bot.rotate()
    wait_for(lambda: bot.entry().get("phase") == "RolledBack", timeout=90, what="rolled back")
    assert template_secret(kube, namespace) == first
    token = secrets.token_hex(6)
    kube.custom.patch_namespaced_custom_object("botsecret.dev", "v1alpha1", namespace, "botsecrets", "bot", {
        "metadata": {"annotations": {"botsecret.dev/force-sync": token, "botsecret.dev/retry-rollout": token}}})
    wait_for(lambda: template_secret(kube, namespace) == second, what="the rejected version rolled out again")


def test_gc_keeps_k_versions_and_never_one_still_referenced(operator: Any, kube: Kube, namespace: str,
                                                            aws: MotoServer) -> None:
    bot = VersionedBot(kube, namespace, aws, keepVersions=2)
    first = wait_for(lambda: bot.versions() and bot.versions()[0], what="the first version")
    wl.deployment(kube, namespace, "app", replicas=0, env_from=[{"secretRef": {"name": first}}])
    # A bare pod (Pending: there is no kubelet) still naming the first version, as a volume.
    kube.core.create_namespaced_pod(namespace, {"metadata": {"name": "holder"}, "spec": {
        "containers": [{"name": "c", "image": "example.invalid/bot:1"}],
        "volumes": [{"name": "s", "secret": {"secretName": first}}]}})
    made = [first] + [bot.rotate() for _ in range(4)]
    wait_for(lambda: bot.entry().get("secretName") == made[-1] and bot.entry().get("phase") == "Complete",
             timeout=60, what="the last version rolled out")
    bs.force_sync(kube, namespace, "bot")
    try:
        wait_for(lambda: set(bot.versions()) == {first, made[-2], made[-1]}, timeout=60,
                 what="the 2 newest and the referenced one kept")
    except AssertionError:
        print("made", made, "status", bot.status())
        raise
    assert [n for n in made if bs.read_secret(kube, namespace, n) is not None] == [first, made[-2], made[-1]]

    kube.core.delete_namespaced_pod("holder", namespace, grace_period_seconds=0)
    wait_for(lambda: not kube.core.list_namespaced_pod(namespace).items, what="the holder pod gone")
    made.append(bot.rotate())
    wait_for(lambda: set(bot.versions()) == set(made[-2:]), timeout=60, what="exactly K=2 versions left")
    assert [n for n in made if bs.read_secret(kube, namespace, n) is not None] == made[-2:]
    # The leak scan (test_zz_leaks, from this snapshot taken before the namespace goes) reads
    # every version Secret's metadata.
    scanned = namespace_texts(kube, namespace)
    assert all(f"secret metadata {namespace}/{n}" in scanned for n in made[-2:])


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_the_deletion_policy_applies_to_every_version(operator: Any, kube: Kube, namespace: str, aws: MotoServer,
                                                      policy: str) -> None:
    bot = VersionedBot(kube, namespace, aws, target={"deletionPolicy": policy})
    first = wait_for(lambda: bot.versions() and bot.versions()[0], what="the first version")
    second = bot.rotate()
    bs.delete(kube, namespace, "bot")
    wait_for(lambda: bs.gone(kube, namespace, "bot"), what="the BotSecret gone")
    for name in (first, second, "bot-env"):
        if policy == "Delete":
            wait_for(lambda name=name: bs.read_secret(kube, namespace, name) is None, what=f"{name} deleted")
        else:
            kept = bs.read_secret(kube, namespace, name)
            assert kept is not None and not [r for r in kept.metadata.owner_references or [] if r.name == "bot"]
