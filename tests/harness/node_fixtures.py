"""The ``node`` fixture and helpers for tests whose pods really run.

How to use it (see tests/e2e/test_node.py for a whole test)::

    pytestmark = pytest.mark.node

    def test_my_bot(node: Node, kube: Kube, namespace: str) -> None:
        bot_deployment(kube, namespace, "bots", node, replicas=2, secret="bot-env", keys=["A"])
        pods = wait_for_deployment_pods(kube, namespace, "bots")
        assert bot_digests(pod_logs(kube, namespace, pods[0]))["A"] == digest(b"the value")

- ``node`` (session scope) starts the node once, on first use; it is skipped, saying why, on a
  host that cannot run it (not root; no containerd, runc, CNI plugins, gcc or buildah).
  Its tear-down undoes every host change and fails if anything is left. One node per host: the
  fixture waits (up to 30 min) while another test run has one up; tests that use it get a
  30-minute timeout for that.
- The bot image prints ``NAME sha256:<16 hex>`` per key, never a value (hack/node/bot.c);
  :func:`digest` computes the same from a value. ``bot --check`` is a readiness probe that
  refuses a value starting with ``reject_prefix``.
- Pods use ``imagePullPolicy: Never``: only the node's own images exist (``node.images``).
- Pods on the bridge cannot reach servers on 127.0.0.1 (moto, OpenBao, the apiserver); a
  ``hostNetwork: true`` pod can (there is no kube-proxy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import ControlPlane
from .cluster_fixtures import Kube
from .node import Node, missing_requirements
from .waiting import wait_for

LOCK_WAIT_TIMEOUT = 1800  # seconds a test that uses the node may run, waiting for another run's node included


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One node per host: a test that starts it may first wait for another run's node to go, far
    # longer than the suite's default timeout allows.
    for item in items:
        if "node" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LOCK_WAIT_TIMEOUT))


@pytest.fixture(scope="session")
def node(cluster: ControlPlane, kube: Kube, artifacts: Path) -> Iterator[Node]:
    reason = missing_requirements()
    if reason:
        pytest.skip(f"no node on this host: {reason}")
    running = Node(cluster=cluster, kube=kube, scratch=artifacts / "node")
    running.start()
    yield running
    print(f"harness: node memory (MiB): {running.memory_mib()}")
    running.stop()


def digest(value: bytes | str) -> str:
    """What the bot prints for a value: ``sha256:`` and the first 16 hex digits."""
    raw = value.encode() if isinstance(value, str) else value
    return f"sha256:{hashlib.sha256(raw).hexdigest()[:16]}"


def bot_container(node: Node, *, keys: list[str], secret: str | None = None, files: list[str] | None = None,
                  interval: int | None = None, check_key: str | None = None,
                  reject_prefix: str | None = None) -> dict[str, Any]:
    """The bot, printing digests of ``keys`` (from the Secret ``secret`` through envFrom) and
    ``files``; with ``check_key``, ready only while that key does not start with ``reject_prefix``."""
    env = [{"name": "BOT_KEYS", "value": ",".join(keys)}]
    if files:
        env.append({"name": "BOT_FILES", "value": ",".join(files)})
    if interval:
        env.append({"name": "BOT_INTERVAL", "value": str(interval)})
    container: dict[str, Any] = {"name": "bot", "image": node.images["bot"], "imagePullPolicy": "Never", "env": env}
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    if check_key:
        env += [{"name": "BOT_CHECK_KEY", "value": check_key}, {"name": "BOT_REJECT_PREFIX", "value": reject_prefix or ""}]
        container["readinessProbe"] = {"exec": {"command": ["/bot", "--check"]}, "periodSeconds": 1,
                                       "failureThreshold": 1}
    return container


def bot_deployment(kube: Kube, namespace: str, name: str, node: Node, *, replicas: int = 1,
                   progress_deadline: int | None = None, **bot: Any) -> None:
    """A Deployment of the bot (see :func:`bot_container` for ``bot``); pods labelled ``app=name``."""
    spec: dict[str, Any] = {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [bot_container(node, **bot)], "terminationGracePeriodSeconds": 5}},
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    kube.apps.create_namespaced_deployment(namespace, {"metadata": {"name": name}, "spec": spec})


def pod_logs(kube: Kube, namespace: str, pod: str, container: str | None = None) -> str:
    """A pod's log, read as ``kubectl logs`` does: through the apiserver from the kubelet."""
    text: str = kube.core.read_namespaced_pod_log(pod, namespace, container=container)
    return text


def bot_digests(log: str) -> dict[str, str]:
    """The digests of the bot's latest round: key or file -> ``sha256:...`` (or ``absent``)."""
    latest: dict[str, str] = {}
    for line in log.splitlines():
        if line.startswith("bot: round "):
            latest = {}
        elif " " in line:
            name, shown = line.rsplit(" ", 1)
            latest[name] = shown
    return latest


def wait_for_bot_digests(kube: Kube, namespace: str, pod: str, keys: list[str], timeout: float = 60) -> dict[str, str]:
    """The pod's latest digests, once it has printed every key in ``keys``."""
    return wait_for(lambda: (d := bot_digests(pod_logs(kube, namespace, pod))) and set(keys) <= set(d) and d,
                    timeout=timeout, what=f"pod {pod} printing digests of {keys}")


def wait_for_deployment_pods(kube: Kube, namespace: str, name: str, timeout: float = 180) -> list[str]:
    """Names of the Deployment's pods once its rollout is done: every replica updated, ready and
    available, and no pod of an older ReplicaSet left (terminating ones included)."""
    def settled() -> list[str] | None:
        deployment = kube.apps.read_namespaced_deployment(name, namespace)
        status, want = deployment.status, deployment.spec.replicas
        if (status.observed_generation or 0) < deployment.metadata.generation or not (
                status.updated_replicas == status.ready_replicas == status.available_replicas == want
                and (status.replicas or 0) == want):
            return None
        revision = (deployment.metadata.annotations or {}).get("deployment.kubernetes.io/revision")
        current = [rs for rs in kube.apps.list_namespaced_replica_set(namespace).items
                   if any(o.uid == deployment.metadata.uid for o in rs.metadata.owner_references or [])
                   and (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision") == revision]
        if len(current) != 1:
            return None
        selector = ",".join(f"{k}={v}" for k, v in deployment.spec.selector.match_labels.items())
        pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        template_hash = current[0].metadata.labels["pod-template-hash"]
        if len(pods) != want or any(p.metadata.labels.get("pod-template-hash") != template_hash
                                    or p.metadata.deletion_timestamp or p.status.phase != "Running" for p in pods):
            return None
        return sorted(p.metadata.name for p in pods)
    return wait_for(settled, timeout=timeout, interval=0.5, what=f"Deployment {name}'s pods rolled out")
