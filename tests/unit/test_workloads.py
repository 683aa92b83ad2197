"""botsecret.workloads: which keys a pod template reads, and how far a rollout got."""

from __future__ import annotations

from typing import Any

import pytest

from botsecret.workloads import EVERY_KEY, consumed_keys, referenced_keys, restart_on, rollout_phase

KEYS = ("A", "B", "C")
ALL = frozenset(KEYS)


def template(containers: list[dict[str, Any]] | None = None, volumes: list[dict[str, Any]] | None = None,
             init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [{"name": "bot", "image": "bot"}]}
    if volumes is not None:
        spec["volumes"] = volumes
    if init is not None:
        spec["initContainers"] = init
    return {"metadata": {"labels": {"app": "bot"}}, "spec": spec}


def env_ref(secret: str, key: str, name: str = "VAR") -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


# referenced_keys: what the template names, whatever the Secret holds


def test_references_are_named_as_the_template_names_them_even_keys_the_secret_lacks() -> None:
    pod = template([{"name": "bot", "env": [env_ref("bot", "A"), env_ref("bot", "LATER")]}],
                   volumes=[{"name": "v", "secret": {"secretName": "bot", "items": [{"key": "C", "path": "c"}]}}])
    assert referenced_keys(pod, "bot") == frozenset({"A", "LATER", "C"})
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"A", "C"})


def test_a_whole_secret_is_referenced_as_every_key() -> None:
    pod = template([{"name": "bot", "env": [env_ref("bot", "A")], "envFrom": [{"secretRef": {"name": "bot"}}]}])
    assert referenced_keys(pod, "bot") == frozenset({EVERY_KEY})
    assert referenced_keys(template(volumes=[{"name": "v", "secret": {"secretName": "bot"}}]), "bot") == \
        frozenset({EVERY_KEY})


def test_another_secret_is_no_reference() -> None:
    assert referenced_keys(template([{"name": "bot", "env": [env_ref("other", "A")]}]), "bot") is None


# consumed_keys


def test_secret_key_refs_only_count_their_keys() -> None:
    pod = template([{"name": "bot", "env": [env_ref("bot", "A", "X"), {"name": "PLAIN", "value": "v"},
                                            env_ref("bot", "C", "Y")]}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"A", "C"})


def test_keys_across_containers_are_united() -> None:
    pod = template([{"name": "a", "env": [env_ref("bot", "A")]}, {"name": "b", "env": [env_ref("bot", "B")]}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"A", "B"})


def test_env_from_reads_every_key() -> None:
    pod = template([{"name": "bot", "envFrom": [{"secretRef": {"name": "bot"}}], "env": [env_ref("bot", "A")]}])
    assert consumed_keys(pod, "bot", KEYS) == ALL


def test_env_from_with_prefix_reads_every_key() -> None:
    pod = template([{"name": "bot", "envFrom": [{"prefix": "BOT_", "secretRef": {"name": "bot", "optional": True}}]}])
    assert consumed_keys(pod, "bot", KEYS) == ALL


def test_whole_secret_volume_reads_every_key() -> None:
    pod = template(volumes=[{"name": "creds", "secret": {"secretName": "bot"}}])
    assert consumed_keys(pod, "bot", KEYS) == ALL


def test_volume_with_empty_items_reads_every_key() -> None:
    pod = template(volumes=[{"name": "creds", "secret": {"secretName": "bot", "items": []}}])
    assert consumed_keys(pod, "bot", KEYS) == ALL


def test_volume_with_items_reads_those_keys() -> None:
    pod = template(volumes=[{"name": "creds", "secret": {"secretName": "bot",
                                                          "items": [{"key": "B", "path": "b.txt"}]}}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"B"})


def test_items_and_env_refs_add_up() -> None:
    pod = template([{"name": "bot", "env": [env_ref("bot", "A")]}],
                   volumes=[{"name": "creds", "secret": {"secretName": "bot", "items": [{"key": "C", "path": "c"}]}}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"A", "C"})


def test_projected_volume_whole_secret() -> None:
    pod = template(volumes=[{"name": "all", "projected": {"sources": [
        {"configMap": {"name": "bot"}}, {"secret": {"name": "bot"}}]}}])
    assert consumed_keys(pod, "bot", KEYS) == ALL


def test_projected_volume_with_items() -> None:
    pod = template(volumes=[{"name": "all", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}},
        {"secret": {"name": "other"}},
        {"secret": {"name": "bot", "items": [{"key": "A", "path": "a"}, {"key": "C", "path": "c"}]}}]}}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"A", "C"})


def test_init_containers_count() -> None:
    pod = template(init=[{"name": "init", "env": [env_ref("bot", "B")]}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"B"})
    pod = template(init=[{"name": "init", "envFrom": [{"secretRef": {"name": "bot"}}]}])
    assert consumed_keys(pod, "bot", KEYS) == ALL


def test_references_to_other_secrets_are_ignored() -> None:
    pod = template(
        [{"name": "bot", "env": [env_ref("other", "A"), {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "bot", "key": "A"}}}],
          "envFrom": [{"secretRef": {"name": "other"}}, {"configMapRef": {"name": "bot"}}]}],
        volumes=[{"name": "x", "secret": {"secretName": "other"}}, {"name": "cm", "configMap": {"name": "bot"}},
                 {"name": "p", "projected": {"sources": [{"secret": {"name": "other"}}, {"configMap": {"name": "bot"}}]}},
                 {"name": "tmp", "emptyDir": {}}],
        init=[{"name": "init", "env": [env_ref("other", "B")]}],
    )
    assert consumed_keys(pod, "bot", KEYS) is None


def test_template_without_spec_reads_nothing() -> None:
    assert consumed_keys({}, "bot", KEYS) is None
    assert consumed_keys({"spec": {}}, "bot", KEYS) is None


def test_keys_not_in_the_secret_are_dropped() -> None:
    pod = template([{"name": "bot", "env": [env_ref("bot", "A"), env_ref("bot", "GONE")]}])
    assert consumed_keys(pod, "bot", KEYS) == frozenset({"A"})


def test_keys_may_be_any_iterable() -> None:
    pod = template([{"name": "bot", "envFrom": [{"secretRef": {"name": "bot"}}]}])
    assert consumed_keys(pod, "bot", {"A": object(), "B": object()}) == frozenset({"A", "B"})
    assert consumed_keys(pod, "bot", iter(["C"])) == frozenset({"C"})


# rollout_phase


def workload(status: dict[str, Any], *, replicas: int | None = 3, generation: int = 2, observed: int | None = 2,
             spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A workload body: ``replicas`` is spec.replicas; ``status`` is the status without observedGeneration."""
    body_spec: dict[str, Any] = dict(spec or {})
    if replicas is not None:
        body_spec["replicas"] = replicas
    body_status = dict(status)
    if observed is not None:
        body_status["observedGeneration"] = observed
    return {"metadata": {"name": "bot", "generation": generation}, "spec": body_spec, "status": body_status}


DONE = {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
PDE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


# Deployment


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_waits_for_the_controller_to_observe_the_new_template(kind: str) -> None:
    status = {**DONE, "readyReplicas": 3, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
              "numberAvailable": 3}
    phase, message = rollout_phase(kind, workload(status, generation=3, observed=2))
    assert phase == "Progressing"
    assert "observe" in message
    assert rollout_phase(kind, workload(status, generation=3, observed=3))[0] == "Complete"


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_missing_observed_generation_is_progressing(kind: str) -> None:
    assert rollout_phase(kind, workload({}, generation=1, observed=None))[0] == "Progressing"


def test_deployment_progress_deadline_exceeded_fails() -> None:
    status = {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
              "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}, PDE]}
    assert rollout_phase("Deployment", workload(status)) == ("Failed", "progress deadline exceeded")


def test_deployment_other_progressing_reasons_do_not_fail() -> None:
    status = {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
              "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
                             {"type": "Available", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
    assert rollout_phase("Deployment", workload(status))[0] == "Progressing"


def test_deployment_deadline_of_the_old_generation_is_not_judged() -> None:
    status = {**DONE, "conditions": [PDE]}
    assert rollout_phase("Deployment", workload(status, generation=3, observed=2))[0] == "Progressing"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}, "1 of 3 replicas updated"),
        ({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}, "1 old replicas pending termination"),
        ({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}, "2 of 3 updated replicas available"),
        ({}, "0 of 3 replicas updated"),
    ],
)
def test_deployment_progressing_counts(status: dict[str, int], message: str) -> None:
    assert rollout_phase("Deployment", workload(status)) == ("Progressing", message)


def test_deployment_complete() -> None:
    assert rollout_phase("Deployment", workload(DONE)) == ("Complete", "3 replicas updated and available")


def test_deployment_zero_replicas_is_complete() -> None:
    assert rollout_phase("Deployment", workload({}, replicas=0))[0] == "Complete"


def test_deployment_replicas_default_to_one() -> None:
    assert rollout_phase("Deployment", workload({}, replicas=None)) == ("Progressing", "0 of 1 replicas updated")
    done = {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    assert rollout_phase("Deployment", workload(done, replicas=None))[0] == "Complete"


# StatefulSet

STS_DONE = {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "currentRevision": "bot-2",
            "updateRevision": "bot-2"}


def test_statefulset_complete() -> None:
    assert rollout_phase("StatefulSet", workload(STS_DONE)) == ("Complete", "3 replicas updated and ready")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({**STS_DONE, "updatedReplicas": 1, "currentRevision": "bot-1"}, "1 of 3 replicas updated"),
        ({**STS_DONE, "readyReplicas": 2, "currentRevision": "bot-1"}, "2 of 3 replicas ready"),
        ({**STS_DONE, "currentRevision": "bot-1"}, "waiting for the update revision to become current"),
    ],
)
def test_statefulset_progressing(status: dict[str, Any], message: str) -> None:
    assert rollout_phase("StatefulSet", workload(status)) == ("Progressing", message)


def test_statefulset_on_delete_is_complete_at_once() -> None:
    status = {**STS_DONE, "updatedReplicas": 0, "currentRevision": "bot-1"}
    phase, _ = rollout_phase("StatefulSet", workload(status, spec={"updateStrategy": {"type": "OnDelete"}}))
    assert phase == "Complete"


def test_statefulset_zero_replicas_is_complete() -> None:
    status = {"currentRevision": "bot-1", "updateRevision": "bot-2"}
    assert rollout_phase("StatefulSet", workload(status, replicas=0))[0] == "Complete"


def test_statefulset_replicas_default_to_one() -> None:
    assert rollout_phase("StatefulSet", workload({}, replicas=None)) == ("Progressing", "0 of 1 replicas updated")


# DaemonSet

DS_DONE = {"desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 4}


def test_daemonset_complete() -> None:
    assert rollout_phase("DaemonSet", workload(DS_DONE, replicas=None)) == ("Complete", "4 pods updated and available")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({**DS_DONE, "updatedNumberScheduled": 2}, "2 of 4 pods updated"),
        ({**DS_DONE, "numberAvailable": 3}, "3 of 4 pods available"),
    ],
)
def test_daemonset_progressing(status: dict[str, Any], message: str) -> None:
    assert rollout_phase("DaemonSet", workload(status, replicas=None)) == ("Progressing", message)


def test_daemonset_on_no_node_is_complete() -> None:
    assert rollout_phase("DaemonSet", workload({}, replicas=None))[0] == "Complete"


# Bugs found while writing these tests.


def test_statefulset_partitioned_rollout_completes() -> None:
    status = {"replicas": 3, "updatedReplicas": 1, "readyReplicas": 3, "currentRevision": "bot-1",
              "updateRevision": "bot-2"}
    strategy = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}
    assert rollout_phase("StatefulSet", workload(status, spec=strategy))[0] == "Complete"


def test_daemonset_on_delete_is_complete_at_once() -> None:
    status = {**DS_DONE, "updatedNumberScheduled": 0}
    phase, _ = rollout_phase("DaemonSet", workload(status, replicas=None, spec={"updateStrategy": {"type": "OnDelete"}}))
    assert phase == "Complete"


@pytest.mark.parametrize(("value", "expected"), [
    ("bot-env", "named"), ("other, bot-env ,x", "named"), ("auto", "auto"), ("other,auto", "auto"),
    ("other", None), ("", None), ("bot-env-2", None),
])
def test_restart_on(value: str, expected: str | None) -> None:
    assert restart_on({"botsecret.dev/restart-on": value}, "bot-env") == expected


def test_restart_on_without_the_annotation() -> None:
    assert restart_on(None, "bot-env") is None and restart_on({"reloader.stakater.com/auto": "true"}, "x") is None
