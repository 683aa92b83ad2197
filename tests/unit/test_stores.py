"""botsecret.stores: parse_store, StoreSpec.admits and plain_http_addresses, pure."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from botsecret.spec import AwsSource, GcpSource, InvalidSpec, SecretRef, StoreKind, VaultSource
from botsecret.stores import NamespaceCondition, StoreSpec, parse_store, plain_http_addresses

HOME = "bots"
TOKEN = {"credentialsSecretRef": {"name": "vault-token"}}


def store(provider: str, conf: Any, **spec: Any) -> dict[str, Any]:
    """A BotSecretStore in namespace ``bots`` with one provider block."""
    return {"metadata": {"name": "store", "namespace": HOME}, "spec": {"provider": {provider: conf}, **spec}}


def cluster_store(provider: str, conf: Any, **spec: Any) -> dict[str, Any]:
    """A ClusterBotSecretStore open to every namespace unless ``conditions`` says otherwise."""
    spec.setdefault("conditions", [{"namespaceSelector": {}}])
    return {"metadata": {"name": "shared"}, "spec": {"provider": {provider: conf}, **spec}}


def parsed(provider: str, conf: Any, **spec: Any) -> StoreSpec:
    return parse_store("BotSecretStore", store(provider, conf, **spec))


def invalid(kind: StoreKind, body: dict[str, Any]) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        parse_store(kind, body)
    return caught.value


# defaults


def test_aws_store_defaults() -> None:
    result = parsed("aws", {"region": "eu-west-1"})
    assert result == StoreSpec(kind="BotSecretStore", name="store", namespace=HOME,
                               provider=AwsSource(region="eu-west-1"))
    assert result.provider.audience == "sts.amazonaws.com"
    assert result.allow_plain_http is False
    assert result.conditions == ()


def test_vault_and_gcp_defaults() -> None:
    vault = parsed("vault", {"address": "https://vault:8200", "credentialsSecretRef": {"name": "vt"}}).provider
    assert vault == VaultSource(address="https://vault:8200", credentials_secret=SecretRef(HOME, "vt"))
    assert isinstance(vault, VaultSource)
    assert (vault.mount, vault.kv_version, vault.auth_mount, vault.audience) == ("secret", 2, "kubernetes", "vault")
    assert (vault.approle_mount, vault.ca_secret, vault.ca_bundle) == ("approle", None, None)
    assert vault.credentials_secret is not None and vault.credentials_secret.key is None
    assert vault.insecure_skip_verify is False
    assert vault.auth_role is None
    assert vault.namespace is None
    assert parsed("gcp", {"project": "p1"}).provider == GcpSource(project="p1")


def test_vault_ca_secret_key_defaults_to_ca_crt() -> None:
    vault = parsed("vault", {"address": "https://v", "caSecretRef": {"name": "vault-ca"}, **TOKEN}).provider
    assert isinstance(vault, VaultSource)
    assert vault.ca_secret == SecretRef(HOME, "vault-ca", "ca.crt")


def test_full_provider_configs_are_read() -> None:
    aws = parsed("aws", {"region": "us-east-1", "endpoint": "http://127.0.0.1:5000", "serviceAccountName": "bot",
                         "roleArn": "arn:aws:iam::1:role/r", "audience": "aud",
                         "stsEndpoint": "http://127.0.0.1:5001"}, insecureAllowPlainHTTP=True)
    assert aws.provider == AwsSource(
        region="us-east-1", endpoint="http://127.0.0.1:5000", service_account_name="bot",
        role_arn="arn:aws:iam::1:role/r", audience="aud", sts_endpoint="http://127.0.0.1:5001")
    assert aws.allow_plain_http is True
    assert parsed("aws", {"region": "eu-west-1", "credentialsSecretRef": {"name": "aws-creds"}}).provider == AwsSource(
        region="eu-west-1", credentials_secret=SecretRef(HOME, "aws-creds"))
    assert parsed("gcp", {"project": "p", "location": "europe-west1", "endpoint": "https://sm.example",
                          "credentialsSecretRef": {"name": "gcp-sa", "key": "sa.json"}}).provider == GcpSource(
        project="p", location="europe-west1", endpoint="https://sm.example",
        credentials_secret=SecretRef(HOME, "gcp-sa", "sa.json"))
    vault = parsed("vault", {"address": "http://v", "mount": "kv", "kvVersion": 1, "namespace": "ns",
                             "caBundle": "PEM", "serviceAccountName": "bot",
                             "auth": {"kubernetes": {"role": "bot", "mount": "k8s", "audience": "va"}}},
                   insecureAllowPlainHTTP=True)
    assert vault.provider == VaultSource(
        address="http://v", mount="kv", kv_version=1, namespace="ns", ca_bundle="PEM", service_account_name="bot",
        auth_role="bot", auth_mount="k8s", audience="va")
    approle = parsed("vault", {"address": "https://v", "credentialsSecretRef": {"name": "approle"},
                               "auth": {"appRole": {"mount": "ar"}},
                               "caSecretRef": {"name": "vault-ca", "key": "root.pem"}, "insecureSkipVerify": True})
    assert approle.provider == VaultSource(
        address="https://v", credentials_secret=SecretRef(HOME, "approle"), approle_mount="ar",
        ca_secret=SecretRef(HOME, "vault-ca", "root.pem"), insecure_skip_verify=True)


# which namespace a store's Secrets are read from


def test_namespaced_store_refs_get_the_store_namespace() -> None:
    vault = parsed("vault", {"address": "https://v", "credentialsSecretRef": {"name": "tok", "key": "token"},
                             "caSecretRef": {"name": "ca"}}).provider
    assert isinstance(vault, VaultSource)
    assert vault.credentials_secret == SecretRef(HOME, "tok", "token")
    assert vault.ca_secret == SecretRef(HOME, "ca", "ca.crt")


def test_namespaced_store_ref_may_repeat_its_own_namespace() -> None:
    result = parsed("aws", {"region": "r", "credentialsSecretRef": {"name": "creds", "namespace": HOME}})
    assert isinstance(result.provider, AwsSource)
    assert result.provider.credentials_secret == SecretRef(HOME, "creds")


def test_namespaced_store_ref_naming_another_namespace_is_refused() -> None:
    error = invalid("BotSecretStore", store("aws", {"region": "r", "credentialsSecretRef": {
        "name": "creds", "namespace": "kube-system"}}))
    assert error.field == "spec.provider.aws.credentialsSecretRef.namespace"


def test_namespaced_store_ca_ref_naming_another_namespace_is_refused() -> None:
    error = invalid("BotSecretStore", store("vault", {"address": "https://v", **TOKEN, "caSecretRef": {
        "name": "ca", "namespace": "other"}}))
    assert error.field == "spec.provider.vault.caSecretRef.namespace"


def test_cluster_store_refs_use_the_namespace_they_name() -> None:
    result = parse_store("ClusterBotSecretStore", cluster_store("vault", {
        "address": "https://v", "credentialsSecretRef": {"name": "tok", "namespace": "infra"},
        "caSecretRef": {"name": "ca", "namespace": "certs", "key": "root.pem"}}))
    assert result.kind == "ClusterBotSecretStore"
    assert result.name == "shared"
    assert result.namespace is None
    assert isinstance(result.provider, VaultSource)
    assert result.provider.credentials_secret == SecretRef("infra", "tok")
    assert result.provider.ca_secret == SecretRef("certs", "ca", "root.pem")


def test_cluster_store_ignores_a_namespace_in_its_metadata() -> None:
    body = cluster_store("aws", {"region": "r", "credentialsSecretRef": {"name": "creds", "namespace": "infra"}})
    body["metadata"]["namespace"] = HOME
    result = parse_store("ClusterBotSecretStore", body)
    assert result.namespace is None
    assert isinstance(result.provider, AwsSource)
    assert result.provider.credentials_secret == SecretRef("infra", "creds")


@pytest.mark.parametrize(("provider", "conf", "field"), [
    ("aws", {"region": "r", "credentialsSecretRef": {"name": "creds"}},
     "spec.provider.aws.credentialsSecretRef.namespace"),
    ("gcp", {"project": "p", "credentialsSecretRef": {"name": "sa"}}, "spec.provider.gcp.credentialsSecretRef.namespace"),
    ("vault", {"address": "https://v", "credentialsSecretRef": {"name": "tok"}},
     "spec.provider.vault.credentialsSecretRef.namespace"),
    ("vault", {"address": "https://v", "credentialsSecretRef": {"name": "tok", "namespace": "infra"},
               "caSecretRef": {"name": "ca"}}, "spec.provider.vault.caSecretRef.namespace"),
    ("aws", {"region": "r", "credentialsSecretRef": {"name": "creds", "namespace": ""}},
     "spec.provider.aws.credentialsSecretRef.namespace"),
])
def test_cluster_store_ref_without_namespace_is_refused(provider: str, conf: dict[str, Any], field: str) -> None:
    assert invalid("ClusterBotSecretStore", cluster_store(provider, conf)).field == field


# plain HTTP


@pytest.mark.parametrize(("provider", "conf", "field"), [
    ("vault", {"address": "http://vault:8200", **TOKEN}, "spec.provider.vault.address"),
    ("aws", {"region": "r", "endpoint": "http://moto:5000"}, "spec.provider.aws.endpoint"),
    ("aws", {"region": "r", "endpoint": "https://sm.example", "stsEndpoint": "http://sts:5000"},
     "spec.provider.aws.stsEndpoint"),
    ("gcp", {"project": "p", "endpoint": "http://gcp:8085"}, "spec.provider.gcp.endpoint"),
])
def test_plain_http_needs_insecure_allow_plain_http(provider: str, conf: dict[str, Any], field: str) -> None:
    error = invalid("BotSecretStore", store(provider, conf))
    assert error.field == field
    assert "insecureAllowPlainHTTP" in error.message
    assert invalid("BotSecretStore", store(provider, conf, insecureAllowPlainHTTP=False)).field == field
    cluster = _name_namespaces(cluster_store(provider, copy.deepcopy(conf)))
    assert invalid("ClusterBotSecretStore", cluster).field == field
    allowed = parsed(provider, conf, insecureAllowPlainHTTP=True)
    assert allowed.allow_plain_http is True
    assert plain_http_addresses(allowed.provider) == [field.rsplit(".", 1)[1]]


@pytest.mark.parametrize(("provider", "conf"), [
    ("vault", {"address": "https://vault:8200", **TOKEN}),
    ("aws", {"region": "r", "endpoint": "https://sm.example", "stsEndpoint": "https://sts.example"}),
    ("gcp", {"project": "p", "endpoint": "https://sm.example"}),
])
def test_https_needs_no_flag(provider: str, conf: dict[str, Any]) -> None:
    result = parsed(provider, conf)
    assert result.allow_plain_http is False
    assert plain_http_addresses(result.provider) == []


def test_plain_http_addresses_lists_every_http_field() -> None:
    assert plain_http_addresses(AwsSource(region="r", endpoint="http://a", sts_endpoint="http://b")) == [
        "endpoint", "stsEndpoint"]
    assert plain_http_addresses(AwsSource(region="r", endpoint="https://a", sts_endpoint="http://b")) == [
        "stsEndpoint"]
    assert plain_http_addresses(AwsSource(region="r")) == []
    assert plain_http_addresses(GcpSource(project="p", endpoint="http://g")) == ["endpoint"]
    assert plain_http_addresses(GcpSource(project="p", endpoint="https://g")) == []
    assert plain_http_addresses(VaultSource(address="http://v")) == ["address"]
    assert plain_http_addresses(VaultSource(address="https://v")) == []


# who may use a store


def test_namespaced_store_admits_only_its_own_namespace() -> None:
    result = parsed("aws", {"region": "r"}, conditions=[{"namespaceSelector": {}}])
    assert result.conditions == ()
    assert result.admits(HOME, {}) is True
    assert result.admits(HOME, {"team": "bots"}) is True
    assert result.admits("other", {}) is False
    assert result.admits("other", {"kubernetes.io/metadata.name": HOME}) is False
    assert result.needs_namespace_labels is False


def test_cluster_store_admits_listed_namespaces() -> None:
    result = parse_store("ClusterBotSecretStore", cluster_store("aws", {"region": "r"},
                                                                conditions=[{"namespaces": ["bots", "ops"]}]))
    assert result.conditions == (NamespaceCondition(frozenset({"bots", "ops"})),)
    assert result.admits("bots", {}) is True
    assert result.admits("ops", {"any": "thing"}) is True
    assert result.admits("other", {}) is False
    assert result.admits("bots-staging", {}) is False
    assert result.needs_namespace_labels is False


def test_cluster_store_admits_by_labels() -> None:
    result = parse_store("ClusterBotSecretStore", cluster_store("aws", {"region": "r"}, conditions=[
        {"namespaceSelector": {"matchLabels": {"team": "bots", "tier": 1}}}]))
    assert result.conditions == (NamespaceCondition(match_labels={"team": "bots", "tier": "1"}),)
    assert result.admits("x", {"team": "bots", "tier": "1", "extra": "y"}) is True
    assert result.admits("x", {"team": "bots"}) is False
    assert result.admits("x", {"team": "ops", "tier": "1"}) is False
    assert result.admits("x", {}) is False
    assert result.needs_namespace_labels is True


@pytest.mark.parametrize("selector", [{}, {"matchLabels": {}}, {"matchLabels": None}])
def test_cluster_store_empty_selector_admits_every_namespace(selector: dict[str, Any]) -> None:
    result = parse_store("ClusterBotSecretStore", cluster_store("aws", {"region": "r"}, conditions=[
        {"namespaceSelector": selector}]))
    assert result.admits("anything", {}) is True
    assert result.admits("kube-system", {"a": "b"}) is True
    assert result.needs_namespace_labels is False


def test_cluster_store_conditions_are_alternatives() -> None:
    result = parse_store("ClusterBotSecretStore", cluster_store("aws", {"region": "r"}, conditions=[
        {"namespaces": ["ops"]}, {"namespaceSelector": {"matchLabels": {"team": "bots"}}}]))
    assert result.admits("ops", {}) is True
    assert result.admits("x", {"team": "bots"}) is True
    assert result.admits("x", {"team": "ops"}) is False


def test_condition_with_names_and_selector_admits_either() -> None:
    condition = NamespaceCondition(frozenset({"ops"}), {"team": "bots"})
    assert condition.admits("ops", {}) is True
    assert condition.admits("x", {"team": "bots"}) is True
    assert condition.admits("x", {}) is False


def test_cluster_store_without_conditions_is_refused() -> None:
    body = cluster_store("aws", {"region": "r"})
    del body["spec"]["conditions"]
    error = invalid("ClusterBotSecretStore", body)
    assert error.field == "spec.conditions"
    assert "namespaceSelector: {}" in error.message


# every InvalidSpec names its field

Mutation = Callable[[dict[str, Any]], None]


def _provider(provider: str, conf: Any) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        body["spec"]["provider"] = {provider: copy.deepcopy(conf)}
    return apply


def _aws(**conf: Any) -> Mutation:
    return _provider("aws", {"region": "eu-west-1", **conf})


def _vault(**conf: Any) -> Mutation:
    return _provider("vault", {"address": "https://v", **conf})


def _spec(**values: Any) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        body["spec"].update(values)
    return apply


INVALID: list[tuple[str, Mutation, str]] = [
    ("no spec", lambda b: b.pop("spec"), "spec"),
    ("spec not an object", lambda b: b.update(spec="aws"), "spec"),
    ("no provider", lambda b: b["spec"].pop("provider"), "spec.provider"),
    ("provider not an object", _spec(provider="aws"), "spec.provider"),
    ("empty provider", _spec(provider={}), "spec.provider"),
    ("unknown provider", _spec(provider={"azure": {"vault": "x"}}), "spec.provider"),
    ("two providers", _spec(provider={"aws": {"region": "r"}, "gcp": {"project": "p"}}), "spec.provider"),
    ("aws not an object", _provider("aws", "eu-west-1"), "spec.provider.aws"),
    ("aws without region", _provider("aws", {"endpoint": "https://x"}), "spec.provider.aws.region"),
    ("aws region empty", _aws(region=""), "spec.provider.aws.region"),
    ("aws region not a string", _aws(region=1), "spec.provider.aws.region"),
    ("aws endpoint not a string", _aws(endpoint=5), "spec.provider.aws.endpoint"),
    ("aws credentialsSecretRef not an object", _aws(credentialsSecretRef="creds"),
     "spec.provider.aws.credentialsSecretRef"),
    ("aws credentialsSecretRef without name", _aws(credentialsSecretRef={}),
     "spec.provider.aws.credentialsSecretRef.name"),
    ("aws credentialsSecretRef name not a DNS name", _aws(credentialsSecretRef={"name": "Aws_Creds"}),
     "spec.provider.aws.credentialsSecretRef.name"),
    ("aws credentialsSecretRef key not a string", _aws(credentialsSecretRef={"name": "c", "key": 1}),
     "spec.provider.aws.credentialsSecretRef.key"),
    ("aws serviceAccountName not a DNS name", _aws(serviceAccountName="Bot SA", roleArn="arn:aws:iam::1:role/r"),
     "spec.provider.aws.serviceAccountName"),
    ("aws roleArn without serviceAccountName", _aws(roleArn="arn:aws:iam::1:role/r"), "spec.provider.aws"),
    ("aws serviceAccountName without roleArn", _aws(serviceAccountName="bot"), "spec.provider.aws"),
    ("aws web identity and credentialsSecretRef",
     _aws(roleArn="arn:aws:iam::1:role/r", serviceAccountName="bot", credentialsSecretRef={"name": "c"}),
     "spec.provider.aws"),
    ("aws stsEndpoint not a string", _aws(stsEndpoint=1), "spec.provider.aws.stsEndpoint"),
    ("gcp without project", _provider("gcp", {"location": "eu"}), "spec.provider.gcp.project"),
    ("gcp credentialsSecretRef without name", _provider("gcp", {"project": "p", "credentialsSecretRef": {"key": "k"}}),
     "spec.provider.gcp.credentialsSecretRef.name"),
    ("vault not an object", _provider("vault", ["https://v"]), "spec.provider.vault"),
    ("vault without address", _provider("vault", {"mount": "kv", **TOKEN}), "spec.provider.vault.address"),
    ("vault address without scheme", _vault(address="vault:8200", **TOKEN), "spec.provider.vault.address"),
    ("vault address with another scheme", _vault(address="ftp://vault", **TOKEN), "spec.provider.vault.address"),
    ("vault kvVersion 3", _vault(kvVersion=3, **TOKEN), "spec.provider.vault.kvVersion"),
    ("vault kvVersion string", _vault(kvVersion="2", **TOKEN), "spec.provider.vault.kvVersion"),
    ("vault kvVersion boolean", _vault(kvVersion=True, **TOKEN), "spec.provider.vault.kvVersion"),
    ("vault kvVersion float", _vault(kvVersion=2.0, **TOKEN), "spec.provider.vault.kvVersion"),
    ("vault auth not an object", _vault(auth="k8s", **TOKEN), "spec.provider.vault.auth"),
    ("vault auth role not a string", _vault(serviceAccountName="bot", auth={"kubernetes": {"role": 7}}),
     "spec.provider.vault.auth.kubernetes.role"),
    ("vault without any credentials", _vault(), "spec.provider.vault"),
    ("vault kubernetes auth without serviceAccountName", _vault(auth={"kubernetes": {"role": "bot"}}),
     "spec.provider.vault.auth.kubernetes"),
    ("vault kubernetes auth without role", _vault(serviceAccountName="bot", auth={"kubernetes": {"mount": "k"}}),
     "spec.provider.vault.auth.kubernetes"),
    ("vault insecureSkipVerify not a boolean", _vault(insecureSkipVerify="yes", **TOKEN),
     "spec.provider.vault.insecureSkipVerify"),
    ("vault caSecretRef not an object", _vault(caSecretRef="vault-ca", **TOKEN), "spec.provider.vault.caSecretRef"),
    ("vault caSecretRef without name", _vault(caSecretRef={"key": "ca.pem"}, **TOKEN),
     "spec.provider.vault.caSecretRef.name"),
    ("vault caBundle and caSecretRef", _vault(caBundle="PEM", caSecretRef={"name": "vault-ca"}, **TOKEN),
     "spec.provider.vault"),
    ("vault appRole mount not a string", _vault(auth={"appRole": {"mount": 5}}, **TOKEN),
     "spec.provider.vault.auth.appRole.mount"),
    ("insecureAllowPlainHTTP not a boolean", _spec(insecureAllowPlainHTTP="true"), "spec.insecureAllowPlainHTTP"),
]

CLUSTER_INVALID: list[tuple[str, Mutation, str]] = [
    ("conditions missing", lambda b: b["spec"].pop("conditions"), "spec.conditions"),
    ("conditions empty", _spec(conditions=[]), "spec.conditions"),
    ("conditions not a list", _spec(conditions={"namespaces": ["bots"]}), "spec.conditions"),
    ("condition not an object", _spec(conditions=["bots"]), "spec.conditions[0]"),
    ("condition with neither", _spec(conditions=[{"namespaces": ["a"]}, {}]), "spec.conditions[1]"),
    ("condition with an empty namespace list", _spec(conditions=[{"namespaces": []}]), "spec.conditions[0]"),
    ("namespaces not a list", _spec(conditions=[{"namespaces": "bots"}]), "spec.conditions[0].namespaces"),
    ("namespaces with a number", _spec(conditions=[{"namespaces": ["bots", 1]}]), "spec.conditions[0].namespaces"),
    ("namespaceSelector not an object", _spec(conditions=[{"namespaceSelector": "team=bots"}]),
     "spec.conditions[0].namespaceSelector"),
    ("matchLabels not an object", _spec(conditions=[{"namespaceSelector": {"matchLabels": ["team"]}}]),
     "spec.conditions[0].namespaceSelector.matchLabels"),
    ("provider error before conditions", _aws(region=3), "spec.provider.aws.region"),
]


def _check(kind: StoreKind, body: dict[str, Any], field: str) -> None:
    error = invalid(kind, body)
    assert error.field == field
    assert str(error) == f"{field}: {error.message}"
    assert error.message


@pytest.mark.parametrize(("mutate", "field"), [(m, f) for _, m, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_store_names_the_field(mutate: Mutation, field: str) -> None:
    body = store("aws", {"region": "eu-west-1"})
    parse_store("BotSecretStore", copy.deepcopy(body))
    mutate(body)
    _check("BotSecretStore", body, field)


@pytest.mark.parametrize(("mutate", "field"), [(m, f) for _, m, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_cluster_store_names_the_same_field(mutate: Mutation, field: str) -> None:
    body = cluster_store("aws", {"region": "eu-west-1"})
    mutate(body)
    _name_namespaces(body)
    _check("ClusterBotSecretStore", body, field)


def _name_namespaces(body: dict[str, Any]) -> dict[str, Any]:
    """Give every Secret ref a namespace, as a ClusterBotSecretStore must, so the same error shows."""
    spec = body.get("spec")
    provider = spec.get("provider") if isinstance(spec, dict) else None
    for conf in provider.values() if isinstance(provider, dict) else ():
        for key, ref in conf.items() if isinstance(conf, dict) else ():
            if key.endswith("SecretRef") and isinstance(ref, dict):
                ref.setdefault("namespace", "infra")
    return body
