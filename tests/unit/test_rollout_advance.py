"""botsecret.rollout.advance: the restart state machine, over a fake workload store (pure logic)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from botsecret.fingerprint import data_hmac
from botsecret.reconcile import SyncResult
from botsecret.rollout import RESTART_ANNOTATION, Workload, advance, key_id
from botsecret.spec import RolloutTarget, parse_spec
from botsecret.values import SecretValue

KEY = b"k" * 32
T0 = datetime.datetime(2026, 11, 28, 12, 0, 0, tzinfo=datetime.UTC)


class FakeWorkloads:
    """Stands in for the apiserver: one Deployment reading the whole Secret."""

    def __init__(self, *, paused: bool = False, annotation: str | None = None) -> None:
        self.restarts: list[str] = []
        self.paused = paused
        self.annotation = annotation
        self.status: dict[str, Any] = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": 0,
                                       "availableReplicas": 0}

    def resolve(self, targets: Sequence[RolloutTarget]) -> tuple[list[Workload], list[str]]:
        template: dict[str, Any] = {"spec": {"containers": [{"envFrom": [{"secretRef": {"name": "bot"}}]}]}}
        if self.annotation:
            template["metadata"] = {"annotations": {RESTART_ANNOTATION: self.annotation}}
        body = {"metadata": {"generation": 1}, "spec": {"replicas": 0, "paused": self.paused, "template": template},
                "status": self.status}
        return [Workload("Deployment", "app", body, named=True)], []

    def restart(self, workload: Workload, value: str) -> None:
        self.restarts.append(value)
        self.annotation = value


def result(value: str, *, ready: bool = True, debounce: str = "10s") -> SyncResult:
    spec = parse_spec({"sources": [{"name": "a", "storeRef": {"name": "store"}}],
                       "data": [{"key": "K", "remoteRef": {"name": "n"}}],
                       "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": debounce}},
                      name="bot")
    data = {"K": SecretValue(value.encode())}
    return SyncResult(ready, "Synced" if ready else "ProviderError", "", "bot", data_hmac=data_hmac(KEY, data),
                      changed_keys=("K",), spec=spec, data=data)


def status_after(outcome: Any) -> dict[str, Any]:
    return {"rollout": outcome.entries, "pendingRollout": outcome.pending, "hmacKeyId": outcome.key_id}


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_first_sight_records_a_baseline_and_restarts_nothing() -> None:
    store = FakeWorkloads()
    outcome = advance(store, KEY, {}, result("v1"), T0)  # type: ignore[arg-type]
    assert store.restarts == []
    assert outcome.entries[0]["dataHMAC"] and outcome.condition["reason"] == "RolloutComplete"


def test_a_change_restarts_once_after_the_debounce() -> None:
    store = FakeWorkloads()
    status = status_after(advance(store, KEY, {}, result("v1"), T0))  # type: ignore[arg-type]
    waiting = advance(store, KEY, status, result("v2"), at(1))  # type: ignore[arg-type]
    assert store.restarts == [] and waiting.condition["reason"] == "Debouncing" and waiting.wake_in == 10
    done = advance(store, KEY, status_after(waiting), result("v2"), at(11))  # type: ignore[arg-type]
    assert len(store.restarts) == 1 and done.pending is None
    again = advance(store, KEY, status_after(done), result("v2"), at(20))  # type: ignore[arg-type]
    assert len(store.restarts) == 1 and again.entries[0]["phase"] == "Complete"


def test_a_failed_sync_keeps_a_pending_restart() -> None:
    store = FakeWorkloads()
    status = status_after(advance(store, KEY, {}, result("v1"), T0))  # type: ignore[arg-type]
    pending = status_after(advance(store, KEY, status, result("v2"), at(1)))  # type: ignore[arg-type]
    failed = advance(store, KEY, pending, result("v2", ready=False), at(5))  # type: ignore[arg-type]
    assert failed.pending == pending["pendingRollout"]
    advance(store, KEY, status_after(failed), result("v2"), at(12))  # type: ignore[arg-type]
    assert len(store.restarts) == 1


def test_data_that_keeps_changing_is_restarted_for_within_the_cap() -> None:
    store = FakeWorkloads()
    status = status_after(advance(store, KEY, {}, result("v1", debounce="10s"), T0))  # type: ignore[arg-type]
    second = 0
    for second in range(1, 70, 5):  # a change every 5 s, never 10 s of quiet
        status = status_after(advance(store, KEY, status, result(f"v{second}"), at(second)))  # type: ignore[arg-type]
        if store.restarts:
            break
    assert store.restarts and second <= 66, "the first change was over a minute ago"


def test_a_new_hmac_key_takes_a_new_baseline_instead_of_restarting() -> None:
    store = FakeWorkloads()
    status = status_after(advance(store, KEY, {}, result("v1"), T0))  # type: ignore[arg-type]
    other_key = b"o" * 32
    outcome = advance(store, other_key, status, result("v1"), at(30))  # type: ignore[arg-type]
    assert store.restarts == []
    assert outcome.key_id == key_id(other_key) != status["hmacKeyId"]


def test_a_restart_waits_while_the_previous_rollout_is_in_progress() -> None:
    store = FakeWorkloads()
    status = status_after(advance(store, KEY, {}, result("v1", debounce="0s"), T0))  # type: ignore[arg-type]
    status = status_after(advance(store, KEY, status, result("v2", debounce="0s"), at(1)))  # type: ignore[arg-type]
    assert len(store.restarts) == 1
    store.status = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
    held = advance(store, KEY, status, result("v3", debounce="0s"), at(5))  # type: ignore[arg-type]
    assert len(store.restarts) == 1 and held.pending is not None
    store.status = {"observedGeneration": 1, "replicas": 0, "updatedReplicas": 0, "availableReplicas": 0}
    advance(store, KEY, status_after(held), result("v3", debounce="0s"), at(9))  # type: ignore[arg-type]
    assert len(store.restarts) == 2


def test_a_paused_deployment_is_not_patched_until_resumed() -> None:
    store = FakeWorkloads(paused=True)
    status = status_after(advance(store, KEY, {}, result("v1", debounce="0s"), T0))  # type: ignore[arg-type]
    paused = advance(store, KEY, status, result("v2", debounce="0s"), at(1))  # type: ignore[arg-type]
    assert store.restarts == [] and paused.condition["reason"] == "Paused"
    store.paused = False
    advance(store, KEY, status_after(paused), result("v2", debounce="0s"), at(20))  # type: ignore[arg-type]
    assert len(store.restarts) == 1


def test_someone_elses_annotation_is_not_a_baseline() -> None:
    store = FakeWorkloads(annotation="hmac-sha256:written-for-another-botsecret")
    advance(store, KEY, {}, result("v1"), T0)  # type: ignore[arg-type]
    assert store.restarts == []


def test_a_restart_asks_to_be_woken_to_follow_the_rollout() -> None:
    store = FakeWorkloads()
    status = status_after(advance(store, KEY, {}, result("v1", debounce="0s"), T0))  # type: ignore[arg-type]
    outcome = advance(store, KEY, status, result("v2", debounce="0s"), at(1))  # type: ignore[arg-type]
    assert len(store.restarts) == 1 and outcome.wake_in is not None and outcome.wake_in <= 2
