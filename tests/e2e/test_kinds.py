"""End to end: restarts of workload kinds beyond apps/v1 (Argo Rollouts on a structural CRD of our
own, a kind of our own with a pod template), targets the API does not serve or the operator may not
read, and a competing owner of the pod template (RestartConflict), against the real apiserver and
controller-manager. Patches are counted in the apiserver's audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness import kinds
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.leaks import secret_value
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.features

ARGO = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"}
RUNNER = {"apiVersion": "example.botsecret.dev/v1", "kind": "BotRunner"}
MARK = wl.restart_annotation("bot")


@pytest.fixture(scope="module")
def crds(kube: Kube) -> Iterator[None]:
    kinds.install_crd(kube, kinds.ARGO_CRD)
    kinds.install_crd(kube, kinds.RUNNER_CRD)
    yield


def bot(kube: Kube, namespace: str, aws: MotoServer, targets: list[dict[str, Any]]) -> Any:
    """A BotSecret syncing one AWS secret into Secret bot-env and restarting ``targets``; answers
    the Secrets Manager client, to rotate with."""
    sm = aws.client()
    sm.create_secret(Name=f"{namespace}/token", SecretString=secret_value("kinds_v1"))
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": "TOKEN", "remoteRef": {"name": f"{namespace}/token"}}],
        "target": {"name": "bot-env"}, "rollout": {"targets": targets, "debounce": "1s"},
    })
    bs.wait_ready(kube, namespace, "bot")
    return sm


def rotate(kube: Kube, namespace: str, sm: Any, label: str) -> None:
    sm.put_secret_value(SecretId=f"{namespace}/token", SecretString=secret_value(f"kinds_{label}"))
    bs.force_sync(kube, namespace, "bot")


def settle(kube: Kube, namespace: str) -> dict[str, Any]:
    """Force a sync and wait until it is handled and nothing waits or rolls out."""
    handled = bs.force_sync(kube, namespace, "bot")

    def done() -> dict[str, Any] | None:
        status = bs.get(kube, namespace, "bot").get("status") or {}
        if status.get("forceSyncHandled") != handled or status.get("pendingRollout"):
            return None
        return None if any(e.get("phase") == "Progressing" for e in status.get("rollout") or []) else status
    return wait_for(done, timeout=60, what="BotSecret bot settled")


def entry(kube: Kube, namespace: str, kind: str, name: str) -> dict[str, Any]:
    for item in (bs.get(kube, namespace, "bot").get("status") or {}).get("rollout") or []:
        if item["kind"] == kind and item["name"] == name:
            return dict(item)
    return {}


def rollout_condition(kube: Kube, namespace: str) -> dict[str, Any]:
    return bs.condition(bs.get(kube, namespace, "bot"), "RolloutComplete") or {}


def wait_condition(kube: Kube, namespace: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (c := rollout_condition(kube, namespace)).get("reason") == reason and c,
                    timeout=timeout, what=f"RolloutComplete reason {reason}")


def template_annotations(body: dict[str, Any]) -> dict[str, str]:
    return dict((body["spec"]["template"].get("metadata") or {}).get("annotations") or {})


def events(kube: Kube, namespace: str, reason: str) -> list[Any]:
    return list(kube.core.list_namespaced_event(namespace, field_selector=f"reason={reason}").items)


def test_an_argo_rollout_restarts_once_per_rotation_through_restart_at_and_is_followed_through_its_phase(
        operator: Any, kube: Kube, cluster: ControlPlane, namespace: str, aws: MotoServer, crds: None) -> None:
    kinds.create_rollout(kube, namespace, "bot", **wl.uses_all("bot-env"))
    sm = bot(kube, namespace, aws, [{**ARGO, "name": "bot"}])
    status = settle(kube, namespace)
    assert [(e["kind"], e.get("apiVersion"), e["name"]) for e in status["rollout"]] == [
        ("Rollout", "argoproj.io/v1alpha1", "bot")]
    assert kinds.operator_patches(cluster, "rollouts", namespace, "bot") == 0, "the first sync restarted"

    rotate(kube, namespace, sm, "v2")
    wait_for(lambda: kinds.get_rollout(kube, namespace, "bot")["spec"].get("restartAt"), timeout=60,
             what="spec.restartAt set")
    rollout = kinds.get_rollout(kube, namespace, "bot")
    requested = rollout["spec"]["restartAt"]
    restarted = wait_for(lambda: (e := entry(kube, namespace, "Rollout", "bot")).get("startedAt") and e)
    assert rollout["metadata"]["annotations"][MARK] == restarted["dataHMAC"]
    assert MARK not in (rollout["spec"]["template"]["metadata"].get("annotations") or {}), \
        "a template change would be an Argo update with its canary steps, not a restart"
    assert restarted["restartedFor"] == ["TOKEN"]

    # Argo's controller has not restarted the pods yet: Healthy from before is not Complete.
    kinds.set_rollout_status(kube, namespace, "bot", observedGeneration=str(rollout["metadata"]["generation"]))
    waiting = wait_for(lambda: "created before" in (e := entry(kube, namespace, "Rollout", "bot")).get("message", "")
                       and e, timeout=60, what="the follow waiting for status.restartedAt")
    assert waiting["phase"] == "Progressing"
    assert rollout_condition(kube, namespace)["reason"] == "Progressing"
    # Restarted, but an update is under way: still not Complete.
    kinds.set_rollout_status(kube, namespace, "bot", phase="Progressing", restartedAt=requested,
                             currentPodHash="7f5c9d8b6")
    wait_for(lambda: "currentPodHash" in entry(kube, namespace, "Rollout", "bot").get("message", ""),
             timeout=60, what="the follow waiting for currentPodHash == stableRS")
    kinds.set_rollout_status(kube, namespace, "bot", phase="Healthy", stableRS="7f5c9d8b6")
    wait_condition(kube, namespace, "RolloutComplete")
    assert entry(kube, namespace, "Rollout", "bot")["phase"] == "Complete"

    for _ in range(3):  # refreshes without a change restart nothing
        settle(kube, namespace)
    assert kinds.operator_patches(cluster, "rollouts", namespace, "bot") == 1

    # The next rotation: one more restart; Degraded is a failed rollout.
    rotate(kube, namespace, sm, "v3")
    wait_for(lambda: entry(kube, namespace, "Rollout", "bot").get("dataHMAC") != restarted["dataHMAC"],
             timeout=60, what="the second restart")
    assert kinds.get_rollout(kube, namespace, "bot")["metadata"]["annotations"][MARK] != restarted["dataHMAC"]
    generation = kinds.get_rollout(kube, namespace, "bot")["metadata"]["generation"]
    kinds.set_rollout_status(kube, namespace, "bot", phase="Degraded", observedGeneration=str(generation),
                             message="ProgressDeadlineExceeded: ReplicaSet has timed out progressing.")
    failed = wait_condition(kube, namespace, "RolloutFailed")
    assert "Rollout/bot" in failed["message"]
    assert entry(kube, namespace, "Rollout", "bot")["phase"] == "Failed"
    # Events are posted after the status, by kopf's queue: wait for them.
    failures = wait_for(lambda: events(kube, namespace, "RolloutFailed"), timeout=60, what="the RolloutFailed event")
    assert [e.message.split(":")[0] for e in failures] == ["Rollout/bot"]
    assert kinds.operator_patches(cluster, "rollouts", namespace, "bot") == 2


def test_a_kind_with_a_pod_template_restarts_once_per_rotation_and_is_followed_where_its_status_allows(
        operator: Any, kube: Kube, cluster: ControlPlane, namespace: str, aws: MotoServer, crds: None) -> None:
    kinds.grant_runners(kube, namespace)
    kinds.create_runner(kube, namespace, "conventional", **wl.uses_all("bot-env"))
    kinds.set_runner_status(kube, namespace, "conventional", {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})
    kinds.create_runner(kube, namespace, "opaque", **wl.uses_key("bot-env", "TOKEN"))
    # One by name, one by label selector (listed).
    sm = bot(kube, namespace, aws, [{**RUNNER, "name": "conventional"}, {**RUNNER, "selector": {"matchLabels": {"app": "opaque"}}}])
    status = settle(kube, namespace)
    assert sorted(e["name"] for e in status["rollout"]) == ["conventional", "opaque"]
    assert rollout_condition(kube, namespace)["reason"] == "RolloutComplete"

    rotate(kube, namespace, sm, "v2")
    # Restarted with the same pod-template mark as a Deployment.
    marked = {name: wait_for(lambda n=name: template_annotations(kinds.get_runner(kube, namespace, n)).get(MARK),
                             what=f"BotRunner {name} marked")
              for name in ("conventional", "opaque")}
    opaque = wait_for(lambda: (e := entry(kube, namespace, "BotRunner", "opaque")).get("phase") == "Unknown" and e,
                      timeout=60, what="the opaque kind not followed")
    assert "Deployment conventions" in opaque["message"]
    following = entry(kube, namespace, "BotRunner", "conventional")
    assert following["phase"] == "Progressing" and marked["conventional"] == following["dataHMAC"]
    # Its controller observes the new template and updates the replicas.
    kinds.set_runner_status(kube, namespace, "conventional", {"observedGeneration": 2, "updatedReplicas": 1})
    wait_for(lambda: entry(kube, namespace, "BotRunner", "conventional").get("phase") == "Complete",
             timeout=60, what="the conventional kind's rollout Complete")
    condition = wait_condition(kube, namespace, "NotFollowed")
    assert condition["status"] == "Unknown" and "BotRunner/opaque" in condition["message"]
    assert "conventional" not in condition["message"]

    for _ in range(3):
        settle(kube, namespace)
    assert [kinds.operator_patches(cluster, "botrunners", namespace, n) for n in ("conventional", "opaque")] == [1, 1]


def test_a_kind_not_served_and_a_kind_not_granted_are_named_and_the_other_targets_still_restart(
        operator: Any, kube: Kube, cluster: ControlPlane, namespace: str, aws: MotoServer, crds: None) -> None:
    wl.deployment(kube, namespace, "app", **wl.uses_all("bot-env"))
    kinds.create_runner(kube, namespace, "runner", **wl.uses_all("bot-env"))
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    sm = bot(kube, namespace, aws, [
        {"kind": "Deployment", "name": "app"},
        {"apiVersion": "example.invalid/v1", "kind": "Widget", "name": "w"},
        {**ARGO, "kind": "AnalysisRun", "name": "a"},  # a served group without that kind
        {**RUNNER, "name": "runner"},  # no rights on BotRunners yet
    ])
    forbidden = wait_condition(kube, namespace, "Forbidden")
    assert "BotRunner/runner (the operator may not get botrunners.example.botsecret.dev)" in forbidden["message"]
    assert "Widget/w (the API does not serve kind Widget in example.invalid/v1)" in forbidden["message"]
    assert "AnalysisRun/a (the API does not serve kind AnalysisRun in argoproj.io/v1alpha1)" in forbidden["message"]
    assert bs.ready(bs.get(kube, namespace, "bot"))["status"] == "True", "the sync itself is fine"

    rotate(kube, namespace, sm, "v2")
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2, timeout=60, what="the Deployment restarted")
    settle(kube, namespace)
    assert wl.replicasets(kube, namespace, "app") == 2

    # Granted (what rbac.extraRules does), the BotRunner is found again within the recheck period;
    # only the kinds not served are left.
    kinds.grant_runners(kube, namespace)
    served = wait_condition(kube, namespace, "KindNotServed", timeout=90)
    assert "Widget/w" in served["message"] and "BotRunner" not in served["message"]
    assert entry(kube, namespace, "BotRunner", "runner").get("dataHMAC"), "a baseline, not a restart"
    assert kinds.operator_patches(cluster, "botrunners", namespace, "runner") == 0


def test_a_field_manager_stripping_the_mark_gets_one_attempt_per_rotation_and_a_restart_conflict(
        operator: Any, kube: Kube, cluster: ControlPlane, namespace: str, aws: MotoServer) -> None:
    # The Deployment belongs to another tool (as with GitOps), which owns its template.
    template = wl.pod_template("app", **wl.uses_all("bot-env"), annotations={"example.com/owner": "gitops"})
    kube.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "app"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "app"}}, "template": template},
    }, field_manager=kinds.Stripper.MANAGER)
    sm = bot(kube, namespace, aws, [{"kind": "Deployment", "name": "app"}])
    settle(kube, namespace)

    with kinds.Stripper(kube_for(cluster.admin_kubeconfig).api, namespace, "app", MARK) as stripper:
        rotate(kube, namespace, sm, "v2")
        conflict = wait_condition(kube, namespace, "RestartConflict")
        assert "Deployment/app" in conflict["message"]
        assert f"field manager {kinds.Stripper.MANAGER!r}" in conflict["message"]
        assert stripper.removed >= 1
        wait_for(lambda: events(kube, namespace, "RestartConflict"), timeout=60, what="the RestartConflict event")
        for _ in range(3):  # refreshes: the operator does not try again for the same data
            settle(kube, namespace)
        assert rollout_condition(kube, namespace)["reason"] == "RestartConflict"
        assert kinds.operator_patches(cluster, "deployments", namespace, "app") == 1
        warnings = events(kube, namespace, "RestartConflict")
        assert len(warnings) == 1 and warnings[0].type == "Warning" and warnings[0].count in (None, 1)
        assert kinds.Stripper.MANAGER in warnings[0].message
        assert entry(kube, namespace, "Deployment", "app")["phase"] == "Conflict"

    # The other owner stopped: the next rotation restarts normally and the condition clears.
    rotate(kube, namespace, sm, "v3")
    wait_condition(kube, namespace, "RolloutComplete")
    done = entry(kube, namespace, "Deployment", "app")
    assert done["phase"] == "Complete"
    assert wl.template_annotation(kube, namespace, "Deployment", "app") == done["dataHMAC"]
    assert kinds.operator_patches(cluster, "deployments", namespace, "app") == 2
    assert len(events(kube, namespace, "RestartConflict")) == 1
