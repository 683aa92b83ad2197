"""End to end: restarts of bot workloads, with the real controller-manager making ReplicaSets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.rollout

SETTLE = 3.0  # how long a test watches for a restart that must not come


def rollout_entry(kube: Kube, namespace: str, name: str, kind: str, target: str) -> dict[str, Any] | None:
    for entry in (bs.get(kube, namespace, name).get("status") or {}).get("rollout") or []:
        if entry["kind"] == kind and entry["name"] == target:
            return dict(entry)
    return None


def condition(kube: Kube, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
    return bs.condition(bs.get(kube, namespace, name), kind)


def wait_rollout(kube: Kube, namespace: str, name: str, reason: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (c := condition(kube, namespace, name, "RolloutComplete")) and c["reason"] == reason and c,
                    timeout=timeout, what=f"RolloutComplete reason {reason}")


def sync_and_settle(kube: Kube, namespace: str, name: str) -> None:
    """Force a sync, wait until the operator handled it, then give a wrong restart time to show."""
    handled = bs.force_sync(kube, namespace, name)
    wait_for(lambda: (bs.get(kube, namespace, name).get("status") or {}).get("forceSyncHandled") == handled)
    time.sleep(SETTLE)


class Bot:
    """A BotSecret of keys A and B in AWS, and helpers to rotate them."""

    def __init__(self, kube: Kube, namespace: str, aws: MotoServer, *, targets: list[dict[str, Any]],
                 debounce: str = "1s", name: str = "bot") -> None:
        self.kube, self.namespace, self.sm, self.name = kube, namespace, aws.client(), name
        for key in ("A", "B"):
            self.sm.create_secret(Name=self.remote(key), SecretString=secret_value(f"rot_{key}"))
        bs.create(kube, namespace, name, {
            "sources": [bs.aws_source(kube, namespace, aws.endpoint, name=f"aws-{name}")],
            "data": [{"key": k, "remoteRef": {"name": self.remote(k)}} for k in ("A", "B")],
            "target": {"name": f"{name}-env"},
            "rollout": {"targets": targets, "debounce": debounce},
        })
        bs.wait_ready(kube, namespace, name)

    def remote(self, key: str) -> str:
        return f"{self.namespace}/{self.name}/{key}"

    def rotate(self, key: str, value: str | None = None) -> None:
        self.sm.put_secret_value(SecretId=self.remote(key), SecretString=value or secret_value(f"rot_{key}"))
        bs.force_sync(self.kube, self.namespace, self.name)


def test_a_rotation_gives_exactly_one_new_replicaset(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "app", **wl.uses_all("bot-env"))
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}])
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    time.sleep(SETTLE)
    assert wl.replicasets(kube, namespace, "app") == 1, "the first sync restarted the Deployment"

    bot.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "app")) and e.get("phase") == "Complete")
    time.sleep(SETTLE)
    assert wl.replicasets(kube, namespace, "app") == 2
    entry = rollout_entry(kube, namespace, "bot", "Deployment", "app")
    assert entry is not None and entry["restartedFor"] == ["A"]
    assert wl.template_annotation(kube, namespace, "Deployment", "app") == entry["dataHMAC"]
    events = kube.core.list_namespaced_event(namespace, field_selector="reason=RolloutRestarted").items
    assert len(events) == 1 and "A" in events[0].message

    bot.rotate("A", value=None)  # a new value
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 3)


def test_rotations_within_the_debounce_give_one_restart(operator: Any, kube: Kube, namespace: str,
                                                        aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "app", **wl.uses_all("bot-env"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}], debounce="4s")
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    bot.rotate("A")
    time.sleep(1)
    bot.rotate("B")
    wait_rollout(kube, namespace, "bot", "Debouncing", timeout=10)
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2, timeout=20)
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    time.sleep(SETTLE)
    assert wl.replicasets(kube, namespace, "app") == 2
    assert sorted(rollout_entry(kube, namespace, "bot", "Deployment", "app")["restartedFor"]) == ["A", "B"]

    bot.rotate("A")
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 3, timeout=20)


def test_no_restart_on_same_value_or_unrelated_spec_edit(operator: Any, kube: Kube, namespace: str,
                                                         aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "app", **wl.uses_key("bot-env", "A"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}])
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    current = bot.sm.get_secret_value(SecretId=bot.remote("A"), VersionStage="AWSCURRENT")["SecretString"]
    bot.sm.put_secret_value(SecretId=bot.remote("A"), SecretString=current)  # same value, new version
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 1

    # A spec edit that leaves what the Deployment consumes (key A) alone: refresh interval and key B's source.
    bs.patch_spec(kube, namespace, "bot", {"refreshInterval": "30m"})
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 1
    assert condition(kube, namespace, "bot", "RolloutComplete")["status"] == "True"


def test_only_consumers_of_the_rotated_key_restart(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "only-a", labels={"bot": "yes"}, **wl.uses_key("bot-env", "A"))
    wl.deployment(kube, namespace, "everything", labels={"bot": "yes"}, **wl.uses_all("bot-env"))
    wl.deployment(kube, namespace, "stranger", labels={"bot": "yes"})  # matched by the selector, reads nothing
    for app in ("only-a", "everything", "stranger"):
        wait_for(lambda app=app: wl.replicasets(kube, namespace, app) == 1)
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "selector": {"matchLabels": {"bot": "yes"}}}])
    wait_rollout(kube, namespace, "bot", "RolloutComplete")

    bot.rotate("B")
    wait_for(lambda: wl.replicasets(kube, namespace, "everything") == 2)
    time.sleep(SETTLE)
    assert wl.replicasets(kube, namespace, "only-a") == 1
    assert wl.replicasets(kube, namespace, "stranger") == 1
    tracked = {e["name"] for e in bs.get(kube, namespace, "bot")["status"]["rollout"]}
    assert tracked == {"only-a", "everything"}

    bot.rotate("A")
    wait_for(lambda: wl.replicasets(kube, namespace, "only-a") == 2)
    wait_for(lambda: wl.replicasets(kube, namespace, "everything") == 3)


def test_statefulset_and_daemonset_templates_get_the_annotation(operator: Any, kube: Kube, namespace: str,
                                                                aws: MotoServer) -> None:
    wl.statefulset(kube, namespace, "sts", **wl.uses_all("bot-env"))
    wl.daemonset(kube, namespace, "ds", **wl.uses_key("bot-env", "B"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "StatefulSet", "name": "sts"}, {"kind": "DaemonSet", "name": "ds"}])
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    assert wl.template_annotation(kube, namespace, "StatefulSet", "sts") is None
    bot.rotate("B")
    wait_for(lambda: wl.template_annotation(kube, namespace, "DaemonSet", "ds"))
    wait_for(lambda: wl.template_annotation(kube, namespace, "StatefulSet", "sts"))
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    for kind, name in (("StatefulSet", "sts"), ("DaemonSet", "ds")):
        entry = rollout_entry(kube, namespace, "bot", kind, name)
        assert entry["phase"] == "Complete" and entry["finishedAt"]
        assert wl.template_annotation(kube, namespace, kind, name) == entry["dataHMAC"]
    assert wl.template_annotation(kube, namespace, "StatefulSet", "sts") != wl.template_annotation(
        kube, namespace, "DaemonSet", "ds"), "each target's HMAC covers only what it consumes"


def test_a_paused_deployment_restarts_once_after_resume(operator: Any, kube: Kube, namespace: str,
                                                        aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "app", **wl.uses_all("bot-env"))
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}])
    kube.apps.patch_namespaced_deployment("app", namespace, {"spec": {"paused": True}})
    bot.rotate("A")
    paused = wait_rollout(kube, namespace, "bot", "Paused")
    assert "Deployment/app" in paused["message"]
    time.sleep(SETTLE)
    assert wl.replicasets(kube, namespace, "app") == 1
    assert wl.template_annotation(kube, namespace, "Deployment", "app") is None

    kube.apps.patch_namespaced_deployment("app", namespace, {"spec": {"paused": False}})
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2, timeout=45)
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    time.sleep(SETTLE)
    assert wl.replicasets(kube, namespace, "app") == 2


def test_rollouts_end_failed_or_complete(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "stuck", replicas=1, progress_deadline=2, **wl.uses_all("bot-env"))
    wl.deployment(kube, namespace, "fine", replicas=0, **wl.uses_all("bot-env"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "stuck"}, {"kind": "Deployment", "name": "fine"}])
    bot.rotate("A")
    failed = wait_rollout(kube, namespace, "bot", "RolloutFailed", timeout=60)
    assert "Deployment/stuck" in failed["message"]
    stuck = rollout_entry(kube, namespace, "bot", "Deployment", "stuck")
    assert stuck["phase"] == "Failed" and "deadline" in stuck["message"]
    assert rollout_entry(kube, namespace, "bot", "Deployment", "fine")["phase"] == "Complete"
    events = kube.core.list_namespaced_event(namespace, field_selector="reason=RolloutFailed").items
    assert events and events[0].type == "Warning" and "Deployment/stuck" in events[0].message


def test_operator_restart_with_fifty_synced_botsecrets_restarts_nothing(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    sm = aws.client()
    sm.create_secret(Name=f"{namespace}/shared", SecretString=secret_value("fifty"))
    source = bs.aws_source(kube, namespace, aws.endpoint)
    count = 50
    for i in range(count):
        wl.deployment(kube, namespace, f"app{i}", **wl.uses_all(f"bot{i}"))
        bs.create(kube, namespace, f"bot{i}", {
            "sources": [source], "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/shared"}}],
            "rollout": {"targets": [{"kind": "Deployment", "name": f"app{i}"}]},
        })
    for i in range(count):
        wait_for(lambda i=i: (c := condition(kube, namespace, f"bot{i}", "RolloutComplete")) and c["status"] == "True",
                 timeout=60)
    for i in range(count):
        wait_for(lambda i=i: wl.replicasets(kube, namespace, f"app{i}") == 1, timeout=60)
    before = {i: wl.replicasets(kube, namespace, f"app{i}") for i in range(count)}

    log_before = operator.output().count("Synced:")
    operator.restart()
    wait_for(lambda: operator.output().count("Synced:") >= log_before + count, timeout=120,
             what="every BotSecret synced after the restart")
    time.sleep(SETTLE)
    after = {i: wl.replicasets(kube, namespace, f"app{i}") for i in range(count)}
    assert after == before


def test_following_a_rollout_asks_no_provider(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "slow", replicas=1, progress_deadline=600, **wl.uses_all("bot-env"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "slow"}], debounce="0s")
    bot.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "slow")) and e.get("startedAt"))
    syncs_before = sum(operator.metric("botsecret_syncs_total", reason=r) for r in ("Synced", "ProviderError"))
    time.sleep(10)  # the operator re-checks the rollout every 2 s or more meanwhile
    syncs_after = sum(operator.metric("botsecret_syncs_total", reason=r) for r in ("Synced", "ProviderError"))
    entry = rollout_entry(kube, namespace, "bot", "Deployment", "slow")
    assert entry is not None and entry["phase"] == "Progressing" and "replicas" in entry["message"]
    assert syncs_after - syncs_before <= 1, "following a rollout re-fetched from the provider"
