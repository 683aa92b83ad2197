"""End to end on a real node: a rotation to a credential the bot refuses is rolled back by the
operator (strategy Versioned) while the bot keeps serving; the next good rotation goes out."""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_versions import VersionedBot, template_secret
from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value
from tests.harness.node import Node
from tests.harness.node_fixtures import (
    bot_container,
    bot_digests,
    digest,
    pod_logs,
    wait_for_bot_digests,
    wait_for_deployment_pods,
)
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.revert, pytest.mark.node]

KEY = "X_API_KEY"
REJECT = "bsvleak-bad"  # the readiness probe refuses a key starting with this
REPLICAS, MAX_UNAVAILABLE = 3, 1
FILE = f"/etc/bot/{KEY}"


def bot_app(kube: Kube, namespace: str, node: Node, version: str) -> None:
    """3 bots reading the version's X_API_KEY through envFrom and as a file, ready only when it is good."""
    container = bot_container(node, keys=[KEY], files=[FILE], interval=1, check_key=KEY, reject_prefix=REJECT)
    container["envFrom"] = [{"secretRef": {"name": version}}]
    container["volumeMounts"] = [{"name": "creds", "mountPath": "/etc/bot", "readOnly": True}]
    kube.apps.create_namespaced_deployment(namespace, {"metadata": {"name": "app"}, "spec": {
        "replicas": REPLICAS, "progressDeadlineSeconds": 20, "selector": {"matchLabels": {"app": "app"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": MAX_UNAVAILABLE, "maxSurge": 1}},
        "template": {"metadata": {"labels": {"app": "app"}}, "spec": {
            "containers": [container], "terminationGracePeriodSeconds": 2,
            "volumes": [{"name": "creds", "secret": {"secretName": version}}]}}}})


def control_pod(kube: Kube, namespace: str, node: Node) -> None:
    """A bare bot pod mounting the plain target Secret, which the operator rewrites in place."""
    container = bot_container(node, keys=[KEY], files=[FILE], interval=1, secret="bot-env")
    container["volumeMounts"] = [{"name": "creds", "mountPath": "/etc/bot", "readOnly": True}]
    kube.core.create_namespaced_pod(namespace, {"metadata": {"name": "control"}, "spec": {
        "containers": [container], "terminationGracePeriodSeconds": 2,
        "volumes": [{"name": "creds", "secret": {"secretName": "bot-env"}}]}})


class ReadySampler:
    """Counts the ready pods of app=app several times a second, in a thread, for the lowest count.
    Samples taken while the test itself deletes a pod go to ``excluded_samples``: maxUnavailable
    bounds what the controller does, not a deletion."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.samples: list[int] = []
        self.excluded_samples: list[int] = []
        self._excluding = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ready(self) -> int:
        pods = self.kube.core.list_namespaced_pod(self.namespace, label_selector="app=app").items
        return sum(1 for p in pods if p.metadata.deletion_timestamp is None and any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))

    def _run(self) -> None:
        while not self._stop.is_set():
            count = self._ready()
            (self.excluded_samples if self._excluding else self.samples).append(count)
            self._stop.wait(0.2)

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        self._excluding = True
        try:
            yield
        finally:
            self._excluding = False

    def __enter__(self) -> ReadySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def pod_ready(kube: Kube, namespace: str, pod: str) -> bool:
    conditions = kube.core.read_namespaced_pod(pod, namespace).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def pods_on(kube: Kube, namespace: str, version: str) -> list[str]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector="app=app").items
    return sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None
                  and p.spec.volumes[0].secret.secret_name == version)


def test_a_bad_rotation_is_rolled_back_and_the_bot_never_drops_below_max_unavailable(
        node: Node, operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    bot = VersionedBot(kube, namespace, aws, key=KEY, value=secret_value("good"))
    good = wait_for(lambda: bot.versions() and bot.versions()[0], what="the first version")
    good_digest = digest(bot.value)
    bot_app(kube, namespace, node, good)
    control_pod(kube, namespace, node)
    old_pods = wait_for_deployment_pods(kube, namespace, "app")
    wait_for(lambda: bot.entry().get("secretName") == good, what="the Deployment's baseline version in status")

    with ReadySampler(kube, namespace) as sampler:
        bad = bot.rotate(value=secret_value("bad"))
        wait_for(lambda: template_secret(kube, namespace) == bad, what="the template on the bad version")
        # An eviction during the failed rollout: its replacement comes from the old ReplicaSet.
        evicted = wait_for(lambda: [p for p in pods_on(kube, namespace, good) if p in old_pods], what="an old pod")[0]
        with sampler.excluded():
            kube.core.delete_namespaced_pod(evicted, namespace)
            replacement = wait_for(lambda: [p for p in pods_on(kube, namespace, good) if p not in old_pods],
                                   timeout=60, what="a replacement pod on the old version")[0]
            assert wait_for_bot_digests(kube, namespace, replacement, [KEY, FILE]) == \
                {KEY: good_digest, FILE: good_digest}
            wait_for(lambda: pod_ready(kube, namespace, replacement), timeout=60, what="the replacement ready")

        entry: dict[str, Any] = wait_for(lambda: (e := bot.entry()).get("phase") == "RolledBack" and e,
                                         timeout=120, what="the rollout rolled back")
        seen = time.monotonic()
        pods = wait_for_deployment_pods(kube, namespace, "app")
        back_in = time.monotonic() - seen
        since_rollback = (datetime.datetime.now(datetime.UTC) - datetime.datetime.strptime(
            entry["rolledBackAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)).total_seconds()
        # Old pods never stopped printing the old file: the kubelet never rewrote it.
        for pod in pods:
            assert wait_for_bot_digests(kube, namespace, pod, [KEY, FILE]) == {KEY: good_digest, FILE: good_digest}
        assert set(pods) == set(pods_on(kube, namespace, good))
    lowest = min(sampler.samples)
    print(f"\nrevert: RolledBack at {entry['rolledBackAt']}; all {REPLICAS} pods ready on the previous version, "
          f"none left on the rejected one, {back_in:.1f} s after the test saw RolledBack "
          f"({since_rollback:.0f} s after rolledBackAt, a whole-second stamp); lowest ready count {lowest} of "
          f"{REPLICAS} over {len(sampler.samples)} samples (during the test's own pod deletion: "
          f"{min(sampler.excluded_samples, default=REPLICAS)} over {len(sampler.excluded_samples)})")
    assert lowest >= REPLICAS - MAX_UNAVAILABLE
    assert entry["rejectedSecretName"] == bad and entry["restartedFor"] == [KEY]
    rolled = bs.condition({"status": bot.status()}, "RolloutComplete")
    assert rolled is not None and rolled["reason"] == "RolledBack" and KEY in rolled["message"]
    events = kube.core.list_namespaced_event(namespace, field_selector="reason=RolledBack").items
    assert [e.type for e in events] == ["Warning"] and f"changed keys: {KEY}" in events[0].message

    # Mounted files: the kubelet rewrites the plain Secret's files in a running pod, but a version
    # never changes, so the bots' files stay the old ones until their pods are replaced.
    bad_digest = digest(bot.value)
    wait_for(lambda: bot_digests(pod_logs(kube, namespace, "control")).get(FILE) == bad_digest, timeout=180,
             interval=1, what="the kubelet refreshing the plain Secret's file in the control pod")
    for pod in pods:
        assert wait_for_bot_digests(kube, namespace, pod, [KEY, FILE]) == {KEY: good_digest, FILE: good_digest}

    fixed = secret_value("good")
    third = bot.rotate(value=fixed)
    wait_for(lambda: (e := bot.entry()).get("phase") == "Complete" and e.get("secretName") == third, timeout=180,
             what="the good rotation's rollout complete")
    for pod in wait_for_deployment_pods(kube, namespace, "app"):
        assert wait_for_bot_digests(kube, namespace, pod, [KEY, FILE]) == {KEY: digest(fixed), FILE: digest(fixed)}
