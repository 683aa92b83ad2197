"""Smoke tests: each server of the test world is real and wired right.

Each asserts something a fake API server would likely get wrong.
"""

from __future__ import annotations

from typing import Any

import hvac
import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.leaks import secret_value
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.smoke

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.botsecret.dev"},
    "spec": {
        "group": "smoke.botsecret.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {
                    "type": "object",
                    "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min must not exceed max"}],
                    "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                }},
            }},
        }],
    },
}


def test_crd_validation_rule_rejects_and_unknown_fields_are_pruned(kube: Kube, namespace: str) -> None:
    try:
        kube.crds.create_custom_resource_definition(WIDGET_CRD)
    except ApiException as e:
        if e.status != 409:
            raise
    wait_for(lambda: any(c.type == "Established" and c.status == "True" for c in
                         (kube.crds.read_custom_resource_definition(WIDGET_CRD["metadata"]["name"]).status.conditions or [])))
    args = ("smoke.botsecret.dev", "v1", namespace, "widgets")

    def create(spec: dict[str, Any]) -> Any:
        body = {"apiVersion": "smoke.botsecret.dev/v1", "kind": "Widget", "metadata": {"name": f"w{spec['min']}"},
                "spec": spec}
        return wait_for(lambda: _create_when_served(kube, args, body), timeout=60, ignore=())

    with pytest.raises(ApiException) as invalid:
        create({"min": 5, "max": 1})
    assert invalid.value.status == 422
    assert "min must not exceed max" in str(invalid.value.body)

    created = create({"min": 1, "max": 5, "colour": "blue"})
    assert created["spec"] == {"min": 1, "max": 5}, "unknown field was not pruned"


def _create_when_served(kube: Kube, args: tuple[str, ...], body: dict[str, Any]) -> Any:
    try:
        return kube.custom.create_namespaced_custom_object(*args, body)
    except ApiException as e:
        if e.status == 404:  # the new resource is not served yet
            return None
        raise


def test_pod_template_patch_makes_a_second_replicaset(kube: Kube, namespace: str) -> None:
    deployment = {
        "metadata": {"name": "bot"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "bot"}},
            "template": {"metadata": {"labels": {"app": "bot"}},
                         "spec": {"containers": [{"name": "bot", "image": "example.invalid/bot:1"}]}},
        },
    }
    kube.apps.create_namespaced_deployment(namespace, deployment)

    def replicasets() -> list[Any]:
        return list(kube.apps.list_namespaced_replica_set(namespace, label_selector="app=bot").items)

    wait_for(lambda: len(replicasets()) == 1, timeout=60)
    kube.apps.patch_namespaced_deployment("bot", namespace, {
        "spec": {"template": {"metadata": {"annotations": {"botsecret.dev/restarted-for": "smoke"}}}},
    })
    wait_for(lambda: len(replicasets()) == 2, timeout=60)
    hashes = {rs.metadata.labels["pod-template-hash"] for rs in replicasets()}
    assert len(hashes) == 2


def _service_account_token(kube: Kube, namespace: str, name: str, audience: str) -> str:
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    request = {"spec": {"audiences": [audience], "expirationSeconds": 600}}
    return str(kube.core.create_namespaced_service_account_token(name, namespace, request).status.token)


def test_token_request_review_and_openbao_kubernetes_login(
    kube: Kube, cluster: ControlPlane, namespace: str, vault: Any,
) -> None:
    token_a = _service_account_token(kube, namespace, "bot-a", "vault")
    token_b = _service_account_token(kube, namespace, "bot-b", "vault")

    review = kube.authn.create_token_review({"spec": {"token": token_a, "audiences": ["vault"]}})
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:bot-a"
    wrong_audience = kube.authn.create_token_review({"spec": {"token": token_a, "audiences": ["sts"]}})
    assert not wrong_audience.status.authenticated

    # OpenBao calls TokenReview with a reviewer identity allowed to do so.
    reviewer = _service_account_token(kube, namespace, "token-reviewer", cluster.server)
    kube.rbac.create_cluster_role_binding({
        "metadata": {"name": f"token-reviewer-{namespace}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "token-reviewer", "namespace": namespace}],
    })
    admin = vault.client()
    mount = f"k8s-{namespace}"
    admin.sys.enable_auth_method("kubernetes", path=mount)
    admin.auth.kubernetes.configure(
        kubernetes_host=cluster.server, kubernetes_ca_cert=cluster.ca_path.read_text(),
        token_reviewer_jwt=reviewer, disable_local_ca_jwt=True, mount_point=mount,
    )
    admin.auth.kubernetes.create_role("bot-a", bound_service_account_names=["bot-a"],
                                      bound_service_account_namespaces=[namespace], audience="vault",
                                      mount_point=mount)
    admin.auth.kubernetes.create_role("bot-b", bound_service_account_names=["bot-b"],
                                      bound_service_account_namespaces=[namespace], audience="vault",
                                      mount_point=mount)

    login = hvac.Client(url=vault.address).auth.kubernetes.login("bot-a", token_a, mount_point=mount)
    assert login["auth"]["metadata"]["service_account_name"] == "bot-a"
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.address).auth.kubernetes.login("bot-a", token_b, mount_point=mount)
    kube.rbac.delete_cluster_role_binding(f"token-reviewer-{namespace}")


@pytest.mark.control_plane
def test_identity_without_rights_is_forbidden_to_read_a_secret(
    kube: Kube, cluster: ControlPlane, namespace: str,
) -> None:
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"k": secret_value("rbac")}})
    assert kube.core.read_namespaced_secret("s", namespace).data["k"]
    nobody = kube_for(cluster.nobody_kubeconfig)
    with pytest.raises(ApiException) as denied:
        nobody.core.read_namespaced_secret("s", namespace)
    assert denied.value.status == 403


def test_moto_rotation_moves_stages_and_batch_get_returns_several(aws: Any) -> None:
    sm = aws.client()
    name = f"smoke/{secret_value('name')}"
    first = sm.create_secret(Name=name, SecretString=secret_value("first"))["VersionId"]
    second = sm.put_secret_value(SecretId=name, SecretString=secret_value("second"))["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages[second] == ["AWSCURRENT"]
    assert stages[first] == ["AWSPREVIOUS"]

    other = f"smoke/{secret_value('other')}"
    sm.create_secret(Name=other, SecretString=secret_value("o"))
    batch = sm.batch_get_secret_value(SecretIdList=[name, other])
    assert sorted(v["Name"] for v in batch["SecretValues"]) == sorted([name, other])
    assert not batch.get("Errors")
