"""spec.dataFrom[].find: parsing, rewrite rules, the providers' list filters and assembling the matches."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from botsecret.assemble import assemble, found_key, plan_fetches
from botsecret.find_errors import KeyConflict
from botsecret.providers.aws import list_filters
from botsecret.providers.base import Fetched, NotFound, RemoteRef, Unavailable
from botsecret.providers.gcp import list_filter
from botsecret.remote import FindQuery
from botsecret.secrets import Owner, needs_write
from botsecret.spec import InvalidSpec, Target, parse_spec
from botsecret.values import SecretValue


def spec_with(*data_from: dict[str, Any]) -> Any:
    return parse_spec({"sources": [{"name": "aws", "storeRef": {"name": "store"}}], "dataFrom": list(data_from)},
                      name="bot")


def test_a_find_entry_parses_apart_from_the_extract_entries_and_keeps_its_index() -> None:
    spec = spec_with({"remoteRef": {"name": "bundle"}},
                     {"find": {"path": "bots/", "tags": {"team": "bots"}, "maxMatches": 5},
                      "rewrite": [{"stripPrefix": "bots/"}]})
    assert [d.index for d in spec.data_from] == [0]
    [item] = spec.finds
    assert item.index == 1 and item.query == FindQuery(prefix="bots/", tags={"team": "bots"}, max_matches=5)
    assert item.key_for("bots/X_API_KEY") == "X_API_KEY"


@pytest.mark.parametrize(("target", "expected"), [
    ("$1", "API_KEY"), ("${1}_x", "API_KEY_x"), ("${leaf}", "API_KEY"), ("$$1", "$1"), ("a\\b$1", "a\\bAPI_KEY"),
])
def test_rewrite_targets_are_go_style(target: str, expected: str) -> None:
    spec = spec_with({"find": {"path": "x"}, "rewrite": [{"regexp": {"source": "^bots/X_(?P<leaf>.*)$",
                                                                       "target": target}}]})
    assert spec.finds[0].key_for("bots/X_API_KEY") == expected


@pytest.mark.parametrize(("entry", "field"), [
    ({"find": {}}, "spec.dataFrom[0].find"),
    ({"find": {"path": "a"}, "remoteRef": {"name": "b"}}, "spec.dataFrom[0]"),
    ({"find": {"name": {"regexp": "("}}}, "spec.dataFrom[0].find.name.regexp"),
    ({"find": {"path": "a", "maxMatches": 1001}}, "spec.dataFrom[0].find.maxMatches"),
    ({"find": {"path": "a", "maxMatches": 0}}, "spec.dataFrom[0].find.maxMatches"),
    ({"find": {"path": "a"}, "rewrite": [{"regexp": {"source": "(a)", "target": "$2"}}]},
     "spec.dataFrom[0].rewrite[0].regexp.target"),
    ({"find": {"path": "a"}, "rewrite": [{"regexp": {"source": "a", "target": "${x}"}}]},
     "spec.dataFrom[0].rewrite[0].regexp.target"),
    ({"find": {"path": "a"}, "rewrite": [{"stripPrefix": "a", "regexp": {"source": "a"}}]},
     "spec.dataFrom[0].rewrite[0]"),
    ({"remoteRef": {"name": "a"}, "rewrite": [{"stripPrefix": "a"}]}, "spec.dataFrom[0].rewrite"),
])
def test_bad_finds_name_the_field(entry: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        spec_with(entry)
    assert raised.value.field == field


def test_the_query_checks_every_condition_again() -> None:
    query = FindQuery(prefix="bots/", name_regexp="KEY$", tags={"team": "bots"})
    assert query.matches("bots/X_API_KEY", {"team": "bots", "other": "x"})
    assert not query.matches("bots-old/X_API_KEY", {"team": "bots"})
    assert not query.matches("bots/X_API_SECRET", {"team": "bots"})
    assert not query.matches("bots/X_API_KEY", {"team": "other"})
    assert not query.matches("bots/X_API_KEY")


def test_the_providers_list_with_their_own_filters() -> None:
    query = FindQuery(prefix="bots/", tags={"team": "bots", "env": "prod"})
    assert list_filters(query) == [{"Key": "name", "Values": ["bots/"]},
                                   {"Key": "tag-key", "Values": ["env", "team"]},
                                   {"Key": "tag-value", "Values": ["bots", "prod"]}]
    assert list_filters(FindQuery(name_regexp="x")) == []
    assert list_filter(FindQuery(prefix="bots-", tags={"team": "bots", "owner": "Ops Team"})) == \
        'name:bots- AND labels.owner="Ops Team" AND labels.team=bots'


def test_matches_are_planned_with_the_other_references() -> None:
    spec = spec_with({"remoteRef": {"name": "bundle"}}, {"find": {"path": "bots/"}})
    plan = plan_fetches(spec, {"aws": [RemoteRef("bots/a"), RemoteRef("bundle")]})
    assert plan == {"aws": [RemoteRef("bots/a"), RemoteRef("bundle")]}


def fetched(value: bytes, version: str = "v1") -> Fetched:
    return Fetched(SecretValue(value), version)


def test_matches_become_keys_a_vanished_one_is_skipped_and_other_errors_fail() -> None:
    spec = spec_with({"find": {"path": "bots/"}, "rewrite": [{"stripPrefix": "bots/"}]})
    answers = {"aws": {RemoteRef("bots/a"): fetched(b"1"), RemoteRef("bots/sub/b"): fetched(b"2", "v2"),
                       RemoteRef("bots/gone"): NotFound("gone")}}
    built = assemble(spec, answers, {0: ("bots/a", "bots/gone", "bots/sub/b")})
    assert {k: v.reveal() for k, v in built.data.items()} == {"a": b"1", "sub_b": b"2"}
    assert built.failure is None and not built.missing
    assert [(o.key, o.remote_name, o.version, o.found_by) for o in built.origins] == [
        ("a", "bots/a", "v1", 0), ("sub_b", "bots/sub/b", "v2", 0)]
    answers["aws"][RemoteRef("bots/a")] = Unavailable("down")
    assert isinstance(assemble(spec, answers, {0: ("bots/a",)}).failure, Unavailable)


def test_two_matches_with_one_key_are_a_conflict_naming_both() -> None:
    spec = spec_with({"remoteRef": {"name": "bundle"}},
                     {"find": {"path": "a/"}, "rewrite": [{"regexp": {"source": "^.*/", "target": ""}}]})
    answers = {"aws": {RemoteRef("bundle"): fetched(b'{"TOKEN": "x"}'), RemoteRef("a/TOKEN"): fetched(b"y")}}
    built = assemble(spec, answers, {1: ("a/TOKEN",)})
    assert isinstance(built.failure, KeyConflict)
    assert built.failure.message.startswith("key 'TOKEN' comes from both dataFrom[0] (bundle) and dataFrom[1] (a/TOKEN)")


def test_found_keys_replace_what_a_secret_key_cannot_hold() -> None:
    spec = spec_with({"find": {"path": "a"}})
    assert found_key(spec.finds[0], "projects/p/secrets/x y") == "projects_p_secrets_x_y"


def managed(manager: str, keys: list[str]) -> Any:
    return SimpleNamespace(manager=manager, operation="Apply", fields_v1={"f:data": {f"f:{k}": {} for k in keys}})


def test_a_merge_target_is_written_when_a_key_it_applied_is_no_longer_given() -> None:
    owner = Owner(name="bot", namespace="ns", uid="u")
    target = Target(name="shared", creation_policy="Merge")
    import base64

    secret = SimpleNamespace(type="Opaque", data={k: base64.b64encode(b"v").decode() for k in ("OTHER", "a", "b")},
                             metadata=SimpleNamespace(managed_fields=[managed(owner.field_manager, ["a", "b"]),
                                                                      managed("kubectl", ["OTHER"])]))
    assert needs_write(secret, owner, target, {"a": SecretValue(b"v"), "b": SecretValue(b"v")}) is False
    assert needs_write(secret, owner, target, {"a": SecretValue(b"v")}) is True


def test_a_wrapper_that_does_not_forward_list_matching_still_lists_through_its_inner_client() -> None:
    from botsecret.finding import _lister

    class Inner:
        def list_matching(self, query: FindQuery) -> list[str]:
            return ["a"]

    class Wrapper:  # as a fetch-sharing layer that knows only fetch, check and close
        def __init__(self, inner: Any) -> None:
            self._inner = inner

    found = _lister(Wrapper(Wrapper(Inner())))
    assert found is not None and found.list_matching(FindQuery(prefix="a")) == ["a"]
    assert _lister(Wrapper(object())) is None
