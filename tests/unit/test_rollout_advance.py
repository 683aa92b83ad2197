"""botsecret.rollout.advance: the restart state machine, over a fake workload store (pure logic)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import Any

import pytest

from botsecret.fingerprint import data_hmac
from botsecret.reconcile import SyncResult
from botsecret.rollout import LEGACY_RESTART_ANNOTATION, Workload, advance, key_id, restart_annotation, restart_patch
from botsecret.spec import RolloutTarget, parse_spec
from botsecret.values import SecretValue
from botsecret.workload_api import RestartRefused, Unresolved

KEY = b"k" * 32
T0 = datetime.datetime(2026, 11, 28, 12, 0, 0, tzinfo=datetime.UTC)
MARK = restart_annotation("bot")
ENV_FROM: dict[str, Any] = {"envFrom": [{"secretRef": {"name": "bot"}}]}
NOT_READY_STS = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 0, "readyReplicas": 0}


def env_refs(*keys: str) -> dict[str, Any]:
    return {"env": [{"name": k, "valueFrom": {"secretKeyRef": {"name": "bot", "key": k}}} for k in keys]}


class FakeWorkloads:
    """Stands in for the apiserver: one workload (a Deployment reading the whole Secret, unless told
    otherwise), or none when ``exists`` is false."""

    def __init__(self, *, paused: bool = False, annotations: dict[str, str] | None = None, kind: str = "Deployment",
                 container: dict[str, Any] | None = None, exists: bool = True) -> None:
        self.restarts: list[str] = []
        self.paused = paused
        self.annotations = dict(annotations or {})
        self.kind = kind
        self.container = container or ENV_FROM
        self.exists = exists
        self.status: dict[str, Any] = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": 0,
                                       "availableReplicas": 0}
        self.opted: list[Workload] = []  # what opts in through botsecret.dev/restart-on
        self.managed: list[dict[str, Any]] = []  # metadata.managedFields
        self.api_version = "apps/v1"
        self.unresolved: Unresolved | None = None

    def opted_in(self, secret_name: str) -> list[Workload]:
        return list(self.opted)

    @property
    def annotation(self) -> str | None:
        return self.annotations.get(MARK)

    def resolve(self, targets: Sequence[RolloutTarget]) -> tuple[list[Workload], list[Unresolved]]:
        if not self.exists:
            return [], [self.unresolved or Unresolved("TargetNotFound", f"{self.kind}/app")]
        template: dict[str, Any] = {"spec": {"containers": [self.container]}}
        if self.annotations:
            template["metadata"] = {"annotations": dict(self.annotations)}
        body = {"metadata": {"generation": 1, "managedFields": self.managed},
                "spec": {"replicas": self.status.get("replicas", 0), "paused": self.paused, "template": template},
                "status": self.status}
        return [Workload(self.kind, "app", body, named=True, api_version=self.api_version)], []

    def restart(self, workload: Workload, annotation: str, value: str) -> None:
        self.restarts.append(value)
        self.annotations.pop(LEGACY_RESTART_ANNOTATION, None)
        self.annotations[annotation] = value


def result(value: str, *, ready: bool = True, debounce: str = "10s", extra: dict[str, str] | None = None,
           kind: str = "Deployment", progress_deadline: str | None = None) -> SyncResult:
    values = {"K": value, **(extra or {})}
    target = {"kind": kind, "name": "app"}
    if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        target["apiVersion"] = "example.com/v1"
    rollout: dict[str, Any] = {"targets": [target], "debounce": debounce}
    if progress_deadline is not None:
        rollout["progressDeadline"] = progress_deadline
    spec = parse_spec({"sources": [{"name": "a", "storeRef": {"name": "store"}}],
                       "data": [{"key": k, "remoteRef": {"name": k}} for k in values],
                       "rollout": rollout}, name="bot")
    data = {k: SecretValue(v.encode()) for k, v in values.items()}
    return SyncResult(ready, "Synced" if ready else "ProviderError", "", "bot", data_hmac=data_hmac(KEY, data),
                      changed_keys=tuple(values), spec=spec, data=data)


def step(store: FakeWorkloads, status: dict[str, Any], synced: SyncResult, seconds: float) -> Any:
    return advance(store, KEY, status, synced, at(seconds), botsecret="bot")  # type: ignore[arg-type]


def status_after(outcome: Any) -> dict[str, Any]:
    return {"rollout": outcome.entries, "pendingRollout": outcome.pending, "hmacKeyId": outcome.key_id}


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_first_sight_records_a_baseline_and_restarts_nothing() -> None:
    store = FakeWorkloads()
    outcome = step(store, {}, result("v1"), 0)
    assert store.restarts == []
    assert outcome.entries[0]["dataHMAC"] and outcome.condition["reason"] == "RolloutComplete"


def test_a_change_restarts_once_after_the_debounce() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1"), 0))
    waiting = step(store, status, result("v2"), 1)
    assert store.restarts == [] and waiting.condition["reason"] == "Debouncing" and waiting.wake_in == 10
    done = step(store, status_after(waiting), result("v2"), 11)
    assert len(store.restarts) == 1 and done.pending is None
    again = step(store, status_after(done), result("v2"), 20)
    assert len(store.restarts) == 1 and again.entries[0]["phase"] == "Complete"


def test_a_failed_sync_keeps_a_pending_restart() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1"), 0))
    pending = status_after(step(store, status, result("v2"), 1))
    failed = step(store, pending, result("v2", ready=False), 5)
    assert failed.pending == pending["pendingRollout"]
    step(store, status_after(failed), result("v2"), 12)
    assert len(store.restarts) == 1


def test_data_that_keeps_changing_is_restarted_for_within_the_cap() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="10s"), 0))
    second = 0
    for second in range(1, 70, 5):  # a change every 5 s, never 10 s of quiet
        status = status_after(step(store, status, result(f"v{second}"), second))
        if store.restarts:
            break
    assert store.restarts and second <= 66, "the first change was over a minute ago"


def test_a_new_hmac_key_takes_a_new_baseline_instead_of_restarting() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1"), 0))
    other_key = b"o" * 32
    outcome = advance(store, other_key, status, result("v1"), at(30), botsecret="bot")  # type: ignore[arg-type]
    assert store.restarts == []
    assert outcome.key_id == key_id(other_key) != status["hmacKeyId"]


def test_a_restart_waits_while_the_previous_rollout_is_in_progress() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    status = status_after(step(store, status, result("v2", debounce="0s"), 1))
    assert len(store.restarts) == 1
    store.status = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
    held = step(store, status, result("v3", debounce="0s"), 5)
    assert len(store.restarts) == 1 and held.pending is not None
    assert held.condition["reason"] == "WaitingForRollout" and "Deployment/app" in held.condition["message"]
    store.status = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": 0, "availableReplicas": 0}
    step(store, status_after(held), result("v3", debounce="0s"), 9)
    assert len(store.restarts) == 2


def test_a_paused_deployment_is_not_patched_until_resumed() -> None:
    store = FakeWorkloads(paused=True)
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    paused = step(store, status, result("v2", debounce="0s"), 1)
    assert store.restarts == [] and paused.condition["reason"] == "Paused"
    store.paused = False
    step(store, status_after(paused), result("v2", debounce="0s"), 20)
    assert len(store.restarts) == 1


def test_someone_elses_annotation_is_not_a_baseline() -> None:
    store = FakeWorkloads(annotations={MARK: "hmac-sha256:written-by-hand"})
    step(store, {}, result("v1"), 0)
    assert store.restarts == []


def test_a_restart_asks_to_be_woken_to_follow_the_rollout() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    outcome = step(store, status, result("v2", debounce="0s"), 1)
    assert len(store.restarts) == 1 and outcome.wake_in is not None and outcome.wake_in <= 2


# a stuck rollout


def test_a_stuck_statefulset_is_waited_for_until_the_progress_deadline_then_superseded() -> None:
    store = FakeWorkloads(kind="StatefulSet")
    store.status = dict(NOT_READY_STS)
    synced = {v: result(v, debounce="0s", kind="StatefulSet", progress_deadline="60s") for v in ("v1", "v2", "v3")}
    status = status_after(step(store, {}, synced["v1"], 0))
    status = status_after(step(store, status, synced["v2"], 1))
    assert len(store.restarts) == 1
    held = step(store, status, synced["v3"], 5)
    assert len(store.restarts) == 1
    assert held.condition["reason"] == "WaitingForRollout" and "StatefulSet/app" in held.condition["message"]
    assert held.wake_in is not None and held.wake_in <= 56
    still = step(store, status_after(held), synced["v3"], 60)
    assert len(store.restarts) == 1, "the deadline counts from the restart at 1 s"
    superseded = step(store, status_after(still), synced["v3"], 62)
    assert len(store.restarts) == 2 and superseded.pending is None
    assert any(e[1] == "RolloutFailed" and "progressDeadline" in e[2] for e in superseded.events)
    assert superseded.entries[0]["phase"] == "Progressing" and superseded.entries[0]["dataHMAC"] == store.restarts[1]


def test_without_a_progress_deadline_a_statefulset_waits_ten_minutes() -> None:
    store = FakeWorkloads(kind="StatefulSet")
    store.status = dict(NOT_READY_STS)
    synced = {v: result(v, debounce="0s", kind="StatefulSet") for v in ("v1", "v2")}
    status = status_after(step(store, {}, synced["v1"], 0))
    status = status_after(step(store, status, synced["v2"], 1))
    status = status_after(step(store, status, synced["v2"], 600))
    assert status["rollout"][0]["phase"] == "Progressing"
    failed = step(store, status, synced["v2"], 602)
    assert failed.entries[0]["phase"] == "Failed" and failed.condition["reason"] == "RolloutFailed"


def test_a_failed_rollout_is_looked_at_again_and_turns_complete_after_a_recovery() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    status = status_after(step(store, status, result("v2", debounce="0s"), 1))
    store.status = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0,
                    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
    failed = step(store, status, result("v2", debounce="0s"), 10)
    assert failed.condition["reason"] == "RolloutFailed"
    assert failed.wake_in is not None, "a failed rollout must be looked at again"
    again = step(store, status_after(failed), result("v2", debounce="0s"), 40)
    assert again.condition["reason"] == "RolloutFailed" and again.events == []
    store.status = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": 0, "availableReplicas": 0}
    recovered = step(store, status_after(again), result("v2", debounce="0s"), 70)
    assert recovered.entries[0]["phase"] == "Complete" and recovered.condition["reason"] == "RolloutComplete"
    assert len(store.restarts) == 1


# the set of consumed keys


def test_reading_one_more_key_is_a_new_baseline_not_a_restart() -> None:
    store = FakeWorkloads(container=env_refs("K"))
    status = status_after(step(store, {}, result("v1", debounce="0s", extra={"L": "l1"}), 0))
    assert status["rollout"][0]["consumedKeys"] == ["K"]
    store.container = env_refs("K", "L")  # the user's own edit, rolled out by the user
    status = status_after(step(store, status, result("v1", debounce="0s", extra={"L": "l1"}), 5))
    assert store.restarts == [] and status["pendingRollout"] is None
    assert status["rollout"][0]["consumedKeys"] == ["K", "L"]
    step(store, status, result("v1", debounce="0s", extra={"L": "l2"}), 10)
    assert len(store.restarts) == 1, "L belongs to the baseline now"


def test_a_new_key_of_a_secret_read_whole_restarts() -> None:
    store = FakeWorkloads()  # envFrom: the pods get the new key only from a restart
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    assert status["rollout"][0]["consumedKeys"] == ["*"]
    step(store, status, result("v1", debounce="0s", extra={"NEW": "n"}), 5)
    assert len(store.restarts) == 1


def test_an_entry_from_before_consumed_keys_were_recorded_restarts_nothing() -> None:
    store = FakeWorkloads(container=env_refs("K"))
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    del status["rollout"][0]["consumedKeys"]
    outcome = step(store, status, result("v1", debounce="0s"), 5)
    assert store.restarts == [] and outcome.entries[0]["consumedKeys"] == ["K"]


# one mark per BotSecret


ANNOTATION_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


@pytest.mark.parametrize("name", ["b", "bot", "a" * 49, "a" * 63, "a" * 64, "x." * 126 + "y", "a-" * 126 + "z"])
def test_the_mark_of_any_botsecret_name_is_a_valid_annotation_key(name: str) -> None:
    key = restart_annotation(name)
    prefix, _, local = key.partition("/")
    assert prefix == "restarted-for.botsecret.dev"
    assert len(local) <= 63 and ANNOTATION_NAME.fullmatch(local), key
    if len(name) <= 63:
        assert local == name


def test_long_names_that_share_a_beginning_get_different_marks() -> None:
    assert restart_annotation("a" * 70 + "1") != restart_annotation("a" * 70 + "2")


def test_each_botsecret_writes_its_own_mark() -> None:
    store = FakeWorkloads(annotations={restart_annotation("other"): "hmac-sha256:of-the-other-botsecret"})
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    restarted = step(store, status, result("v2", debounce="0s"), 1)
    assert store.annotations[MARK] == store.restarts[0]
    assert store.annotations[restart_annotation("other")] == "hmac-sha256:of-the-other-botsecret"
    store.status = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
    followed = step(store, status_after(restarted), result("v2", debounce="0s"), 5)
    assert "someone else" not in followed.entries[0]["message"]


def test_the_mark_of_another_botsecret_changing_is_not_a_conflict_but_mine_is() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    status = status_after(step(store, status, result("v2", debounce="0s"), 1))
    store.status = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
    store.annotations[restart_annotation("other")] = "hmac-sha256:other"
    assert "someone else" not in step(store, status, result("v2", debounce="0s"), 5).entries[0]["message"]
    store.annotations[MARK] = "edited-by-hand"
    assert step(store, status, result("v2", debounce="0s"), 5).entries[0]["phase"] == "Conflict"
    # An entry an older version wrote records no mark: only a remark while following.
    del status["rollout"][0]["mark"]
    assert "someone else" in step(store, status, result("v2", debounce="0s"), 5).entries[0]["message"]


def test_upgrading_from_the_single_legacy_mark_restarts_nothing_and_the_next_restart_drops_it() -> None:
    store = FakeWorkloads(annotations={LEGACY_RESTART_ANNOTATION: "hmac-sha256:old"})
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    # The status an older operator left: its baseline, no consumedKeys; the template has the old key only.
    del status["rollout"][0]["consumedKeys"]
    outcome = step(store, status, result("v1", debounce="0s"), 30)
    assert store.restarts == [] and outcome.pending is None
    patch = restart_patch(MARK, "hmac-sha256:new")
    annotations = patch["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {MARK: "hmac-sha256:new", LEGACY_RESTART_ANNOTATION: None}


# targets that do not exist


def test_a_missing_named_target_is_reported_and_looked_for_again() -> None:
    store = FakeWorkloads(exists=False)
    missing = step(store, {}, result("v1"), 0)
    assert missing.condition["status"] == "False" and missing.condition["reason"] == "TargetNotFound"
    assert "Deployment/app" in missing.condition["message"]
    assert missing.wake_in is not None, "a missing target must be looked for again"
    store.exists = True
    found = step(store, status_after(missing), result("v2"), 30)
    assert store.restarts == [] and found.condition["reason"] == "RolloutComplete", "first sight is a baseline"
    step(store, status_after(found), result("v3", debounce="0s"), 40)
    assert len(store.restarts) == 1


def opted_workload(name: str, *, named: bool, container: dict[str, Any]) -> Workload:
    body = {"metadata": {"generation": 1}, "spec": {"replicas": 0, "template": {"spec": {"containers": [container]}}},
            "status": {"observedGeneration": 1}}
    return Workload("Deployment", name, body, named=named)


def test_opted_in_workloads_restart_like_targets_and_auto_only_for_what_they_read() -> None:
    workloads = FakeWorkloads()
    workloads.opted = [opted_workload("auto-reads", named=False, container=ENV_FROM),
                       opted_workload("auto-ignores", named=False, container={"name": "c"}),
                       opted_workload("named-ignores", named=True, container={"name": "c"}),
                       opted_workload("app", named=False, container={"name": "c"})]  # also a target: the target wins
    first = advance(workloads, KEY, {}, result("v1"), T0, botsecret="bot")
    assert [e["name"] for e in first.entries] == ["app", "auto-reads", "named-ignores"]
    status = {"rollout": first.entries, "hmacKeyId": first.key_id}
    later = T0 + datetime.timedelta(seconds=60)
    second = advance(workloads, KEY, status, result("v2", debounce="1s"), later, botsecret="bot")
    assert second.pending is not None  # debounced first
    status = {"rollout": second.entries, "pendingRollout": second.pending, "hmacKeyId": second.key_id}
    third = advance(workloads, KEY, status, result("v2", debounce="1s"), later + datetime.timedelta(seconds=5),
                    botsecret="bot")
    assert sorted(m.split(";")[0] for _, _, m in third.events) == [
        "restarted Deployment/app", "restarted Deployment/auto-reads", "restarted Deployment/named-ignores"]


# another owner of the pod template: RestartConflict


def owner_of_the_template(manager: str) -> dict[str, Any]:
    return {"manager": manager, "operation": "Update", "time": "2026-11-28T11:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:template": {"f:metadata": {"f:labels": {"f:app": {}}}}}}}


def test_a_mark_removed_by_another_manager_is_one_attempt_and_a_restart_conflict() -> None:
    store = FakeWorkloads()
    store.managed = [owner_of_the_template("gitops")]
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    restarted = step(store, status, result("v2", debounce="0s"), 10)
    assert len(store.restarts) == 1 and restarted.entries[0]["mark"] == store.restarts[0]
    store.annotations.pop(MARK)  # the other owner puts its own idea of the template back
    conflict = step(store, status_after(restarted), result("v2", debounce="0s"), 12)
    assert conflict.condition["reason"] == "RestartConflict" and "'gitops'" in conflict.condition["message"]
    assert conflict.entries[0]["phase"] == "Conflict"
    assert [e[:2] for e in conflict.events] == [("Warning", "RestartConflict")]
    status = status_after(conflict)
    for seconds in (20, 30, 40):  # refreshes with the same data: no new attempt, no new event
        later = step(store, status, result("v2", debounce="0s"), seconds)
        assert later.events == [] and later.condition["reason"] == "RestartConflict"
        status = status_after(later)
    assert len(store.restarts) == 1
    # The next change tries once more; with the mark left alone the condition clears.
    again = step(store, status, result("v3", debounce="0s"), 50)
    assert len(store.restarts) == 2 and again.entries[0]["phase"] == "Progressing"
    done = step(store, status_after(again), result("v3", debounce="0s"), 55)
    assert done.entries[0]["phase"] == "Complete" and done.condition["reason"] == "RolloutComplete"


def test_a_mark_rewritten_by_another_manager_names_that_manager() -> None:
    store = FakeWorkloads()
    store.managed = [owner_of_the_template("gitops")]
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    restarted = step(store, status, result("v2", debounce="0s"), 10)
    store.annotations[MARK] = "something-else"
    store.managed.append({"manager": "rewriter", "operation": "Update", "time": "2026-11-28T10:00:00Z",
                          "fieldsV1": {"f:spec": {"f:template": {"f:metadata": {"f:annotations": {f"f:{MARK}": {}}}}}}})
    conflict = step(store, status_after(restarted), result("v2", debounce="0s"), 12)
    assert "'rewriter'" in conflict.condition["message"]


def test_entries_of_older_versions_without_a_recorded_mark_are_never_a_conflict() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    restarted = status_after(step(store, status, result("v2", debounce="0s"), 10))
    del restarted["rollout"][0]["mark"]
    store.annotations.pop(MARK)
    assert step(store, restarted, result("v2", debounce="0s"), 12).condition["reason"] == "RolloutComplete"


def test_a_kind_whose_status_is_not_deployment_like_is_restarted_and_not_followed() -> None:
    store = FakeWorkloads(kind="BotRunner")
    store.status = {}
    store.api_version = "example.com/v1"
    status = status_after(step(store, {}, result("v1", debounce="0s", kind="BotRunner"), 0))
    assert status["rollout"][0]["apiVersion"] == "example.com/v1"
    restarted = step(store, status, result("v2", debounce="0s", kind="BotRunner"), 10)
    assert len(store.restarts) == 1
    later = step(store, status_after(restarted), result("v2", debounce="0s", kind="BotRunner"), 12)
    assert later.entries[0]["phase"] == "Unknown"
    assert later.condition["status"] == "Unknown" and later.condition["reason"] == "NotFollowed"
    assert "BotRunner/app" in later.condition["message"]
    # Not followed is not busy: the next change restarts at once.
    step(store, status_after(later), result("v3", debounce="0s", kind="BotRunner"), 20)
    assert len(store.restarts) == 2


@pytest.mark.parametrize(("reason", "words"), [("Forbidden", "forbidden"), ("KindNotServed", "kind not served")])
def test_a_target_that_cannot_be_read_is_named_in_the_condition(reason: str, words: str) -> None:
    store = FakeWorkloads(exists=False)
    store.unresolved = Unresolved(reason, "Rollout/app", "why")  # type: ignore[arg-type]
    outcome = step(store, {}, result("v1"), 0)
    assert outcome.condition["reason"] == reason
    assert outcome.condition["message"] == f"{words}: Rollout/app (why)"
    assert outcome.wake_in is not None


class RefusingWorkloads(FakeWorkloads):
    """Two workloads; the apiserver refuses the restart patch of the first (its RBAC lacks patch)."""

    def resolve(self, targets: Sequence[RolloutTarget]) -> tuple[list[Workload], list[Unresolved]]:
        found, _ = super().resolve(targets)
        body = found[0].body
        return [Workload("BotRunner", "refused", body, named=True, api_version="example.com/v1"), found[0]], []

    def restart(self, workload: Workload, annotation: str, value: str) -> None:
        if workload.kind == "BotRunner":
            from kubernetes.client.exceptions import ApiException

            raise RestartRefused(ApiException(status=403, reason="Forbidden"), "BotRunner/refused",
                                 "botrunners.example.com")
        super().restart(workload, annotation, value)


def test_a_refused_restart_patch_names_the_workload_and_keeps_the_others_restarting() -> None:
    store = RefusingWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    outcome = step(store, status, result("v2", debounce="0s"), 10)
    assert len(store.restarts) == 1, "the Deployment is restarted all the same"
    assert outcome.condition == {"status": "False", "reason": "RolloutError", "message":
                                 "patching BotRunner/refused failed with HTTP 403 "
                                 "(the operator may not patch botrunners.example.com)"}
    assert outcome.pending is not None and outcome.wake_in is not None, "still due: tried again"
    refused = next(e for e in outcome.entries if e["kind"] == "BotRunner")
    assert "startedAt" not in refused and refused["dataHMAC"] == status["rollout"][0]["dataHMAC"]


def test_a_new_baseline_after_a_restart_is_not_taken_for_a_conflict() -> None:
    store = FakeWorkloads(container=env_refs("K"))
    status = status_after(step(store, {}, result("v1", debounce="0s"), 0))
    restarted = status_after(step(store, status, result("v2", debounce="0s"), 10))
    # The workload was edited to read another key too, by a tool that also dropped our mark.
    store.container = env_refs("K", "E")
    store.annotations.pop(MARK)
    outcome = step(store, restarted, result("v2", debounce="0s", extra={"E": "e"}), 20)
    assert outcome.entries[0]["phase"] != "Conflict" and outcome.condition["reason"] != "RestartConflict"
    assert store.restarts == [restarted["rollout"][0]["mark"]], "a new baseline, not a restart"
