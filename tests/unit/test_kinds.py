"""botsecret.kinds: how each workload kind is restarted and followed (pure logic)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from botsecret.kinds import LEGACY_RESTART_ANNOTATION, WorkloadKind, argo_phase, conventional_phase, rival_manager

MARK = "restarted-for.botsecret.dev/bot"
NOW = datetime.datetime(2026, 12, 7, 18, 0, 5, tzinfo=datetime.UTC)
ARGO = WorkloadKind("argoproj.io/v1alpha1", "Rollout")
RUNNER = WorkloadKind("example.com/v1", "BotRunner")
DEPLOYMENT = WorkloadKind("apps/v1", "Deployment")


def test_styles_follow_the_api_group_and_kind() -> None:
    assert DEPLOYMENT.style == "apps" and ARGO.style == "argo" and RUNNER.style == "generic"
    assert WorkloadKind("argoproj.io/v1alpha1", "AnalysisRun").style == "generic"
    assert WorkloadKind("example.com/v1", "Rollout").style == "generic", "only Argo's Rollout is restarted by restartAt"
    assert (ARGO.group, ARGO.version) == ("argoproj.io", "v1alpha1")


def test_an_argo_rollout_is_restarted_through_restart_at_with_the_mark_on_its_own_metadata() -> None:
    patch = ARGO.restart_patch(MARK, "hmac-sha256:x", NOW)
    assert patch == {"metadata": {"annotations": {MARK: "hmac-sha256:x", LEGACY_RESTART_ANNOTATION: None}},
                     "spec": {"restartAt": "2026-12-07T18:00:05Z"}}
    assert ARGO.mark({"metadata": {"annotations": {MARK: "hmac-sha256:x"}}}, MARK) == "hmac-sha256:x"


@pytest.mark.parametrize("kind", [DEPLOYMENT, RUNNER])
def test_other_kinds_carry_the_mark_on_the_pod_template(kind: WorkloadKind) -> None:
    patch = kind.restart_patch(MARK, "hmac-sha256:x", NOW)
    assert patch == {"spec": {"template": {"metadata": {"annotations": {
        MARK: "hmac-sha256:x", LEGACY_RESTART_ANNOTATION: None}}}}}
    body = {"spec": {"template": {"metadata": {"annotations": {LEGACY_RESTART_ANNOTATION: "old"}}}}}
    assert kind.mark(body, MARK) == "old"
    assert kind.mark({"spec": {}}, MARK) is None


def rollout(status: dict[str, Any], *, restart_at: str | None = "2026-12-07T18:00:05Z",
            generation: int = 2) -> dict[str, Any]:
    spec = {"restartAt": restart_at} if restart_at else {}
    return {"metadata": {"generation": generation}, "spec": spec, "status": status}


HEALTHY = {"phase": "Healthy", "observedGeneration": "2", "currentPodHash": "a", "stableRS": "a"}


@pytest.mark.parametrize(("status", "phase", "words"), [
    ({**HEALTHY, "observedGeneration": "1"}, "Progressing", "observe generation 2"),
    (HEALTHY, "Progressing", "created before 2026-12-07T18:00:05Z"),
    ({**HEALTHY, "restartedAt": "2026-12-07T18:00:04Z"}, "Progressing", "created before"),
    ({**HEALTHY, "restartedAt": "2026-12-07T18:00:05Z", "currentPodHash": "b"}, "Progressing", "currentPodHash"),
    ({**HEALTHY, "restartedAt": "2026-12-07T18:00:09Z", "phase": "Paused"}, "Progressing", "phase Paused"),
    ({**HEALTHY, "restartedAt": "2026-12-07T18:00:05Z"}, "Complete", "Healthy"),
    ({**HEALTHY, "phase": "Degraded", "message": "ProgressDeadlineExceeded"}, "Failed", "ProgressDeadlineExceeded"),
])
def test_an_argo_rollout_is_complete_only_once_its_restart_caught_up(status: dict[str, Any], phase: str,
                                                                      words: str) -> None:
    judged, message = argo_phase(rollout(status))
    assert (judged, words in message) == (phase, True), message


def test_an_argo_rollout_never_restarted_is_judged_by_its_phase() -> None:
    assert argo_phase(rollout(HEALTHY, restart_at=None))[0] == "Complete"


@pytest.mark.parametrize(("status", "phase"), [
    ({}, "Unknown"),
    ({"observedGeneration": 2}, "Unknown"),
    ({"ready": True, "replicas": 1}, "Unknown"),
    ({"observedGeneration": 1, "updatedReplicas": 1}, "Progressing"),
    ({"observedGeneration": 2, "updatedReplicas": 0}, "Progressing"),
    ({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1}, "Complete"),
    ({"observedGeneration": 2, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]},
     "Failed"),
])
def test_other_kinds_are_followed_only_where_their_status_is_deployment_like(status: dict[str, Any],
                                                                             phase: str) -> None:
    body = {"metadata": {"generation": 2}, "spec": {"replicas": 1}, "status": status}
    assert conventional_phase(body)[0] == phase
    assert RUNNER.phase(body)[0] == phase


def managed(manager: str, fields: dict[str, Any], time: str = "2026-12-07T17:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"manager": manager, "operation": "Update", "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields,
            **extra}


TEMPLATE_LABELS = {"f:spec": {"f:template": {"f:metadata": {"f:labels": {"f:app": {}}}}}}
TEMPLATE_MARK = {"f:spec": {"f:template": {"f:metadata": {"f:annotations": {f"f:{MARK}": {}}}}}}


def body_of(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"managedFields": list(entries)}}


def test_the_manager_that_owns_the_mark_is_the_one_named() -> None:
    body = body_of(managed("gitops", TEMPLATE_LABELS, "2026-12-07T17:30:00Z"), managed("rewriter", TEMPLATE_MARK),
                   managed("botsecret-operator", TEMPLATE_MARK))
    assert rival_manager(body, DEPLOYMENT, MARK, "botsecret-operator") == "rewriter"


def test_without_an_owner_of_the_mark_the_owner_of_the_template_is_named_the_latest_first() -> None:
    body = body_of(managed("kubectl-create", TEMPLATE_LABELS, "2026-12-07T16:00:00Z"),
                   managed("gitops", TEMPLATE_LABELS, "2026-12-07T17:30:00Z"),
                   managed("kube-controller-manager", {"f:status": {}}, subresource="status"),
                   managed("scaler", {"f:spec": {"f:replicas": {}}}, "2026-12-07T17:50:00Z"))
    assert rival_manager(body, DEPLOYMENT, MARK, "botsecret-operator") == "gitops"
    assert rival_manager(body_of(managed("scaler", {"f:spec": {"f:replicas": {}}})), DEPLOYMENT, MARK, "x") is None


def test_for_an_argo_rollout_the_owners_of_its_annotations_count() -> None:
    body = body_of(managed("gitops", {"f:metadata": {"f:annotations": {"f:team": {}}}}),
                   managed("other", TEMPLATE_LABELS, "2026-12-07T18:00:00Z"))
    assert rival_manager(body, ARGO, MARK, "botsecret-operator") == "gitops"
