"""The life of a BotSecret around its Secret, end to end on the real apiserver: no sync writes
after release, a refused type change keeps the Secret, a Secret that merely looks like ours is not
taken, OwnerReferencesPermissionEnforcement is satisfied, the operator refuses to start without
its namespace, and `botsecret uninstall` lets the CRD go with each Secret as its policy says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.leaks import secret_value
from tests.harness.operator_process import OPERATOR_NAMESPACE, OperatorProcess, install_crd, operator_kubeconfig
from tests.harness.stores import file_inline_sources
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.lifecycle

MANAGED_BY = "app.kubernetes.io/managed-by"
CRD_NAME = "botsecrets.botsecret.dev"
FINALIZER = "botsecret.dev/finalizer"


def _remote(aws: MotoServer, name: str, label: str) -> str:
    value = secret_value(label)
    aws.client().create_secret(Name=name, SecretString=value)
    return value


# --- item 8: a sync after release ---------------------------------------------------------------
#
# Deletion bumps the generation, which wakes the daemon just as release runs; the BotSecret's lock
# serialises the two but does not order them. Bursts of force-sync-then-delete through the operator
# did not hit the bad order (kopf cancels the daemon at once, and a cycle not yet started is dropped
# with it), so these tests drive the two orders that leak, in this process, with the operator's own
# functions against the real apiserver: a cycle whose snapshot predates a release that got the lock
# first, and a cycle whose snapshot already carries the deletionTimestamp. Each call has returned, so
# whatever it would write has been written.

@pytest.fixture
def runtime(operator: Any, kube: Kube, cluster: ControlPlane, artifacts: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The operator's collaborators, built as `botsecret run` builds them, as its ServiceAccount."""
    from kubernetes import config

    from botsecret.runtime import OperatorConfig, Runtime

    kubeconfig = operator_kubeconfig(kube, cluster, artifacts / "in-process.kubeconfig")
    # The kubernetes client reads $KUBECONFIG once, at import: hand the runtime its client directly.
    monkeypatch.setattr("botsecret.runtime.api_client",
                        lambda connections=None: config.new_client_from_config(str(kubeconfig)))
    built = Runtime.start(OperatorConfig(namespace=OPERATOR_NAMESPACE))
    yield built
    built.close()


def _synced(kube: Kube, namespace: str, aws: MotoServer, name: str, target: dict[str, Any],
            finalizers: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    value = _remote(aws, f"{namespace}/{name}", name)
    body = {"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret",
            "metadata": {"name": name, "finalizers": finalizers or []},
            "spec": file_inline_sources(kube, namespace, {
                "sources": [bs.aws_source(kube, namespace, aws.endpoint, name=f"aws-{name}")], "target": target,
                "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/{name}"}}]})}
    kube.custom.create_namespaced_custom_object("botsecret.dev", "v1alpha1", namespace, "botsecrets", body)
    return value, bs.wait_ready(kube, namespace, name, reason="Synced")


@pytest.mark.parametrize("creation", ["Orphan", "Merge"])
def test_a_cycle_that_gets_the_lock_after_release_writes_nothing(
    runtime: Any, kube: Kube, namespace: str, aws: MotoServer, creation: str,
) -> None:
    from botsecret.cycle import release_target, run_cycle

    if creation == "Merge":
        kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "env"}, "stringData": {"MINE": "kept"}})
    target = {"name": "env", "creationPolicy": creation, "deletionPolicy": "Delete"}
    value, snapshot = _synced(kube, namespace, aws, "bot", target)
    left = {"MINE": b"kept"} if creation == "Merge" else None
    assert bs.secret_data(kube, namespace, "env") == {**(left or {}), "K": value.encode()}

    # The deletion as release sees it, then the cycle that was woken with the older snapshot.
    bs.delete(kube, namespace, "bot")
    release_target(runtime, snapshot)
    run_cycle(runtime, snapshot)
    assert bs.secret_data(kube, namespace, "env") == left, "the cycle after release wrote the Secret again"


def test_a_cycle_of_a_botsecret_being_deleted_writes_nothing(
    runtime: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    from botsecret.cycle import run_cycle

    hold = "test.botsecret.dev/hold"  # keeps the BotSecret terminating after the operator let go
    value, _ = _synced(kube, namespace, aws, "bot", {"name": "env", "creationPolicy": "Orphan",
                                                      "deletionPolicy": "Delete"}, finalizers=[hold])
    assert bs.secret_data(kube, namespace, "env") == {"K": value.encode()}
    bs.delete(kube, namespace, "bot")
    # The operator's release has run: the Secret is gone and its finalizer removed.
    deleting = wait_for(lambda: (lambda b: b if b["metadata"].get("finalizers") == [hold] else None)(
        bs.get(kube, namespace, "bot")), what="the operator's finalizer removed")
    assert bs.secret_data(kube, namespace, "env") is None
    try:
        assert deleting["metadata"]["deletionTimestamp"]
        run_cycle(runtime, deleting)  # a fresh runtime: only the deletionTimestamp tells
        assert bs.secret_data(kube, namespace, "env") is None, "a cycle recreated the Secret of a deleted BotSecret"
    finally:
        kube.custom.patch_namespaced_custom_object("botsecret.dev", "v1alpha1", namespace, "botsecrets", "bot",
                                                   {"metadata": {"finalizers": None}},
                                                   _content_type="application/merge-patch+json")


# --- item 10: type changes and ownership ---------------------------------------------------------

def test_a_type_change_the_apiserver_refuses_leaves_the_secret_in_place(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    value = _remote(aws, f"{namespace}/k", "typed")
    bs.create(kube, namespace, "bot", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})
    before = kube.core.read_namespaced_secret("bot", namespace)

    # A kubernetes.io/tls Secret must hold tls.crt and tls.key; K alone is refused by the apiserver.
    # The remote value rotates too, so that there is data to write whatever else is compared.
    aws.client().put_secret_value(SecretId=f"{namespace}/k", SecretString=secret_value("typed_rotated"))
    bs.patch_spec(kube, namespace, "bot", {"target": {"type": "kubernetes.io/tls"}})
    body = bs.wait_ready(kube, namespace, "bot", status="False", reason="WriteFailed")
    after = bs.read_secret(kube, namespace, "bot")
    assert after is not None, "the Secret was deleted for a type change that could not be applied"
    assert after.metadata.uid == before.metadata.uid and after.type == "Opaque"
    assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}
    message = bs.ready(body)["message"]
    assert "kubernetes.io/tls" in message and "data[tls.crt]" in message, message


def test_a_type_change_the_apiserver_accepts_replaces_the_secret(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    value = _remote(aws, f"{namespace}/k", "retyped")
    bs.create(kube, namespace, "bot", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})
    bs.patch_spec(kube, namespace, "bot", {"target": {"type": "botsecret.dev/bot-env"}})
    wait_for(lambda: getattr(bs.read_secret(kube, namespace, "bot"), "type", None) == "botsecret.dev/bot-env",
             what="the Secret re-created with the new type")
    assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}
    bs.wait_ready(kube, namespace, "bot", reason="Synced")


@pytest.mark.parametrize("creation", ["Owner", "Orphan"])
def test_a_secret_labelled_managed_by_us_but_naming_no_botsecret_is_not_taken(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer, creation: str,
) -> None:
    # The operator's own HMAC key Secret looks exactly like this: managed-by, no owner label.
    made = kube.core.create_namespaced_secret(namespace, {
        "metadata": {"name": "lookalike", "labels": {MANAGED_BY: "botsecret-operator"}},
        "stringData": {"key": "theirs"},
    })
    _remote(aws, f"{namespace}/k", f"lookalike_{creation}")
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": "key", "remoteRef": {"name": f"{namespace}/k"}}],
        "target": {"name": "lookalike", "creationPolicy": creation, "deletionPolicy": "Delete"},
    })
    body = bs.wait_ready(kube, namespace, "bot", status="False", reason="TargetConflict")
    assert "botsecret.dev/botsecret" in bs.ready(body)["message"]
    secret = kube.core.read_namespaced_secret("lookalike", namespace)
    assert secret.metadata.resource_version == made.metadata.resource_version, "the Secret was written"

    bs.delete(kube, namespace, "bot")
    wait_for(lambda: bs.gone(kube, namespace, "bot"), what="BotSecret gone")
    assert kube.core.read_namespaced_secret("lookalike", namespace).metadata.uid == made.metadata.uid


# --- item 14: OwnerReferencesPermissionEnforcement ------------------------------------------------

@pytest.mark.control_plane
def test_an_owner_secret_syncs_under_owner_references_permission_enforcement(
    operator: Any, kube: Kube, cluster: ControlPlane, namespace: str, aws: MotoServer,
) -> None:
    value = _remote(aws, f"{namespace}/k", "owned")
    bs.create(kube, namespace, "bot", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
                                       "target": {"creationPolicy": "Owner"}})
    bs.wait_ready(kube, namespace, "bot", reason="Synced")
    secret = kube.core.read_namespaced_secret("bot", namespace)
    owner = bs.get(kube, namespace, "bot")["metadata"]["uid"]
    assert [(r.uid, r.block_owner_deletion) for r in secret.metadata.owner_references] == [(owner, True)]
    assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}

    # The plugin is really on: someone who may create Secrets but not update botsecrets/finalizers
    # may not set blockOwnerDeletion.
    kube.rbac.create_namespaced_role(namespace, {"metadata": {"name": "secret-writer"}, "rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "delete"]}]})
    kube.rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "secret-writer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-writer"},
        "subjects": [{"kind": "User", "name": "nobody", "apiGroup": "rbac.authorization.k8s.io"}],
    })
    nobody = kube_for(cluster.nobody_kubeconfig)
    ref = {"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret", "name": "bot", "uid": owner,
           "blockOwnerDeletion": True}

    def refused() -> ApiException | None:
        try:
            nobody.core.create_namespaced_secret(namespace, {"metadata": {"name": "blocking",
                                                                          "ownerReferences": [ref]}})
        except ApiException as e:
            return e if e.status != 403 or "blockOwnerDeletion" in str(e.body) else None
        nobody.core.delete_namespaced_secret("blocking", namespace)
        return None

    # RBAC of a new binding takes a moment to reach the authorizer; a 403 naming RBAC means "not yet".
    refusal = wait_for(refused, what="a refusal by OwnerReferencesPermissionEnforcement", ignore=())
    assert refusal.status in (403, 422) and "blockOwnerDeletion" in str(refusal.body)


# --- item 16: the operator's namespace -------------------------------------------------------------

@pytest.mark.parametrize("how", ["flag", "BOTSECRET_NAMESPACE", "POD_NAMESPACE"])
def test_run_without_its_namespace_exits_with_one_clear_line(
    operator: Any, kube: Kube, cluster: ControlPlane, artifacts: Path, how: str,
) -> None:
    missing = "botsecret-nowhere"
    kubeconfig = operator_kubeconfig(kube, cluster, artifacts / "missing-namespace.kubeconfig")
    env = {k: v for k, v in os.environ.items() if k not in ("BOTSECRET_NAMESPACE", "POD_NAMESPACE")}
    env.update({"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"})
    argv = [sys.executable, "-m", "botsecret.cli", "run"]
    if how == "flag":
        argv += ["--operator-namespace", missing]
    else:
        env[how] = missing
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the operator kept running without its namespace; output:\n{e.output}\n{e.stderr}")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if missing in line]
    assert len(lines) == 1, output
    assert "--operator-namespace" in lines[0] and "BOTSECRET_NAMESPACE" in lines[0], lines[0]


# --- item 13: uninstall ---------------------------------------------------------------------------

def _crd_gone(kube: Kube) -> bool:
    try:
        kube.crds.read_custom_resource_definition(CRD_NAME)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def _strip_finalizers(kube: Kube) -> None:
    """Cleanup after a failed uninstall: what a desperate admin does by hand."""
    try:
        listed = kube.custom.list_cluster_custom_object("botsecret.dev", "v1alpha1", "botsecrets")
    except ApiException:
        return
    for item in listed["items"]:
        meta = item["metadata"]
        try:
            kube.custom.patch_namespaced_custom_object(
                "botsecret.dev", "v1alpha1", meta["namespace"], "botsecrets", meta["name"],
                {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json")
        except ApiException as e:
            if e.status != 404:
                raise


@pytest.fixture
def stopped_operator(operator: OperatorProcess, kube: Kube) -> Iterator[OperatorProcess]:
    """The session's operator, stopped for the test; afterwards the CRD is back and it runs again."""
    operator.stop()
    try:
        yield operator
    finally:
        if not _crd_gone(kube):
            deletion = kube.crds.read_custom_resource_definition(CRD_NAME).metadata.deletion_timestamp
            if deletion is not None:
                _strip_finalizers(kube)
                wait_for(lambda: _crd_gone(kube), timeout=120, what="the CRD gone")
        install_crd(kube)
        operator.start()


POLICIES = [("owner-delete", "Owner", "Delete"), ("owner-retain", "Owner", "Retain"),
            ("orphan-delete", "Orphan", "Delete"), ("orphan-retain", "Orphan", "Retain"),
            ("merge-delete", "Merge", "Delete"), ("merge-retain", "Merge", "Retain")]


def test_uninstall_carries_out_each_deletion_policy_and_lets_the_crd_go(
    operator: OperatorProcess, kube: Kube, cluster: ControlPlane, namespace: str, aws: MotoServer,
    artifacts: Path, request: pytest.FixtureRequest,
) -> None:
    value = _remote(aws, f"{namespace}/k", "uninstall")
    source = bs.aws_source(kube, namespace, aws.endpoint)
    for name, creation, deletion in POLICIES:
        target: dict[str, Any] = {"creationPolicy": creation, "deletionPolicy": deletion}
        if creation == "Merge":
            target["name"] = f"{name}-env"
            kube.core.create_namespaced_secret(namespace, {"metadata": {"name": f"{name}-env"},
                                                           "stringData": {"MINE": "kept"}})
        bs.create(kube, namespace, name, {"sources": [source], "target": target,
                                          "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    for name, _, _ in POLICIES:
        bs.wait_ready(kube, namespace, name, reason="Synced", timeout=60)
        assert FINALIZER in bs.get(kube, namespace, name)["metadata"]["finalizers"]

    request.getfixturevalue("stopped_operator")
    # Run as the operator's own ServiceAccount: the chart's pre-delete hook Job does so.
    kubeconfig = operator_kubeconfig(kube, cluster, artifacts / "uninstall.kubeconfig")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run([sys.executable, "-m", "botsecret.cli", "uninstall", "--yes"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for name, _, _ in POLICIES:
        assert f"{namespace}/{name}:" in done.stdout, done.stdout
        wait_for(lambda name=name: bs.gone(kube, namespace, name), what=f"BotSecret {name} gone")

    kube.crds.delete_custom_resource_definition(CRD_NAME)
    wait_for(lambda: _crd_gone(kube), timeout=60, what="the CRD deletion to finish")

    assert bs.read_secret(kube, namespace, "owner-delete") is None
    assert bs.read_secret(kube, namespace, "orphan-delete") is None
    for kept in ("owner-retain", "orphan-retain"):
        secret = bs.read_secret(kube, namespace, kept)
        assert secret is not None, f"{kept} was deleted"
        # The garbage collector deletes only objects with ownerReferences; this one has none left.
        assert not secret.metadata.owner_references, f"{kept} still has an ownerReference"
        assert bs.secret_data(kube, namespace, kept) == {"K": value.encode()}
    assert bs.secret_data(kube, namespace, "merge-delete-env") == {"MINE": b"kept"}
    assert bs.secret_data(kube, namespace, "merge-retain-env") == {"MINE": b"kept", "K": value.encode()}
