"""Versioned Secrets and rollback: names, references, the retarget patch, GC choice, the spec's
fields, and the rollout state machine under strategy Versioned (pure logic, fake workloads)."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Sequence
from typing import Any

import pytest

from botsecret.fingerprint import data_hmac
from botsecret.reconcile import SyncResult
from botsecret.rollout import Workload, advance, restart_annotation
from botsecret.spec import InvalidSpec, RolloutTarget, parse_spec
from botsecret.values import SecretValue
from botsecret.versioned import VersionPlan
from botsecret.versions import (
    collectable,
    is_version_of,
    pod_restarts,
    references,
    retarget_patch,
    version_name,
)

pytestmark = pytest.mark.revert

KEY = b"k" * 32
T0 = datetime.datetime(2026, 12, 7, 12, 0, 0, tzinfo=datetime.UTC)
MARK = restart_annotation("bot")


def apply_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 for the four operations the operator sends; a failed test fails the whole patch."""
    out = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if op["op"] == "test":
            if node[key] != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif op["op"] in ("replace", "add"):
            if op["op"] == "replace" and (key not in node if isinstance(node, dict) else False):
                raise ValueError(f"nothing to replace at {op['path']}")
            node[key] = op["value"]
        elif op["op"] == "remove":
            del node[key]
    return out


def template(name: str, *, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "a"}, **({"annotations": annotations} if annotations else {})},
        "spec": {
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": name}}]}],
            "containers": [{"name": "bot", "env": [
                {"name": "X", "valueFrom": {"secretKeyRef": {"name": name, "key": "X"}}},
                {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "unrelated", "key": "Y"}}}]}],
            "volumes": [{"name": "files", "secret": {"secretName": name}},
                        {"name": "mixed", "projected": {"sources": [{"secret": {"name": name}},
                                                                    {"configMap": {"name": "cm"}}]}}],
        },
    }


def test_version_names_are_the_target_and_ten_hex_of_the_keyed_hmac() -> None:
    mac = data_hmac(KEY, {"K": SecretValue(b"v")})
    name = version_name("bot-env", mac)
    assert name == "bot-env-" + mac.split(":")[1][:10]
    assert is_version_of(name, "bot-env") and is_version_of("bot-env", "bot-env")
    assert not is_version_of("bot-env-other", "bot-env") and not is_version_of("bot-envy-0123456789", "bot-env")
    long = "a" * 253
    assert len(version_name(long, mac)) == 253 and is_version_of(version_name(long, mac), long)


def test_every_reference_kind_is_found_and_moved_with_a_test_each() -> None:
    tpl = template("bot-env-aaaaaaaaaa")
    found = references(tpl["spec"], "bot-env")
    assert len(found) == 4  # initContainer envFrom, secretKeyRef, volume, projected source; not "unrelated"
    ops = retarget_patch(tpl, "bot-env", "bot-env-bbbbbbbbbb", annotation=MARK, mark="hmac-sha256:new",
                         base="")
    assert sum(op["op"] == "test" for op in ops) == 4
    moved = apply_patch(tpl, ops)
    assert {r.name for r in references(moved["spec"], "bot-env")} == {"bot-env-bbbbbbbbbb"}
    assert moved["metadata"]["annotations"][MARK] == "hmac-sha256:new"
    assert moved["spec"]["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "unrelated"


def test_a_template_edited_since_it_was_read_fails_the_whole_patch() -> None:
    read = template("bot-env-aaaaaaaaaa")
    ops = retarget_patch(read, "bot-env", "bot-env-bbbbbbbbbb", annotation=MARK, mark="m", base="")
    edited = copy.deepcopy(read)
    edited["spec"]["volumes"][0]["secret"]["secretName"] = "bot-env-cccccccccc"
    with pytest.raises(ValueError, match="test failed"):
        apply_patch(edited, ops)


def test_rolling_back_restores_the_previous_mark_or_removes_it() -> None:
    tpl = template("bot-env-aaaaaaaaaa", annotations={MARK: "old", "other": "x"})
    ops = retarget_patch(tpl, "bot-env", "bot-env-bbbbbbbbbb", annotation=MARK, mark="new", base="")
    moved = apply_patch(tpl, ops)
    back = apply_patch(moved, retarget_patch(moved, "bot-env", "bot-env-aaaaaaaaaa", annotation=MARK, mark="old",
                                             base=""))
    assert back == tpl  # equal to the old ReplicaSet's template again
    bare = template("bot-env")
    there = apply_patch(bare, retarget_patch(bare, "bot-env", "bot-env-bbbbbbbbbb", annotation=MARK, mark="n",
                                             base=""))
    assert apply_patch(there, retarget_patch(there, "bot-env", "bot-env", annotation=MARK, mark=None,
                                             base="")) == bare


def test_restarts_are_counted_only_on_pods_of_the_version() -> None:
    def pod(name: str, secret: str, restarts: int) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": template(secret)["spec"],
                "status": {"containerStatuses": [{"name": "bot", "restartCount": restarts}]}}
    pods = [pod("old", "bot-env-aaaaaaaaaa", 9), pod("new", "bot-env-bbbbbbbbbb", 2)]
    assert pod_restarts(pods, "bot-env-bbbbbbbbbb") == (2, "pod new container bot")
    assert pod_restarts(pods, "bot-env-cccccccccc") == (0, None)


def test_gc_keeps_the_newest_k_and_every_referenced_one() -> None:
    versions = [{"secretName": f"v{i}", "createdAt": f"2026-12-07T12:00:0{i}Z"} for i in range(5)]
    assert collectable(versions, 2, set()) == ["v2", "v1", "v0"]
    assert collectable(versions, 2, {"v1"}) == ["v2", "v0"]
    assert collectable(versions[:2], 3, set()) == []


def spec(**rollout: Any) -> Any:
    return parse_spec({"sources": [{"name": "a", "storeRef": {"name": "s"}}], "data": [{"key": "K", "remoteRef": {"name": "k"}}],
                       "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], **rollout}}, name="bot")


def test_the_spec_defaults_to_in_place_and_names_each_bad_field() -> None:
    policy = spec().rollout_policy
    assert (policy.strategy, policy.failure_policy, policy.keep_versions, policy.max_restarts) == \
        ("InPlace", "Rollback", 3, None)
    policy = spec(strategy="Versioned", failurePolicy="Hold", keepVersions=5, maxRestarts=2).rollout_policy
    assert policy.versioned and policy.failure_policy == "Hold" and policy.keep_versions == 5
    for field, value in (("strategy", "Blue"), ("failurePolicy", "Pray"), ("keepVersions", 1),
                         ("keepVersions", "3"), ("maxRestarts", 0), ("maxRestarts", True)):
        with pytest.raises(InvalidSpec) as error:
            spec(**{field: value})
        assert error.value.field == f"spec.rollout.{field}"


class FakeDeployment:
    """One Deployment 'app' reading the Secret's versions through envFrom; applies JSON patches."""

    def __init__(self, secret: str) -> None:
        self.template: dict[str, Any] = {"metadata": {"labels": {"app": "app"}},
                                         "spec": {"containers": [{"name": "bot", "envFrom": [{"secretRef": {"name": secret}}]}]}}
        self.status: dict[str, Any] = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                                       "availableReplicas": 3}
        self.patches: list[list[dict[str, Any]]] = []
        self.pod_list: list[dict[str, Any]] = []

    def opted_in(self, secret_name: str) -> list[Workload]:
        return []

    def resolve(self, targets: Sequence[RolloutTarget]) -> tuple[list[Workload], list[str]]:
        body = {"metadata": {"generation": 1}, "spec": {"replicas": 3, "template": copy.deepcopy(self.template)},
                "status": self.status}
        return [Workload("Deployment", "app", body, named=True)], []

    def restart(self, workload: Workload, annotation: str, value: str) -> None:
        raise AssertionError("Versioned never restarts in place")

    def json_patch(self, kind: str, name: str, ops: list[dict[str, Any]]) -> None:
        self.patches.append(ops)
        self.template = apply_patch({"spec": {"template": self.template}}, ops)["spec"]["template"]

    def pods(self) -> list[dict[str, Any]]:
        return self.pod_list

    @property
    def secret(self) -> str:
        return str(self.template["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"])


def synced(value: str, **rollout: Any) -> tuple[SyncResult, VersionPlan]:
    data = {"K": SecretValue(value.encode())}
    mac = data_hmac(KEY, data)
    result = SyncResult(True, "Synced", "", "bot-env", data_hmac=mac, changed_keys=("K",),
                        spec=spec(strategy="Versioned", debounce="0s", **rollout), data=data)
    return result, VersionPlan("bot-env", version_name("bot-env", mac))


def step(fake: FakeDeployment, status: dict[str, Any], value: str, at: float, retry: bool = False,
         **rollout: Any) -> dict[str, Any]:
    result, plan = synced(value, **rollout)
    plan = VersionPlan(plan.target, plan.current, retry=retry)
    outcome = advance(fake, KEY, status, result, T0 + datetime.timedelta(seconds=at),  # type: ignore[arg-type]
                      botsecret="bot", plan=plan)
    return {"rollout": outcome.entries, "pendingRollout": outcome.pending, "hmacKeyId": outcome.key_id,
            "condition": outcome.condition, "events": outcome.events}


def test_a_failed_versioned_rollout_is_rolled_back_and_not_retried_until_asked() -> None:
    good = synced("good")[1].current
    fake = FakeDeployment(good)
    status = step(fake, {}, "good", 0)
    assert status["rollout"][0]["secretName"] == good and not fake.patches  # a baseline, no restart

    status = step(fake, status, "bad", 10)
    bad = synced("bad")[1].current
    assert fake.secret == bad and status["rollout"][0]["previousSecretName"] == good
    fake.status = {"observedGeneration": 1, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                   "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}
    status = step(fake, status, "bad", 20)
    entry = status["rollout"][0]
    assert fake.secret == good and entry["phase"] == "RolledBack" and entry["rejectedSecretName"] == bad
    assert status["condition"]["reason"] == "RolledBack" and "Deployment/app" in status["condition"]["message"]
    assert [e[:2] for e in status["events"]] == [("Warning", "RolledBack")] and "keys: K" in status["events"][0][2]
    assert restart_annotation("bot") not in fake.template["metadata"].get(
        "annotations", {}), "the template is the old one again, mark included"

    fake.status = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    patches = len(fake.patches)
    status = step(fake, status, "bad", 30)
    assert len(fake.patches) == patches and fake.secret == good, "the same bad data is not tried again"

    status = step(fake, status, "bad", 40, retry=True)
    assert fake.secret == bad and status["rollout"][0]["phase"] == "Progressing", "--retry rolls it out again"


def test_max_restarts_of_the_new_pods_fail_the_rollout_and_hold_keeps_it() -> None:
    good = synced("good")[1].current
    fake = FakeDeployment(good)
    status = step(fake, {}, "good", 0, maxRestarts=3, failurePolicy="Hold")
    status = step(fake, status, "bad", 10, maxRestarts=3, failurePolicy="Hold")
    bad = fake.secret
    fake.status = {"observedGeneration": 1, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}
    fake.pod_list = [{"metadata": {"name": "p"}, "spec": fake.template["spec"],
                      "status": {"containerStatuses": [{"name": "bot", "restartCount": 3}]}}]
    status = step(fake, status, "bad", 20, maxRestarts=3, failurePolicy="Hold")
    entry = status["rollout"][0]
    assert entry["phase"] == "Failed" and "restarted 3 times" in entry["message"]
    assert fake.secret == bad, "Hold leaves the template as it is"


def test_a_failed_rollout_is_rolled_back_even_while_the_provider_is_down() -> None:
    good = synced("good")[1].current
    fake = FakeDeployment(good)
    status = step(fake, {}, "good", 0)
    status = step(fake, status, "bad", 10)
    fake.status = {"observedGeneration": 1, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                   "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}
    failed = SyncResult(False, "ProviderError", "source 'a': unavailable", "bot-env", spec=synced("x")[0].spec)
    outcome = advance(fake, KEY, status, failed, T0 + datetime.timedelta(seconds=20),  # type: ignore[arg-type]
                      botsecret="bot", plan=VersionPlan("bot-env", ""))
    assert fake.secret == good and outcome.entries[0]["phase"] == "RolledBack"


def test_a_completed_rollout_no_longer_holds_its_previous_version() -> None:
    good = synced("good")[1].current
    fake = FakeDeployment(good)
    status = step(fake, {}, "good", 0)
    status = step(fake, status, "new", 10)
    assert status["rollout"][0]["previousSecretName"] == good
    fake.status = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    status = step(fake, status, "new", 20)
    assert status["rollout"][0]["phase"] == "Complete" and "previousSecretName" not in status["rollout"][0]


def test_gc_goes_by_the_order_versions_were_made_not_by_their_second() -> None:
    versions = [{"secretName": name, "createdAt": "2026-12-07T12:00:00Z"} for name in ("v-z", "v-b", "v-a")]
    assert collectable(versions, 2, set()) == ["v-z"]
