"""botsecret.assemble: from provider answers to Secret data, pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from botsecret.assemble import SECRET_SIZE_LIMIT, Assembled, KeyOrigin, assemble, plan_fetches
from botsecret.providers.base import AccessDenied, Fetched, NotFound, ProviderError, RemoteRef, Unavailable
from botsecret.spec import BotSecretSpec, parse_spec
from botsecret.values import SecretValue


def spec_of(data: list[dict[str, Any]] | None = None, data_from: list[dict[str, Any]] | None = None,
            required: list[str] | None = None, sources: tuple[str, ...] = ("aws",)) -> BotSecretSpec:
    raw: dict[str, Any] = {"sources": [{"name": s, "storeRef": {"name": "store"}} for s in sources]}
    if data is not None:
        raw["data"] = data
    if data_from is not None:
        raw["dataFrom"] = data_from
    if required is not None:
        raw["required"] = required
    return parse_spec(raw, name="bot")


def fetched(value: bytes | str | dict[str, Any], version: str = "v1") -> Fetched:
    if isinstance(value, dict):
        value = json.dumps(value)
    if isinstance(value, str):
        value = value.encode()
    return Fetched(SecretValue(value), version)


def revealed(built: Assembled) -> dict[str, bytes]:
    return {k: v.reveal() for k, v in built.data.items()}


DOC = {"user": "bot", "port": 5432, "ratio": 0.5, "on": True, "none": None,
       "nested": {"b": 1, "a": "x"}, "list": [1, "two"], "unicode": "pässwörd"}


# property extraction


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ("user", b"bot"),
        ("port", b"5432"),
        ("ratio", b"0.5"),
        ("on", b"true"),
        ("none", b"null"),
        ("nested", b'{"a":"x","b":1}'),
        ("list", b'[1,"two"]'),
        ("unicode", "pässwörd".encode()),
    ],
)
def test_property_extraction_from_json(prop: str, expected: bytes) -> None:
    spec = spec_of(data=[{"key": "K", "remoteRef": {"name": "db", "property": prop}}])
    built = assemble(spec, {"aws": {RemoteRef("db"): fetched(DOC, "v7")}})
    assert revealed(built) == {"K": expected}
    assert built.origins == (KeyOrigin("K", "aws", "db", "v7"),)
    assert built.missing == ()
    assert built.failure is None


def test_without_property_the_exact_bytes_are_kept() -> None:
    raw = b'\x00\xff{"not": "parsed"}\n'
    spec = spec_of(data=[{"key": "BLOB", "remoteRef": {"name": "blob"}}])
    built = assemble(spec, {"aws": {RemoteRef("blob"): Fetched(SecretValue(raw), "3")}})
    assert revealed(built) == {"BLOB": raw}


@pytest.mark.parametrize("value", [b"plain text", b"[1, 2]", b'"a string"', b"\xff\xfe", b'{"other": 1}'])
def test_property_of_a_non_object_or_absent_field_is_missing(value: bytes) -> None:
    spec = spec_of(data=[{"key": "K", "remoteRef": {"name": "db", "property": "user"}},
                         {"key": "OK", "remoteRef": {"name": "ok"}}], required=["OK"])
    built = assemble(spec, {"aws": {RemoteRef("db"): fetched(value), RemoteRef("ok"): fetched("y")}})
    assert built.missing == ("K",)
    assert "K" not in built.data
    assert built.missing_required == ()
    assert built.failure is None


def test_property_of_pinned_version_uses_that_answer() -> None:
    spec = spec_of(data=[{"key": "OLD", "remoteRef": {"name": "db", "version": "1", "property": "user"}},
                         {"key": "NEW", "remoteRef": {"name": "db", "property": "user"}}])
    built = assemble(spec, {"aws": {RemoteRef("db", "1"): fetched({"user": "old"}, "1"),
                                    RemoteRef("db"): fetched({"user": "new"}, "2")}})
    assert revealed(built) == {"OLD": b"old", "NEW": b"new"}
    assert {o.key: o.version for o in built.origins} == {"OLD": "1", "NEW": "2"}


# dataFrom


def test_data_from_expands_every_top_level_field() -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({"A": "1", "B": 2, "C": {"x": [True]}}, "v3")}})
    assert revealed(built) == {"A": b"1", "B": b"2", "C": b'{"x":[true]}'}
    assert built.origins == tuple(KeyOrigin(k, "aws", "bundle", "v3") for k in ("A", "B", "C"))
    assert built.missing == built.missing_required == ()


def test_later_data_from_wins_over_earlier() -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "one"}}, {"remoteRef": {"name": "two"}}])
    built = assemble(spec, {"aws": {RemoteRef("one"): fetched({"A": "1", "B": "1"}),
                                    RemoteRef("two"): fetched({"B": "2"})}})
    assert revealed(built) == {"A": b"1", "B": b"2"}


def test_data_overrides_data_from_on_a_shared_key() -> None:
    spec = spec_of(data=[{"key": "SHARED", "remoteRef": {"name": "single"}}],
                   data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({"SHARED": "from-bundle", "OTHER": "o"}, "b1"),
                                    RemoteRef("single"): fetched("from-data", "s1")}})
    assert revealed(built) == {"SHARED": b"from-data", "OTHER": b"o"}
    # Exactly one origin per key, and the one that won.
    assert built.origins == (KeyOrigin("OTHER", "aws", "bundle", "b1"), KeyOrigin("SHARED", "aws", "single", "s1"))


def test_origins_are_sorted_by_key() -> None:
    spec = spec_of(data=[{"key": "z", "remoteRef": {"name": "z"}}, {"key": "a", "remoteRef": {"name": "a"}}])
    built = assemble(spec, {"aws": {RemoteRef("z"): fetched("1"), RemoteRef("a"): fetched("2")}})
    assert [o.key for o in built.origins] == ["a", "z"]


@pytest.mark.parametrize("value", [b"[1, 2]", b"not json", b'"string"', b"42"])
def test_data_from_that_is_not_a_json_object_is_missing_and_required(value: bytes) -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}], required=[])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched(value)}})
    assert built.data == {}
    assert built.missing == ("dataFrom[0] (bundle): not a JSON object",)
    assert built.missing_required == built.missing


@pytest.mark.parametrize("bad_key", ["a/b", "with space", "", "ünï", "semi;colon"])
def test_data_from_with_an_invalid_secret_key_is_missing_and_blocks(bad_key: str) -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}], required=[])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({bad_key: "v", "GOOD": "g"})}})
    assert revealed(built) == {"GOOD": b"g"}
    assert built.missing == ("dataFrom[0] (bundle): property is not a valid Secret key",)
    # dataFrom entries are always required, even with spec.required set.
    assert built.missing_required == built.missing
    # The message names the remote secret, never the offending key (it comes from remote data).
    if bad_key:
        assert bad_key not in " ".join(built.missing)


@pytest.mark.parametrize("key", ["a", "A-b_c.d", "0", "k" * 253, ".env"])
def test_data_from_accepts_valid_secret_keys(key: str) -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({key: "v"})}})
    assert revealed(built) == {key: b"v"}
    assert built.missing == ()


# NotFound, Unavailable, AccessDenied


def test_not_found_lists_missing_keys_without_failure() -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}, {"key": "B", "remoteRef": {"name": "b"}},
                         {"key": "C", "remoteRef": {"name": "c"}}],
                   data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("a"): NotFound("a is gone"), RemoteRef("b"): fetched("b"),
                                    RemoteRef("c"): NotFound("c is gone"), RemoteRef("bundle"): NotFound("gone")}})
    assert built.failure is None
    assert built.missing == ("dataFrom[0] (bundle)", "A", "C")
    assert built.missing_required == built.missing  # no spec.required: everything is required
    assert revealed(built) == {"B": b"b"}


def test_no_answer_at_all_counts_as_not_found() -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}])
    for answers in ({}, {"aws": {}}, {"aws": {RemoteRef("a", "AWSPREVIOUS"): fetched("x")}}):
        built = assemble(spec, answers)
        assert built.missing == ("A",)
        assert built.failure is None
        assert built.data == {}


@pytest.mark.parametrize("error", [Unavailable("throttled", retry_after=7.0), AccessDenied("denied"),
                                   ProviderError("something else")])
def test_an_indefinite_answer_sets_failure(error: ProviderError) -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}, {"key": "B", "remoteRef": {"name": "b"}}],
                   required=["B"])
    built = assemble(spec, {"aws": {RemoteRef("a"): error, RemoteRef("b"): fetched("b")}})
    # Even for a key that is not required: the sync must keep the last good Secret.
    assert built.failure is error
    assert built.missing == ("A",)


def test_failure_from_data_from_and_the_first_one_is_kept() -> None:
    first, second = AccessDenied("first"), Unavailable("second")
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}], data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): first, RemoteRef("a"): second}})
    assert built.failure is first
    assert built.missing == ("dataFrom[0] (bundle)", "A")


def test_not_found_after_a_failure_does_not_clear_it() -> None:
    error = Unavailable("down")
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}, {"key": "B", "remoteRef": {"name": "b"}}])
    built = assemble(spec, {"aws": {RemoteRef("a"): error, RemoteRef("b"): NotFound("b")}})
    assert built.failure is error


def test_answers_are_per_source() -> None:
    spec = spec_of(data=[{"key": "A", "source": "one", "remoteRef": {"name": "same"}},
                         {"key": "B", "source": "two", "remoteRef": {"name": "same"}}], sources=("one", "two"))
    built = assemble(spec, {"one": {RemoteRef("same"): fetched("1")}, "two": {RemoteRef("same"): fetched("2")}})
    assert revealed(built) == {"A": b"1", "B": b"2"}
    assert [(o.key, o.source) for o in built.origins] == [("A", "one"), ("B", "two")]


# spec.required


def test_non_required_missing_key_does_not_block() -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}, {"key": "OPT", "remoteRef": {"name": "opt"}}],
                   required=["A"])
    built = assemble(spec, {"aws": {RemoteRef("a"): fetched("a"), RemoteRef("opt"): NotFound("opt")}})
    assert built.missing == ("OPT",)
    assert built.missing_required == ()
    assert revealed(built) == {"A": b"a"}


def test_required_missing_key_blocks() -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}, {"key": "OPT", "remoteRef": {"name": "opt"}}],
                   required=["A"])
    built = assemble(spec, {"aws": {RemoteRef("a"): NotFound("a"), RemoteRef("opt"): fetched("o")}})
    assert built.missing_required == ("A",)


def test_required_key_may_come_from_data_from() -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}], required=["FROM_BUNDLE", "ABSENT"])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({"FROM_BUNDLE": "x"})}})
    assert built.missing == ()
    assert built.missing_required == ("ABSENT",)


def test_data_from_entries_are_required_even_when_not_listed() -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}], data_from=[{"remoteRef": {"name": "bundle"}}],
                   required=["A"])
    built = assemble(spec, {"aws": {RemoteRef("a"): fetched("a"), RemoteRef("bundle"): NotFound("bundle")}})
    assert built.missing_required == ("dataFrom[0] (bundle)",)


def test_empty_required_list_requires_only_data_from() -> None:
    spec = spec_of(data=[{"key": "A", "remoteRef": {"name": "a"}}], data_from=[{"remoteRef": {"name": "bundle"}}],
                   required=[])
    built = assemble(spec, {"aws": {RemoteRef("a"): NotFound("a"), RemoteRef("bundle"): fetched({"B": "b"})}})
    assert built.missing == ("A",)
    assert built.missing_required == ()


# size


def test_size_counts_key_and_value_bytes() -> None:
    spec = spec_of(data=[{"key": "AB", "remoteRef": {"name": "a"}}, {"key": "C", "remoteRef": {"name": "c"}}])
    built = assemble(spec, {"aws": {RemoteRef("a"): fetched(b"12345"), RemoteRef("c"): fetched("é")}})
    assert built.size == 2 + 5 + 1 + 2
    assert Assembled().size == 0


def test_size_limit_has_headroom_under_one_mebibyte() -> None:
    assert SECRET_SIZE_LIMIT < 1024 * 1024
    spec = spec_of(data=[{"key": "BIG", "remoteRef": {"name": "big"}}])
    built = assemble(spec, {"aws": {RemoteRef("big"): fetched(b"x" * SECRET_SIZE_LIMIT)}})
    assert built.size == SECRET_SIZE_LIMIT + 3 > SECRET_SIZE_LIMIT


# plan_fetches


def test_plan_fetches_deduplicates_per_source() -> None:
    spec = spec_of(data=[{"key": "A", "source": "one", "remoteRef": {"name": "db", "property": "a"}},
                         {"key": "B", "source": "one", "remoteRef": {"name": "db", "property": "b"}},
                         {"key": "C", "source": "one", "remoteRef": {"name": "db", "version": "2"}},
                         {"key": "D", "source": "two", "remoteRef": {"name": "db"}}],
                   data_from=[{"source": "one", "remoteRef": {"name": "db"}}, {"source": "two", "remoteRef": {"name": "x"}}],
                   sources=("one", "two"))
    assert plan_fetches(spec) == {"one": [RemoteRef("db"), RemoteRef("db", "2")],
                                  "two": [RemoteRef("db"), RemoteRef("x")]}


# Bugs found while writing these tests.


def test_data_from_key_with_trailing_newline_is_refused() -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({"TOKEN\n": "v"})}})
    assert "TOKEN\n" not in built.data
    assert built.missing_required


@pytest.mark.parametrize("key", [".", "..", "..data", pytest.param("k" * 254, id="254-chars")])
def test_data_from_key_kubernetes_refuses_is_refused(key: str) -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({key: "v"})}})
    assert key not in built.data
    assert built.missing_required


# The provider's reason reaches the condition (issue 9, item 6)


def test_missing_keys_carry_the_providers_message() -> None:
    spec = spec_of(data=[{"key": "TOKEN", "remoteRef": {"name": "x"}}, {"key": "B", "remoteRef": {"name": "b"}}],
                   data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {
        RemoteRef("x"): NotFound("gcp secret 'x' version latest is disabled"), RemoteRef("b"): fetched("b"),
        RemoteRef("bundle"): NotFound("vault secret 'secret/bundle' version 3 is destroyed")}})
    assert built.missing_required == ("dataFrom[0] (bundle)", "TOKEN")  # still labels, still MissingKeys
    assert built.failure is None
    assert built.explain(built.missing_required) == (
        "dataFrom[0] (bundle): vault secret 'secret/bundle' version 3 is destroyed; "
        "TOKEN: gcp secret 'x' version latest is disabled")


def test_a_missing_property_names_the_property_and_the_remote_secret() -> None:
    spec = spec_of(data=[{"key": "K", "remoteRef": {"name": "doc", "property": "api_key"}},
                         {"key": "J", "remoteRef": {"name": "plain", "property": "p"}}])
    built = assemble(spec, {"aws": {RemoteRef("doc"): fetched({"other": "v"}), RemoteRef("plain"): fetched("text")}})
    assert built.explain(built.missing) == (
        "K: property 'api_key' not in 'doc' (version v1); J: 'plain' (version v1) is not a JSON object")


def test_a_required_key_nobody_provides_is_named_alone() -> None:
    spec = spec_of(data_from=[{"remoteRef": {"name": "bundle"}}], required=["ABSENT"])
    built = assemble(spec, {"aws": {RemoteRef("bundle"): fetched({"B": "b"})}})
    assert built.explain(built.missing_required) == "ABSENT: no data entry or dataFrom document provides it"


def test_explanations_never_show_values() -> None:
    spec = spec_of(data=[{"key": "K", "remoteRef": {"name": "doc", "property": "p"}}],
                   data_from=[{"remoteRef": {"name": "bundle"}}])
    built = assemble(spec, {"aws": {RemoteRef("doc"): fetched("s3cr3t-not-json"),
                                    RemoteRef("bundle"): fetched({"bad key!": "s3cr3t-value"})}})
    text = built.explain(built.missing)
    assert "s3cr3t" not in text and "bad key!" not in text
    assert "K:" in text and "dataFrom[0] (bundle)" in text
