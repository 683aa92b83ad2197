"""End to end: restarts of bot workloads, with the real controller-manager making ReplicaSets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value
from tests.harness.operator_process import OPERATOR_NAMESPACE
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.rollout

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:botsecret-operator"

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


def sync_handled(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """Force a sync and wait for the status of the cycle that handled it; answer that status. The
    cycle writes what it restarted (or left pending) in the same patch as forceSyncHandled."""
    handled = bs.force_sync(kube, namespace, name)
    return wait_for(lambda: (s := bs.get(kube, namespace, name).get("status") or {}).get("forceSyncHandled") == handled
                    and s, what=f"force-sync {handled} handled")


def sync_and_settle(kube: Kube, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
    """Force a sync and wait until the operator is done with it: the force-sync is acknowledged,
    no restart waits (``pendingRollout``) and no rollout is in progress. Any restart that sync
    made due shows up as one of those first, so none can come after this returns unseen."""
    handled = bs.force_sync(kube, namespace, name)

    def done() -> dict[str, Any] | None:
        status = bs.get(kube, namespace, name).get("status") or {}
        if status.get("forceSyncHandled") != handled or status.get("pendingRollout"):
            return None
        if any(e.get("phase") == "Progressing" for e in status.get("rollout") or []):
            return None
        return status
    return wait_for(done, timeout=timeout, what=f"BotSecret {name} settled after force-sync {handled}")


class Bot:
    """A BotSecret of keys A and B in AWS, and helpers to rotate them."""

    def __init__(self, kube: Kube, namespace: str, aws: MotoServer, *, targets: list[dict[str, Any]],
                 debounce: str = "1s", name: str = "bot", progress_deadline: str | None = None) -> None:
        self.kube, self.namespace, self.sm, self.name = kube, namespace, aws.client(), name
        for key in ("A", "B"):
            self.sm.create_secret(Name=self.remote(key), SecretString=secret_value(f"rot_{key}"))
        bs.create(kube, namespace, name, {
            "sources": [bs.aws_source(kube, namespace, aws.endpoint, name=f"aws-{name}")],
            "data": [{"key": k, "remoteRef": {"name": self.remote(k)}} for k in ("A", "B")],
            "target": {"name": f"{name}-env"},
            "rollout": {"targets": targets, "debounce": debounce,
                        **({"progressDeadline": progress_deadline} if progress_deadline else {})},
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
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 1, "the first sync restarted the Deployment"

    bot.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "app")) and e.get("phase") == "Complete")
    sync_and_settle(kube, namespace, "bot")
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
    sync_and_settle(kube, namespace, "bot")
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
    sync_and_settle(kube, namespace, "bot")
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
    # A cycle after the pause was seen: had it patched the template, its status would say so.
    status = sync_handled(kube, namespace, "bot")
    assert bs.condition({"status": status}, "RolloutComplete")["reason"] == "Paused"
    assert wl.replicasets(kube, namespace, "app") == 1
    assert wl.template_annotation(kube, namespace, "Deployment", "app") is None

    kube.apps.patch_namespaced_deployment("app", namespace, {"spec": {"paused": False}})
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2, timeout=45)
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 2


def test_rollouts_end_failed_or_complete_and_a_recovery_is_seen(operator: Any, kube: Kube, namespace: str,
                                                                 aws: MotoServer) -> None:
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

    # Fixed by hand (here: scaled to zero): the operator looks again, unasked, and sees it complete.
    wl.scale(kube, namespace, "Deployment", "stuck", 0)
    wait_rollout(kube, namespace, "bot", "RolloutComplete", timeout=90)
    assert rollout_entry(kube, namespace, "bot", "Deployment", "stuck")["phase"] == "Complete"


@pytest.mark.operator_process
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
    for i in range(count):
        sync_and_settle(kube, namespace, f"bot{i}", timeout=60)
    after = {i: wl.replicasets(kube, namespace, f"app{i}") for i in range(count)}
    assert after == before


def operator_reads(cluster: ControlPlane, namespace: str, resource: str, name: str) -> int:
    """How often the operator has read one object so far, by the apiserver's audit log."""
    return sum(1 for e in cluster.audit_events()
               if e.get("user", {}).get("username") == OPERATOR_USER and e.get("stage") == "ResponseComplete"
               and e.get("verb") == "get" and (e.get("objectRef") or {}).get("resource") == resource
               and (e.get("objectRef") or {}).get("namespace") == namespace
               and (e.get("objectRef") or {}).get("name") == name)


@pytest.mark.operator_metrics
@pytest.mark.control_plane
def test_following_a_rollout_asks_no_provider(operator: Any, cluster: ControlPlane, kube: Kube, namespace: str,
                                              aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "slow", replicas=1, progress_deadline=600, **wl.uses_all("bot-env"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "slow"}], debounce="0s")
    bot.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "slow")) and e.get("startedAt"))
    syncs_before = sum(operator.metric("botsecret_syncs_total", reason=r) for r in ("Synced", "ProviderError"))
    reads = operator_reads(cluster, namespace, "deployments", "slow")
    # Each cycle that follows the rollout reads the Deployment: three of them, whatever they take.
    wait_for(lambda: operator_reads(cluster, namespace, "deployments", "slow") >= reads + 3, timeout=60, interval=1,
             what="three cycles following the rollout")
    syncs_after = sum(operator.metric("botsecret_syncs_total", reason=r) for r in ("Synced", "ProviderError"))
    entry = rollout_entry(kube, namespace, "bot", "Deployment", "slow")
    assert entry is not None and entry["phase"] == "Progressing" and "replicas" in entry["message"]
    assert syncs_after - syncs_before <= 1, "following a rollout re-fetched from the provider"


def test_a_stuck_rollout_is_waited_for_truthfully_then_superseded(operator: Any, kube: Kube, namespace: str,
                                                                   aws: MotoServer) -> None:
    # A StatefulSet has no progress deadline of its own, and without a kubelet it never gets ready.
    wl.statefulset(kube, namespace, "sts", replicas=1, **wl.uses_all("bot-env"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "StatefulSet", "name": "sts"}], debounce="0s",
              progress_deadline="30s")  # long enough to see the wait on a busy machine
    wait_rollout(kube, namespace, "bot", "RolloutComplete")
    bot.rotate("A")
    first = wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "StatefulSet", "sts")) and e.get("startedAt")
                     and e)
    bot.rotate("B")

    def waiting() -> dict[str, Any] | None:
        body = bs.get(kube, namespace, "bot")
        c = bs.condition(body, "RolloutComplete")
        return body if c and c["reason"] == "WaitingForRollout" else None
    body = wait_for(waiting, what="RolloutComplete reason WaitingForRollout")
    held = bs.condition(body, "RolloutComplete")
    assert held["status"] == "False" and "StatefulSet/sts" in held["message"]
    entry = next(e for e in body["status"]["rollout"] if e["name"] == "sts")
    assert entry["dataHMAC"] == first["dataHMAC"], "restarted while the previous rollout was still going"

    # After spec.rollout.progressDeadline the stuck rollout counts as failed and the new data goes out.
    second = wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "StatefulSet", "sts"))
                      and e.get("dataHMAC") != first["dataHMAC"] and e, timeout=90, what="the superseding restart")
    assert second["restartedFor"] == ["B"]
    assert wl.template_annotation(kube, namespace, "StatefulSet", "sts") == second["dataHMAC"]
    # kopf posts events after the status write, so the event may come a moment later.
    wait_for(lambda: any("StatefulSet/sts" in e.message and "progressDeadline" in e.message for e in
                         kube.core.list_namespaced_event(namespace, field_selector="reason=RolloutFailed").items),
             what="a RolloutFailed event naming the StatefulSet and progressDeadline")


def test_reading_one_more_key_is_a_new_baseline_not_a_restart(operator: Any, kube: Kube, namespace: str,
                                                              aws: MotoServer) -> None:
    wl.deployment(kube, namespace, "app", **wl.uses_key("bot-env", "A"))
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}])
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    sync_and_settle(kube, namespace, "bot")

    # The user's own edit rolls the Deployment out; its new pods read the current A and B.
    kube.apps.patch_namespaced_deployment("app", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "bot", **wl.uses_key("bot-env", "A", "B")}]}}}})
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2)
    status = sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 2, "restarted for a change of what it reads, not of the data"
    entry = next(e for e in status["rollout"] if e["name"] == "app")
    assert entry["consumedKeys"] == ["A", "B"] and "startedAt" not in entry

    bot.rotate("B")  # B is part of the baseline now: its rotation restarts once
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 3)
    status = sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 3
    assert next(e for e in status["rollout"] if e["name"] == "app")["restartedFor"] == ["B"]


def test_two_botsecrets_feeding_one_workload_keep_their_own_marks(operator: Any, kube: Kube, namespace: str,
                                                                  aws: MotoServer) -> None:
    # One replica and no kubelet: both rollouts stay in progress, so each BotSecret keeps following.
    wl.deployment(kube, namespace, "app", replicas=1, progress_deadline=600,
                  env_from=[{"secretRef": {"name": "one-env"}}, {"secretRef": {"name": "two-env"}}])
    one = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}], debounce="0s", name="one")
    two = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}], debounce="0s", name="two")
    one.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "one", "Deployment", "app")) and e.get("startedAt"))
    two.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "two", "Deployment", "app")) and e.get("startedAt"))

    # A cycle of "one" after "two" restarted the Deployment, late enough to follow its own rollout:
    # times in status have whole seconds, and a rollout started in the same second is not judged yet.
    started = rollout_entry(kube, namespace, "one", "Deployment", "app")["startedAt"]
    wait_for(lambda: (s := sync_handled(kube, namespace, "one"))["syncedAt"] > started and s, interval=0.5,
             what="a cycle of BotSecret one after its restart")
    mine = rollout_entry(kube, namespace, "one", "Deployment", "app")
    theirs = rollout_entry(kube, namespace, "two", "Deployment", "app")
    assert mine is not None and theirs is not None and mine["message"] != "restarted"
    assert "someone else" not in mine["message"], "the other BotSecret's restart overwrote this one's mark"
    assert wl.template_annotation(kube, namespace, "Deployment", "app", botsecret="one") == mine["dataHMAC"]
    assert wl.template_annotation(kube, namespace, "Deployment", "app", botsecret="two") == theirs["dataHMAC"]


def test_a_missing_target_is_reported_and_restarted_once_it_appears(operator: Any, kube: Kube, namespace: str,
                                                                    aws: MotoServer) -> None:
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "later"}])
    missing = wait_rollout(kube, namespace, "bot", "TargetNotFound")
    assert missing["status"] == "False" and "Deployment/later" in missing["message"]

    # Created after the Secret, it starts with the current data: noticed unasked, a baseline, no restart.
    wl.deployment(kube, namespace, "later", **wl.uses_all("bot-env"))
    wait_rollout(kube, namespace, "bot", "RolloutComplete", timeout=90)
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "later") == 1

    bot.rotate("A")
    wait_for(lambda: wl.replicasets(kube, namespace, "later") == 2)
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "later") == 2


def test_upgrading_from_the_single_mark_restarts_nothing_and_one_restart_drops_it(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    # A template as an older operator left it: the one key every BotSecret wrote.
    wl.deployment(kube, namespace, "app", annotations={wl.LEGACY_RESTART_ANNOTATION: "hmac-sha256:older"},
                  **wl.uses_all("bot-env"))
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    bot = Bot(kube, namespace, aws, targets=[{"kind": "Deployment", "name": "app"}])
    sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 1

    bot.rotate("A")
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2)
    status = sync_and_settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 2, "dropping the old key cost a rollout of its own"
    annotations = wl.template_annotations(kube, namespace, "Deployment", "app")
    assert wl.LEGACY_RESTART_ANNOTATION not in annotations
    assert annotations[wl.restart_annotation("bot")] == status["rollout"][0]["dataHMAC"]
