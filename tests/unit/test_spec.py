"""botsecret.spec: parse_spec and parse_duration, pure."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from botsecret.remote import RemoteRef
from botsecret.spec import (
    DEFAULT_REFRESH_SECONDS,
    InvalidSpec,
    RolloutTarget,
    Source,
    StoreRef,
    parse_duration,
    parse_spec,
)


def base() -> dict[str, Any]:
    """A valid spec with one source and two data entries, for the error tests to break."""
    return {
        "sources": [{"name": "aws", "storeRef": {"name": "aws-store"}}],
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
    assert parsed.sources == (Source(name="aws", store=StoreRef(kind="BotSecretStore", name="aws-store")),)
    assert parsed.source("aws").store.kind == "BotSecretStore"
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


def test_sources_name_stores_of_either_kind() -> None:
    spec = base()
    spec["sources"] = [
        {"name": "local", "storeRef": {"kind": "BotSecretStore", "name": "vault-store"}},
        {"name": "shared", "storeRef": {"kind": "ClusterBotSecretStore", "name": "shared.gcp"}},
    ]
    for item in spec["data"]:
        item["source"] = "shared"
    parsed = parse_spec(spec, name="bot")
    assert parsed.source("local") == Source(name="local", store=StoreRef("BotSecretStore", "vault-store"))
    assert parsed.source("shared") == Source(name="shared", store=StoreRef("ClusterBotSecretStore", "shared.gcp"))
    assert [d.source for d in parsed.data] == ["shared", "shared"]
    with pytest.raises(KeyError):
        parsed.source("nope")


def test_store_ref_reads_as_kind_and_name() -> None:
    assert str(StoreRef("ClusterBotSecretStore", "shared")) == "ClusterBotSecretStore 'shared'"


def test_two_sources_may_name_the_same_store() -> None:
    spec = base()
    spec["sources"].append({"name": "again", "storeRef": {"name": "aws-store"}})
    for item in spec["data"]:
        item["source"] = "again"
    parsed = parse_spec(spec, name="bot")
    assert parsed.source("aws").store == parsed.source("again").store == StoreRef("BotSecretStore", "aws-store")


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
    spec["sources"].append({"name": "gcp", "storeRef": {"kind": "ClusterBotSecretStore", "name": "gcp"}})
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


def test_rollout_targets_of_other_kinds_carry_their_api_version() -> None:
    spec = base()
    spec["rollout"] = {"targets": [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "bot"},
        {"apiVersion": "example.com/v1beta2", "kind": "BotRunner", "selector": {"matchLabels": {"app": "bot"}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bot"},
    ]}
    parsed = parse_spec(spec, name="bot")
    assert parsed.rollout_targets == (
        RolloutTarget(kind="Rollout", name="bot", api_version="argoproj.io/v1alpha1"),
        RolloutTarget(kind="BotRunner", match_labels={"app": "bot"}, api_version="example.com/v1beta2"),
        RolloutTarget(kind="Deployment", name="bot", api_version="apps/v1"),
    )


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


# name fields


@pytest.mark.parametrize("remote_name", [
    "arn:aws:secretsmanager:eu-west-1:1:secret:prod/x-AbCd",
    "bots/telegram",
    "projects/p1/secrets/bot-token",
    "prod/bot_token+v2=a.b@c",
    "a" * 2048,
    "v1..2/x...y",
])
def test_remote_names_of_every_provider_are_accepted(remote_name: str) -> None:
    spec = base()
    spec["data"][0]["remoteRef"]["name"] = remote_name
    spec["dataFrom"] = [{"remoteRef": {"name": remote_name}}]
    parsed = parse_spec(spec, name="bot")
    assert parsed.data[0].remote == RemoteRef(remote_name)
    assert parsed.data_from[0].remote == RemoteRef(remote_name)


@pytest.mark.parametrize("target_name", ["bot-env", "bot.env", "0bot", "a" * 253])
def test_dns_target_names_are_accepted(target_name: str) -> None:
    spec = base()
    spec["target"] = {"name": target_name}
    assert parse_spec(spec, name="bot").target.name == target_name


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
    spec["sources"].append({"name": "gcp", "storeRef": {"name": "gcp-store"}})


INVALID: list[tuple[str, Mutation, str]] = [
    ("no sources", _delete(["sources"]), "spec.sources"),
    ("empty sources", _set(["sources"], []), "spec.sources"),
    ("sources not a list", _set(["sources"], {"name": "aws"}), "spec.sources"),
    ("source not an object", _set(["sources", 0], "aws"), "spec.sources[0]"),
    ("source without name", _delete(["sources", 0, "name"]), "spec.sources[0].name"),
    ("source with empty name", _set(["sources", 0, "name"], ""), "spec.sources[0].name"),
    ("source storeRef missing", _delete(["sources", 0, "storeRef"]), "spec.sources[0].storeRef"),
    ("source storeRef null", _set(["sources", 0, "storeRef"], None), "spec.sources[0].storeRef"),
    ("source storeRef not an object", _set(["sources", 0, "storeRef"], "aws-store"), "spec.sources[0].storeRef"),
    ("storeRef kind unknown", _set(["sources", 0, "storeRef", "kind"], "SecretStore"), "spec.sources[0].storeRef.kind"),
    ("storeRef kind lower case", _set(["sources", 0, "storeRef", "kind"], "botsecretstore"),
     "spec.sources[0].storeRef.kind"),
    ("storeRef kind null", _set(["sources", 0, "storeRef", "kind"], None), "spec.sources[0].storeRef.kind"),
    ("storeRef name missing", _delete(["sources", 0, "storeRef", "name"]), "spec.sources[0].storeRef.name"),
    ("storeRef name empty", _set(["sources", 0, "storeRef", "name"], ""), "spec.sources[0].storeRef.name"),
    ("storeRef name not a string", _set(["sources", 0, "storeRef", "name"], 7), "spec.sources[0].storeRef.name"),
    ("storeRef name upper case", _set(["sources", 0, "storeRef", "name"], "AwsStore"), "spec.sources[0].storeRef.name"),
    ("storeRef name with underscore", _set(["sources", 0, "storeRef", "name"], "aws_store"),
     "spec.sources[0].storeRef.name"),
    ("storeRef name with a slash", _set(["sources", 0, "storeRef", "name"], "ns/aws-store"),
     "spec.sources[0].storeRef.name"),
    ("storeRef name ending in a dash", _set(["sources", 0, "storeRef", "name"], "aws-"), "spec.sources[0].storeRef.name"),
    ("storeRef name too long", _set(["sources", 0, "storeRef", "name"], "a" * 254), "spec.sources[0].storeRef.name"),
    ("inline aws refused", _set(["sources", 0, "aws"], {"region": "eu-west-1"}), "spec.sources[0].aws"),
    ("inline gcp refused", _set(["sources", 0, "gcp"], {"project": "p"}), "spec.sources[0].gcp"),
    ("inline vault refused", _set(["sources", 0, "vault"], {"address": "https://v"}), "spec.sources[0].vault"),
    ("inline aws without storeRef refused", _set(["sources", 0], {"name": "aws", "aws": {"region": "eu-west-1"}}),
     "spec.sources[0].aws"),
    ("second source has the error", lambda s: s["sources"].append({"name": "gcp", "storeRef": {"name": "Bad"}}),
     "spec.sources[1].storeRef.name"),
    ("second source inline", lambda s: s["sources"].append({"name": "gcp", "gcp": {"project": "p"}}),
     "spec.sources[1].gcp"),
    ("duplicate source names", lambda s: s["sources"].append({"name": "aws", "storeRef": {"name": "other"}}),
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
    ("target name with a slash", _set(["target"], {"name": "bots/env"}), "spec.target.name"),
    ("target name dot dot", _set(["target"], {"name": ".."}), "spec.target.name"),
    ("target name with a dot dot", _set(["target"], {"name": "bot..env"}), "spec.target.name"),
    ("target name upper case", _set(["target"], {"name": "Bot-Env"}), "spec.target.name"),
    ("target name empty", _set(["target"], {"name": ""}), "spec.target.name"),
    ("target name too long", _set(["target"], {"name": "a" * 254}), "spec.target.name"),
    ("remoteRef name with a dot dot segment", _set(["data", 1, "remoteRef", "name"], "prod/../admin"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name dot dot", _set(["data", 1, "remoteRef", "name"], ".."), "spec.data[1].remoteRef.name"),
    ("remoteRef name with a dot segment", _set(["data", 1, "remoteRef", "name"], "prod/./api"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name with two leading slashes", _set(["data", 1, "remoteRef", "name"], "//prod/api"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name with a trailing slash", _set(["data", 1, "remoteRef", "name"], "prod/api/"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name with a double slash", _set(["data", 1, "remoteRef", "name"], "prod//api"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name with a space", _set(["data", 1, "remoteRef", "name"], "prod api"), "spec.data[1].remoteRef.name"),
    ("remoteRef name with a newline", _set(["data", 1, "remoteRef", "name"], "prod/api\n"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name with a query", _set(["data", 1, "remoteRef", "name"], "prod/api?version=1"),
     "spec.data[1].remoteRef.name"),
    ("remoteRef name empty", _set(["data", 1, "remoteRef", "name"], ""), "spec.data[1].remoteRef.name"),
    ("remoteRef name too long", _set(["data", 1, "remoteRef", "name"], "a" * 2049), "spec.data[1].remoteRef.name"),
    ("dataFrom remoteRef name with a dot dot segment", _set(["dataFrom"], [{"remoteRef": {"name": "../x"}}]),
     "spec.dataFrom[0].remoteRef.name"),
    ("creationPolicy unknown", _set(["target"], {"creationPolicy": "Adopt"}), "spec.target.creationPolicy"),
    ("deletionPolicy unknown", _set(["target"], {"deletionPolicy": "Purge"}), "spec.target.deletionPolicy"),
    ("target labels not an object", _set(["target"], {"labels": ["a"]}), "spec.target.labels"),
    ("target annotations not an object", _set(["target"], {"annotations": "a=b"}), "spec.target.annotations"),
    ("rollout not an object", _set(["rollout"], ["Deployment"]), "spec.rollout"),
    ("rollout targets not a list", _set(["rollout"], {"targets": {"kind": "Deployment"}}), "spec.rollout.targets"),
    ("rollout target not an object", _set(["rollout"], {"targets": ["Deployment/bot"]}), "spec.rollout.targets[0]"),
    ("rollout target kind not a kind name", _set(["rollout"], {"targets": [{"kind": "pod", "name": "bot"}]}),
     "spec.rollout.targets[0].kind"),
    ("rollout target of another kind without apiVersion", _set(["rollout"], {"targets": [{"kind": "Rollout", "name": "bot"}]}),
     "spec.rollout.targets[0].apiVersion"),
    ("rollout target apiVersion of the core group",
     _set(["rollout"], {"targets": [{"apiVersion": "v1", "kind": "ReplicationController", "name": "bot"}]}),
     "spec.rollout.targets[0].apiVersion"),
    ("rollout target Deployment of another group",
     _set(["rollout"], {"targets": [{"apiVersion": "example.com/v1", "kind": "Deployment", "name": "bot"}]}),
     "spec.rollout.targets[0].apiVersion"),
    ("rollout target apiVersion not a string",
     _set(["rollout"], {"targets": [{"apiVersion": 1, "kind": "Rollout", "name": "bot"}]}),
     "spec.rollout.targets[0].apiVersion"),
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



@pytest.mark.parametrize("policy", ["Periodic", "OnChange", "CreatedOnce"])
def test_refresh_policy(policy: str) -> None:
    assert parse_spec({**base(), "refreshPolicy": policy}, name="bot").refresh_policy == policy


def test_refresh_policy_defaults_to_periodic_and_names_the_field() -> None:
    assert parse_spec(base(), name="bot").refresh_policy == "Periodic"
    assert invalid({**base(), "refreshPolicy": "Sometimes"}).field == "spec.refreshPolicy"
