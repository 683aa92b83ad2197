"""The BotSecretStore and ClusterBotSecretStore CRDs on a real apiserver: generated from one
description, accepted and refused with the field named, and defaulted as ``parse_store`` reads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from botsecret.spec import InvalidSpec
from botsecret.stores import parse_store
from tests.e2e.test_crd import _DELETE, _both, _kubectl, _set, botsecret_crd  # noqa: F401 - fixture
from tests.harness.cluster_fixtures import Kube
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.tenancy

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "botsecret.dev", "v1alpha1"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

PROVIDERS: dict[str, dict[str, Any]] = {
    "aws": {"aws": {"region": "eu-west-1", "endpoint": "https://sm.example.com", "serviceAccountName": "bot",
                    "roleArn": "arn:aws:iam::123456789012:role/bot-reader", "audience": "sts.amazonaws.com",
                    "stsEndpoint": "https://sts.example.com"}},
    "aws-keys": {"aws": {"region": "eu-west-1", "credentialsSecretRef": {"name": "aws-keys"}}},
    "vault": {"vault": {"address": "https://vault.example.com:8200", "mount": "kv", "kvVersion": 1,
                        "namespace": "team-a/bots", "caBundle": PEM, "serviceAccountName": "bot",
                        "auth": {"kubernetes": {"role": "bot", "mount": "k8s", "audience": "openbao"}}}},
    "vault-approle": {"vault": {"address": "https://vault.example.com", "credentialsSecretRef": {"name": "ar"},
                                "auth": {"appRole": {"mount": "ar"}}, "caSecretRef": {"name": "ca", "key": "r.pem"},
                                "insecureSkipVerify": False}},
    "gcp": {"gcp": {"project": "bots-123", "location": "europe-west1", "endpoint": "secretmanager.example.com:443",
                    "credentialsSecretRef": {"name": "gcp-key"}}},
    "gcp-federation": {"gcp": {"project": "bots-123", "serviceAccountName": "bot", "workloadIdentity": {
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s",
        "tokenAudience": "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s",
        "serviceAccountEmail": "reader@bots-123.iam.gserviceaccount.com", "stsEndpoint": "https://sts.example.com/v1/token",
        "iamEndpoint": "https://iam.example.com"}}},
    "aws-parameter-store": {"aws": {"region": "eu-west-1", "service": "ParameterStore",
                                    "credentialsSecretRef": {"name": "aws-keys"}}},
}


def _body(kind: str, name: str, provider: dict[str, Any]) -> dict[str, Any]:
    provider = copy.deepcopy(provider)
    spec: dict[str, Any] = {"provider": provider}
    if kind == "ClusterBotSecretStore":
        conf = next(iter(provider.values()))
        for ref in ("credentialsSecretRef", "caSecretRef"):
            if ref in conf:
                conf[ref]["namespace"] = "botsecret-system"
        spec["conditions"] = [{"namespaces": ["team-a"]}, {"namespaceSelector": {"matchLabels": {"team": "bots"}}}]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _create(kube: Kube, namespace: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    created: dict[str, Any]
    if body["kind"] == "BotSecretStore":
        created = kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "botsecretstores", body,
                                                              **kwargs)
    else:
        created = kube.custom.create_cluster_custom_object(GROUP, VERSION, "clusterbotsecretstores", body, **kwargs)
    return created


def test_the_store_crds_are_generated_from_hack_store_crds(tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in sorted(REPO.glob("**/crds/botsecret.dev_*stores.yaml"))}
    assert len(before) == 4, before.keys()
    subprocess.run([sys.executable, str(REPO / "hack" / "store_crds.py")], check=True)
    after = {p: p.read_bytes() for p in before}
    assert after == before, "run python3 hack/store_crds.py and commit what it writes"


@pytest.mark.parametrize("plural", ["botsecretstores", "clusterbotsecretstores"])
def test_store_schema_describes_every_field(plural: str) -> None:
    crd = yaml.safe_load((REPO / "crds" / f"botsecret.dev_{plural}.yaml").read_text())
    undescribed: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if not node.get("description") and path != ".metadata":
            undescribed.append(path)
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    assert undescribed == []


@pytest.mark.parametrize("kind", ["BotSecretStore", "ClusterBotSecretStore"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_valid_stores_are_accepted_and_read_the_same_with_their_defaults(
    kube: Kube, botsecret_crd: dict[str, Any], namespace: str, kind: str, provider: str,  # noqa: F811
) -> None:
    body = _body(kind, f"s-{provider}", PROVIDERS[provider])
    stored = _create(kube, namespace, copy.deepcopy(body), dry_run="All")
    stored.setdefault("metadata", {})["namespace"] = namespace if kind == "BotSecretStore" else None
    body["metadata"]["namespace"] = stored["metadata"]["namespace"]
    assert parse_store(kind, stored) == parse_store(kind, body)


def test_sparse_stores_get_the_parsers_defaults(kube: Kube, botsecret_crd: dict[str, Any],  # noqa: F811
                                                namespace: str) -> None:
    body = _body("BotSecretStore", "sparse", {"vault": {"address": "https://v", "serviceAccountName": "bot",
                                                        "auth": {"kubernetes": {"role": "bot"}}}})
    stored = _create(kube, namespace, body)
    vault = stored["spec"]["provider"]["vault"]
    assert (vault["kvVersion"], vault["mount"]) == (2, "secret")
    assert vault["auth"]["kubernetes"] == {"role": "bot", "mount": "kubernetes", "audience": "vault"}
    assert parse_store("BotSecretStore", stored) == parse_store("BotSecretStore", {**body, "metadata": {
        "name": "sparse", "namespace": namespace}})


def _provider(kind: str) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        # A fresh copy each time: the chaos suite runs these mutations again, and later ones of a
        # case change what this one set.
        spec["provider"] = copy.deepcopy(PROVIDERS[kind])
    return mutate


# id, store kind, mutation of the spec, field path the message names, fragment, parse_store refuses too
INVALID: list[tuple[str, str, Callable[[dict[str, Any]], None], str, str, bool]] = [
    ("two-providers", "BotSecretStore", _set("provider.gcp", {"project": "p"}),
     "spec.provider", "exactly one of aws, gcp, vault", True),
    ("no-provider", "BotSecretStore", _set("provider", {}),
     "spec.provider", "exactly one of aws, gcp, vault", True),
    ("vault-kv-version-3", "BotSecretStore", _set("provider.vault.kvVersion", 3),
     "spec.provider.vault.kvVersion", "Unsupported value", True),
    ("vault-address-without-scheme", "BotSecretStore", _set("provider.vault.address", "vault.example.com:8200"),
     "spec.provider.vault.address", "must start with http:// or https://", True),
    ("vault-without-credentials", "BotSecretStore", _both(_set("provider.vault.auth", _DELETE),
                                                          _set("provider.vault.serviceAccountName", _DELETE)),
     "spec.provider.vault", "needs credentialsSecretRef (a token or an AppRole) or auth.kubernetes", True),
    ("vault-kubernetes-auth-without-role", "BotSecretStore", _set("provider.vault.auth.kubernetes.role", _DELETE),
     "spec.provider.vault", "auth.kubernetes needs a role and vault.serviceAccountName", True),
    ("vault-two-ca-sources", "BotSecretStore", _set("provider.vault.caSecretRef", {"name": "ca"}),
     "spec.provider.vault", "caBundle or caSecretRef, not both", True),
    ("vault-plain-http", "BotSecretStore", _set("provider.vault.address", "http://vault:8200"),
     "spec.provider", "insecureAllowPlainHTTP", True),
    ("aws-plain-http-endpoint", "BotSecretStore", _both(_provider("aws"), _set("provider.aws.endpoint", "http://x")),
     "spec.provider", "insecureAllowPlainHTTP", True),
    ("aws-role-without-service-account", "BotSecretStore",
     _both(_provider("aws"), _set("provider.aws.serviceAccountName", _DELETE)),
     "spec.provider.aws", "roleArn and aws.serviceAccountName go together", True),
    ("aws-static-keys-and-web-identity", "BotSecretStore",
     _both(_provider("aws"), _set("provider.aws.credentialsSecretRef", {"name": "k"})),
     "spec.provider.aws", "either credentialsSecretRef or serviceAccountName with roleArn", True),
    ("aws-endpoint-without-scheme", "BotSecretStore",
     _both(_provider("aws"), _set("provider.aws.endpoint", "sm.example.com")),
     "spec.provider.aws.endpoint", "must start with http:// or https://", False),
    ("service-account-with-a-slash", "BotSecretStore", _set("provider.vault.serviceAccountName", "other/bot"),
     "spec.provider.vault.serviceAccountName", "should match", True),
    ("secret-ref-with-upper-case", "BotSecretStore",
     _both(_provider("aws-keys"), _set("provider.aws.credentialsSecretRef.name", "AWS")),
     "spec.provider.aws.credentialsSecretRef.name", "should match", True),
    ("aws-service-unknown", "BotSecretStore", _both(_provider("aws-keys"), _set("provider.aws.service", "KeyVault")),
     "spec.provider.aws.service", "Unsupported value", True),
    ("gcp-workload-identity-without-service-account", "BotSecretStore",
     _both(_provider("gcp-federation"), _set("provider.gcp.serviceAccountName", _DELETE)),
     "spec.provider.gcp", "workloadIdentity and gcp.serviceAccountName go together", True),
    ("gcp-workload-identity-and-a-key", "BotSecretStore",
     _both(_provider("gcp-federation"), _set("provider.gcp.credentialsSecretRef", {"name": "k"})),
     "spec.provider.gcp", "either credentialsSecretRef or serviceAccountName with workloadIdentity", True),
    ("gcp-workload-identity-without-audience", "BotSecretStore",
     _both(_provider("gcp-federation"), _set("provider.gcp.workloadIdentity.audience", _DELETE)),
     "spec.provider.gcp.workloadIdentity.audience", "Required value", True),
    ("gcp-sts-endpoint-without-scheme", "BotSecretStore",
     _both(_provider("gcp-federation"), _set("provider.gcp.workloadIdentity.stsEndpoint", "sts.example.com")),
     "spec.provider.gcp.workloadIdentity.stsEndpoint", "must start with http:// or https://", True),
    ("cluster-store-without-conditions", "ClusterBotSecretStore", _set("conditions", _DELETE),
     "spec.conditions", "Required value", True),
    ("cluster-store-empty-condition", "ClusterBotSecretStore", _set("conditions", [{}]),
     "spec.conditions[0]", "namespaces or namespaceSelector", True),
    ("cluster-store-secret-without-namespace", "ClusterBotSecretStore",
     _both(_provider("aws-keys"), _set("conditions", [{"namespaces": ["a"]}])),
     "spec.provider.aws.credentialsSecretRef.namespace", "Required value", True),
]


@pytest.mark.parametrize(("kind", "mutate", "field_path", "fragment", "parser_refuses"),
                         [pytest.param(*case[1:], id=case[0]) for case in INVALID])
def test_invalid_store_is_refused_naming_the_field(
    kube: Kube, botsecret_crd: dict[str, Any], namespace: str, kind: str,  # noqa: F811
    mutate: Callable[[dict[str, Any]], None], field_path: str, fragment: str, parser_refuses: bool,
) -> None:
    body = _body(kind, "invalid", PROVIDERS["vault"])
    mutate(body["spec"])
    with pytest.raises(ApiException) as refused:
        _create(kube, namespace, body, dry_run="All")
    assert refused.value.status == 422, refused.value.body
    message = json.loads(refused.value.body or "{}")["message"]
    assert field_path in message and fragment in message, message
    body["metadata"]["namespace"] = namespace if kind == "BotSecretStore" else None
    if parser_refuses:
        with pytest.raises(InvalidSpec) as invalid:
            parse_store(kind, body)  # type: ignore[arg-type]
        assert field_path.startswith(invalid.value.field) or invalid.value.field.startswith(field_path), \
            (invalid.value.field, field_path)
    else:
        parse_store(kind, body)  # type: ignore[arg-type]


def test_kubectl_explains_and_lists_stores(cluster: Any, kube: Kube, botsecret_crd: dict[str, Any],  # noqa: F811
                                          namespace: str) -> None:
    explained = wait_for(lambda: (r := _kubectl(cluster, "explain", "botsecretstore.spec.provider.vault"))
                         .returncode == 0 and r)
    assert "caSecretRef" in explained.stdout and "serviceAccountName" in explained.stdout
    cluster_explained = _kubectl(cluster, "explain", "clusterbotsecretstore.spec.conditions")
    assert cluster_explained.returncode == 0 and "namespaceSelector" in cluster_explained.stdout
    _create(kube, namespace, _body("BotSecretStore", "listed", PROVIDERS["vault"]))
    listed = _kubectl(cluster, "get", "bss", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split("\n")[0].split() == ["NAME", "READY", "REASON", "AGE"]
