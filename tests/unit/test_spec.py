"""botsecret.spec: parse_spec and parse_duration, pure."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from botsecret.providers.base import RemoteRef
from botsecret.spec import (
    DEFAULT_REFRESH_SECONDS,
    AwsSource,
    GcpSource,
    InvalidSpec,
    RolloutTarget,
    VaultSource,
    parse_duration,
    parse_spec,
)


def base() -> dict[str, Any]:
    """A valid spec with one source and two data entries, for the error tests to break."""
    return {
        "sources": [{"name": "aws", "aws": {"region": "eu-west-1"}}],
        "data": [
            {"key": "TOKEN", "remoteRef": {"name": "prod/token"}},
            {"key": "API_KEY", "remoteRef": {"name": "prod/api", "property": "key"}},
        ],
    }


def invalid(spec: dict[str, Any]) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(spec, name="bot")
    return caught.value


# parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1m5s", 65.0),
        ("2h45m10s500ms", 2 * 3600 + 45 * 60 + 10.5),
        ("0s", 0.0),
    ],
)
def test_parse_duration_accepts_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "spec.x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "1h 30m", " 1h", "1h ", "1h30", "-1s", "1.s", "1H", "s1", "1h-"])
def test_parse_duration_refuses_anything_else_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_duration(text, "spec.some.field")
    assert caught.value.field == "spec.some.field"
    assert str(caught.value).startswith("spec.some.field: ")


@pytest.mark.parametrize("value", [None, 30, 1.5, ["1h"]])
def test_parse_duration_refuses_non_strings(value: Any) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_duration(value, "spec.refreshInterval")
    assert caught.value.field == "spec.refreshInterval"


# defaults


def test_minimal_spec_gets_every_default() -> None:
    parsed = parse_spec(base(), name="my-bot")
    assert parsed.sources[0].name == "aws"
    assert parsed.sources[0].kind == "aws"
    assert parsed.sources[0].provider == AwsSource(region="eu-west-1")
    assert parsed.sources[0].provider.audience == "sts.amazonaws.com"
    assert [d.key for d in parsed.data] == ["TOKEN", "API_KEY"]
    assert parsed.data[0].remote == RemoteRef(name="prod/token", version=None)
    assert parsed.data[0].property is None
    assert parsed.data[1].property == "key"
    assert parsed.data_from == ()
    assert parsed.refresh_seconds == DEFAULT_REFRESH_SECONDS == 3600.0
    assert parsed.required is None
    assert parsed.rollout_targets == ()
    assert parsed.debounce_seconds == 10.0
    target = parsed.target
    assert target.name == "my-bot"
    assert target.type == "Opaque"
    assert dict(target.labels) == {}
    assert dict(target.annotations) == {}
    assert target.creation_policy == "Owner"
    assert target.deletion_policy == "Delete"


def test_vault_and_gcp_defaults() -> None:
    spec = base()
    spec["sources"] = [
        {"name": "vault", "vault": {"address": "https://vault:8200", "credentialsSecretRef": {"name": "vt"}}},
        {"name": "gcp", "gcp": {"project": "p1"}},
    ]
    for item in spec["data"]:
        item["source"] = "vault"
    parsed = parse_spec(spec, name="bot")
    vault = parsed.source("vault").provider
    assert vault == VaultSource(address="https://vault:8200", credentials_secret="vt")
    assert isinstance(vault, VaultSource)
    assert (vault.mount, vault.kv_version, vault.auth_mount, vault.audience) == ("secret", 2, "kubernetes", "vault")
    assert (vault.approle_mount, vault.ca_secret, vault.ca_secret_key) == ("approle", None, "ca.crt")
    assert vault.insecure_skip_verify is False
    assert vault.auth_role is None
    assert vault.namespace is None
    assert parsed.source("gcp").provider == GcpSource(project="p1")
    assert parsed.source("gcp").kind == "gcp"
    with pytest.raises(KeyError):
        parsed.source("nope")


def test_full_source_configs_are_read() -> None:
    spec = base()
    spec["sources"] = [
        {"name": "aws", "aws": {"region": "us-east-1", "endpoint": "http://127.0.0.1:5000",
                                "serviceAccountName": "bot", "roleArn": "arn:aws:iam::1:role/r", "audience": "aud",
                                "stsEndpoint": "http://127.0.0.1:5001"}},
        {"name": "aws-keys", "aws": {"region": "eu-west-1", "credentialsSecretRef": {"name": "aws-creds"}}},
        {"name": "vault", "vault": {"address": "http://v", "mount": "kv", "kvVersion": 1, "namespace": "ns",
                                    "caBundle": "PEM", "serviceAccountName": "bot",
                                    "auth": {"kubernetes": {"role": "bot", "mount": "k8s", "audience": "va"}}}},
        {"name": "vault-approle", "vault": {"address": "https://v", "credentialsSecretRef": {"name": "approle"},
                                            "auth": {"appRole": {"mount": "ar"}},
                                            "caSecretRef": {"name": "vault-ca", "key": "root.pem"},
                                            "insecureSkipVerify": True}},
    ]
    for item in spec["data"]:
        item["source"] = "aws"
    parsed = parse_spec(spec, name="bot")
    assert parsed.source("aws").provider == AwsSource(
        region="us-east-1", endpoint="http://127.0.0.1:5000", service_account_name="bot",
        role_arn="arn:aws:iam::1:role/r", audience="aud", sts_endpoint="http://127.0.0.1:5001")
    assert parsed.source("aws-keys").provider == AwsSource(region="eu-west-1", credentials_secret="aws-creds")
    assert parsed.source("vault").provider == VaultSource(
        address="http://v", mount="kv", kv_version=1, namespace="ns", ca_bundle="PEM", service_account_name="bot",
        auth_role="bot", auth_mount="k8s", audience="va")
    assert parsed.source("vault-approle").provider == VaultSource(
        address="https://v", credentials_secret="approle", approle_mount="ar", ca_secret="vault-ca",
        ca_secret_key="root.pem", insecure_skip_verify=True)


def test_remote_version_is_kept_as_a_string() -> None:
    spec = base()
    spec["data"][0]["remoteRef"]["version"] = 3
    spec["data"][1]["remoteRef"]["version"] = "AWSPREVIOUS"
    parsed = parse_spec(spec, name="bot")
    assert parsed.data[0].remote == RemoteRef("prod/token", "3")
    assert parsed.data[1].remote == RemoteRef("prod/api", "AWSPREVIOUS")


def test_refresh_interval_and_required_are_read() -> None:
    spec = base()
    spec["refreshInterval"] = "1h30m"
    spec["required"] = ["TOKEN"]
    parsed = parse_spec(spec, name="bot")
    assert parsed.refresh_seconds == 5400.0
    assert parsed.required == ("TOKEN",)


def test_refresh_interval_bounds_are_inclusive() -> None:
    for text, seconds in (("5s", 5.0), ("168h", 168 * 3600.0)):
        spec = base()
        spec["refreshInterval"] = text
        assert parse_spec(spec, name="bot").refresh_seconds == seconds


def test_empty_required_list_means_nothing_required() -> None:
    spec = base()
    spec["required"] = []
    assert parse_spec(spec, name="bot").required == ()


# source defaulting


def test_single_source_is_the_default_for_data_and_data_from() -> None:
    spec = base()
    spec["sources"][0]["name"] = "only"
    spec["dataFrom"] = [{"remoteRef": {"name": "prod/bundle"}}]
    parsed = parse_spec(spec, name="bot")
    assert [d.source for d in parsed.data] == ["only", "only"]
    assert [d.source for d in parsed.data_from] == ["only"]
    assert parsed.data_from[0].remote == RemoteRef("prod/bundle")


def test_explicit_sources_with_several_sources() -> None:
    spec = base()
    spec["sources"].append({"name": "gcp", "gcp": {"project": "p"}})
    spec["data"][0]["source"] = "gcp"
    spec["data"][1]["source"] = "aws"
    spec["dataFrom"] = [{"source": "gcp", "remoteRef": {"name": "bundle"}}]
    parsed = parse_spec(spec, name="bot")
    assert [d.source for d in parsed.data] == ["gcp", "aws"]
    assert parsed.data_from[0].source == "gcp"


def test_data_from_alone_is_enough() -> None:
    spec = base()
    del spec["data"]
    spec["dataFrom"] = [{"remoteRef": {"name": "bundle"}}]
    parsed = parse_spec(spec, name="bot")
    assert parsed.data == ()
    assert len(parsed.data_from) == 1


# target policies


@pytest.mark.parametrize(("creation", "deletion"), [("Owner", "Delete"), ("Orphan", "Retain"), ("Merge", "Retain")])
def test_deletion_policy_defaults_follow_creation_policy(creation: str, deletion: str) -> None:
    spec = base()
    spec["target"] = {"creationPolicy": creation}
    target = parse_spec(spec, name="bot").target
    assert target.creation_policy == creation
    assert target.deletion_policy == deletion


@pytest.mark.parametrize(("creation", "deletion"), [("Owner", "Retain"), ("Orphan", "Delete"), ("Merge", "Delete")])
def test_explicit_deletion_policy_wins(creation: str, deletion: str) -> None:
    spec = base()
    spec["target"] = {"creationPolicy": creation, "deletionPolicy": deletion}
    assert parse_spec(spec, name="bot").target.deletion_policy == deletion


def test_target_fields_are_read_and_labels_stringified() -> None:
    spec = base()
    spec["target"] = {"name": "bot-env", "type": "kubernetes.io/dockerconfigjson",
                      "labels": {"team": "bots", "tier": 1}, "annotations": {"a": "b"}}
    target = parse_spec(spec, name="bot").target
    assert target.name == "bot-env"
    assert target.type == "kubernetes.io/dockerconfigjson"
    assert dict(target.labels) == {"team": "bots", "tier": "1"}
    assert dict(target.annotations) == {"a": "b"}


@pytest.mark.parametrize("secret_type", ["kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"])
def test_forbidden_target_types(secret_type: str) -> None:
    spec = base()
    spec["target"] = {"type": secret_type}
    error = invalid(spec)
    assert error.field == "spec.target.type"
    assert secret_type in error.message


# rollout targets


def test_rollout_targets_by_name_and_selector() -> None:
    spec = base()
    spec["rollout"] = {
        "targets": [
            {"kind": "Deployment", "name": "bot"},
            {"kind": "StatefulSet", "selector": {"matchLabels": {"app": "bot", "shard": 2}}},
            {"kind": "DaemonSet", "name": "agent"},
        ],
        "debounce": "30s",
    }
    parsed = parse_spec(spec, name="bot")
    assert parsed.rollout_targets == (
        RolloutTarget(kind="Deployment", name="bot"),
        RolloutTarget(kind="StatefulSet", match_labels={"app": "bot", "shard": "2"}),
        RolloutTarget(kind="DaemonSet", name="agent"),
    )
    assert parsed.debounce_seconds == 30.0


def test_rollout_without_debounce_keeps_the_default() -> None:
    spec = base()
    spec["rollout"] = {"targets": [{"kind": "Deployment", "name": "bot"}]}
    parsed = parse_spec(spec, name="bot")
    assert parsed.debounce_seconds == 10.0
    assert parsed.rollout_targets[0].match_labels is None
    assert parsed.progress_deadline_seconds is None


def test_rollout_progress_deadline_is_a_duration_of_at_least_a_second() -> None:
    spec = base()
    spec["rollout"] = {"targets": [{"kind": "StatefulSet", "name": "bot"}], "progressDeadline": "2m30s"}
    assert parse_spec(spec, name="bot").progress_deadline_seconds == 150.0
    for bad in ("0s", "500ms", "soon"):
        spec["rollout"]["progressDeadline"] = bad
        with pytest.raises(InvalidSpec) as refused:
            parse_spec(spec, name="bot")
        assert refused.value.field == "spec.rollout.progressDeadline"


# every InvalidSpec names its field

Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        node: Any = spec
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return apply


def _delete(path: list[Any]) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        node: Any = spec
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
    return apply


def _add_source(spec: dict[str, Any]) -> None:
    spec["sources"].append({"name": "gcp", "gcp": {"project": "p"}})


VAULT = {"name": "aws", "vault": {"address": "https://v"}}
TOKEN = {"credentialsSecretRef": {"name": "vault-token"}}


def _vault(**conf: Any) -> Mutation:
    return _set(["sources", 0], {"name": "aws", "vault": {"address": "https://v", **conf}})


def _aws(**conf: Any) -> Mutation:
    return _set(["sources", 0], {"name": "aws", "aws": {"region": "eu-west-1", **conf}})


INVALID: list[tuple[str, Mutation, str]] = [
    ("no sources", _delete(["sources"]), "spec.sources"),
    ("empty sources", _set(["sources"], []), "spec.sources"),
    ("sources not a list", _set(["sources"], {"name": "aws"}), "spec.sources"),
    ("source not an object", _set(["sources", 0], "aws"), "spec.sources[0]"),
    ("source without name", _delete(["sources", 0, "name"]), "spec.sources[0].name"),
    ("source with empty name", _set(["sources", 0, "name"], ""), "spec.sources[0].name"),
    ("source with two providers", _set(["sources", 0, "gcp"], {"project": "p"}), "spec.sources[0]"),
    ("source without provider", _delete(["sources", 0, "aws"]), "spec.sources[0]"),
    ("aws not an object", _set(["sources", 0, "aws"], "eu-west-1"), "spec.sources[0].aws"),
    ("aws without region", _set(["sources", 0, "aws"], {"endpoint": "http://x"}), "spec.sources[0].aws.region"),
    ("aws region not a string", _set(["sources", 0, "aws", "region"], 1), "spec.sources[0].aws.region"),
    ("aws endpoint not a string", _set(["sources", 0, "aws", "endpoint"], 5), "spec.sources[0].aws.endpoint"),
    ("aws credentialsSecretRef not an object", _set(["sources", 0, "aws", "credentialsSecretRef"], "creds"),
     "spec.sources[0].aws.credentialsSecretRef"),
    ("aws credentialsSecretRef without name", _set(["sources", 0, "aws", "credentialsSecretRef"], {}),
     "spec.sources[0].aws.credentialsSecretRef.name"),
    ("gcp without project", _set(["sources", 0], {"name": "aws", "gcp": {"location": "eu"}}),
     "spec.sources[0].gcp.project"),
    ("vault without address", _set(["sources", 0], {"name": "aws", "vault": {"mount": "kv"}}),
     "spec.sources[0].vault.address"),
    ("vault kvVersion 3", _set(["sources", 0], {**VAULT, "vault": {"address": "https://v", "kvVersion": 3}}),
     "spec.sources[0].vault.kvVersion"),
    ("vault kvVersion string", _set(["sources", 0], {**VAULT, "vault": {"address": "https://v", "kvVersion": "2"}}),
     "spec.sources[0].vault.kvVersion"),
    ("vault auth not an object", _set(["sources", 0], {**VAULT, "vault": {"address": "https://v", "auth": "k8s"}}),
     "spec.sources[0].vault.auth"),
    ("vault auth role not a string",
     _set(["sources", 0], {**VAULT, "vault": {"address": "https://v", "auth": {"kubernetes": {"role": 7}}}}),
     "spec.sources[0].vault.auth.kubernetes.role"),
    ("aws roleArn without serviceAccountName", _aws(roleArn="arn:aws:iam::1:role/r"), "spec.sources[0].aws"),
    ("aws serviceAccountName without roleArn", _aws(serviceAccountName="bot"), "spec.sources[0].aws"),
    ("aws web identity and credentialsSecretRef",
     _aws(roleArn="arn:aws:iam::1:role/r", serviceAccountName="bot", credentialsSecretRef={"name": "c"}),
     "spec.sources[0].aws"),
    ("aws stsEndpoint not a string", _aws(stsEndpoint=1), "spec.sources[0].aws.stsEndpoint"),
    ("vault without any credentials", _vault(), "spec.sources[0].vault"),
    ("vault kubernetes auth without serviceAccountName", _vault(auth={"kubernetes": {"role": "bot"}}),
     "spec.sources[0].vault.auth.kubernetes"),
    ("vault kubernetes auth without role", _vault(serviceAccountName="bot", auth={"kubernetes": {"mount": "k"}}),
     "spec.sources[0].vault.auth.kubernetes"),
    ("vault insecureSkipVerify not a boolean", _vault(insecureSkipVerify="yes", **TOKEN),
     "spec.sources[0].vault.insecureSkipVerify"),
    ("vault caSecretRef not an object", _vault(caSecretRef="vault-ca", **TOKEN), "spec.sources[0].vault.caSecretRef"),
    ("vault caSecretRef without name", _vault(caSecretRef={"key": "ca.pem"}, **TOKEN),
     "spec.sources[0].vault.caSecretRef.name"),
    ("vault appRole mount not a string", _vault(auth={"appRole": {"mount": 5}}, **TOKEN),
     "spec.sources[0].vault.auth.appRole.mount"),
    ("second source has the error", lambda s: s["sources"].append({"name": "gcp", "gcp": {}}),
     "spec.sources[1].gcp.project"),
    ("duplicate source names", lambda s: s["sources"].append({"name": "aws", "gcp": {"project": "p"}}),
     "spec.sources"),
    ("data not a list", _set(["data"], {"key": "A"}), "spec.data"),
    ("data entry not an object", _set(["data", 1], "API_KEY"), "spec.data[1]"),
    ("data key missing", _delete(["data", 1, "key"]), "spec.data[1].key"),
    ("data key empty", _set(["data", 1, "key"], ""), "spec.data[1].key"),
    ("data key with a slash", _set(["data", 1, "key"], "a/b"), "spec.data[1].key"),
    ("data key with a space", _set(["data", 1, "key"], "API KEY"), "spec.data[1].key"),
    ("data key too long", _set(["data", 1, "key"], "k" * 254), "spec.data[1].key"),
    ("data remoteRef missing", _delete(["data", 1, "remoteRef"]), "spec.data[1].remoteRef"),
    ("data remoteRef not an object", _set(["data", 1, "remoteRef"], "prod/api"), "spec.data[1].remoteRef"),
    ("data remoteRef without name", _delete(["data", 1, "remoteRef", "name"]), "spec.data[1].remoteRef.name"),
    ("data remoteRef property not a string", _set(["data", 1, "remoteRef", "property"], 3),
     "spec.data[1].remoteRef.property"),
    ("data source unknown", _set(["data", 1, "source"], "gcp"), "spec.data[1].source"),
    ("data source missing with two sources", _add_source, "spec.data[0].source"),
    ("duplicate data keys", _set(["data", 1, "key"], "TOKEN"), "spec.data"),
    ("dataFrom not a list", _set(["dataFrom"], {"remoteRef": {"name": "x"}}), "spec.dataFrom"),
    ("dataFrom entry not an object", _set(["dataFrom"], ["bundle"]), "spec.dataFrom[0]"),
    ("dataFrom remoteRef missing", _set(["dataFrom"], [{"remoteRef": {"name": "a"}}, {"source": "aws"}]),
     "spec.dataFrom[1].remoteRef"),
    ("dataFrom source unknown", _set(["dataFrom"], [{"source": "gcp", "remoteRef": {"name": "a"}}]),
     "spec.dataFrom[0].source"),
    ("neither data nor dataFrom", _delete(["data"]), "spec.data"),
    ("refreshInterval not a duration", _set(["refreshInterval"], "1d"), "spec.refreshInterval"),
    ("refreshInterval a number", _set(["refreshInterval"], 60), "spec.refreshInterval"),
    ("refreshInterval too short", _set(["refreshInterval"], "4s"), "spec.refreshInterval"),
    ("refreshInterval too long", _set(["refreshInterval"], "168h1s"), "spec.refreshInterval"),
    ("required not a list", _set(["required"], "TOKEN"), "spec.required"),
    ("required with a number", _set(["required"], ["TOKEN", 1]), "spec.required"),
    ("target not an object", _set(["target"], "bot-env"), "spec.target"),
    ("target name not a string", _set(["target"], {"name": 1}), "spec.target.name"),
    ("creationPolicy unknown", _set(["target"], {"creationPolicy": "Adopt"}), "spec.target.creationPolicy"),
    ("deletionPolicy unknown", _set(["target"], {"deletionPolicy": "Purge"}), "spec.target.deletionPolicy"),
    ("target labels not an object", _set(["target"], {"labels": ["a"]}), "spec.target.labels"),
    ("target annotations not an object", _set(["target"], {"annotations": "a=b"}), "spec.target.annotations"),
    ("rollout not an object", _set(["rollout"], ["Deployment"]), "spec.rollout"),
    ("rollout targets not a list", _set(["rollout"], {"targets": {"kind": "Deployment"}}), "spec.rollout.targets"),
    ("rollout target not an object", _set(["rollout"], {"targets": ["Deployment/bot"]}), "spec.rollout.targets[0]"),
    ("rollout target kind unknown", _set(["rollout"], {"targets": [{"kind": "Pod", "name": "bot"}]}),
     "spec.rollout.targets[0].kind"),
    ("rollout target kind missing",
     _set(["rollout"], {"targets": [{"kind": "Deployment", "name": "a"}, {"name": "bot"}]}),
     "spec.rollout.targets[1].kind"),
    ("rollout target with name and selector",
     _set(["rollout"], {"targets": [{"kind": "Deployment", "name": "bot", "selector": {"matchLabels": {"a": "b"}}}]}),
     "spec.rollout.targets[0]"),
    ("rollout target with neither", _set(["rollout"], {"targets": [{"kind": "Deployment"}]}), "spec.rollout.targets[0]"),
    ("rollout target name not a string", _set(["rollout"], {"targets": [{"kind": "Deployment", "name": 3}]}),
     "spec.rollout.targets[0].name"),
    ("rollout selector matchLabels not an object",
     _set(["rollout"], {"targets": [{"kind": "Deployment", "selector": {"matchLabels": "app=bot"}}]}),
     "spec.rollout.targets[0].selector.matchLabels"),
    ("rollout debounce not a duration", _set(["rollout"], {"targets": [], "debounce": "soon"}), "spec.rollout.debounce"),
    ("rollout debounce null", _set(["rollout"], {"debounce": None}), "spec.rollout.debounce"),
]


@pytest.mark.parametrize(("mutate", "field"), [(m, f) for _, m, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_spec_names_the_field(mutate: Mutation, field: str) -> None:
    spec = copy.deepcopy(base())
    mutate(spec)
    error = invalid(spec)
    assert error.field == field
    assert str(error) == f"{field}: {error.message}"
    assert error.message


def test_invalid_spec_is_a_value_error() -> None:
    assert issubclass(InvalidSpec, ValueError)


# Bugs found while writing these tests: each one is the behaviour the module should have.


def test_data_key_with_trailing_newline_is_refused() -> None:
    spec = base()
    spec["data"][0]["key"] = "TOKEN\n"
    assert invalid(spec).field == "spec.data[0].key"


@pytest.mark.parametrize("key", [".", "..", "..data"])
def test_data_key_kubernetes_refuses_is_refused(key: str) -> None:
    spec = base()
    spec["data"][0]["key"] = key
    assert invalid(spec).field == "spec.data[0].key"


def test_rollout_selector_not_an_object_is_invalid_spec() -> None:
    spec = base()
    spec["rollout"] = {"targets": [{"kind": "Deployment", "selector": "app=bot"}]}
    assert invalid(spec).field == "spec.rollout.targets[0].selector"


def test_vault_kv_version_boolean_is_refused() -> None:
    spec = base()
    spec["sources"][0] = {"name": "aws", "vault": {"address": "https://v", "kvVersion": True, **TOKEN}}
    assert invalid(spec).field == "spec.sources[0].vault.kvVersion"
