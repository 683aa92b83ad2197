"""GCP change events (issue 12): Secret Manager's Pub/Sub notifications classified, matched to
references by secret name within the store's project, and the store's gcp.changeEvents block."""

from __future__ import annotations

import json
from typing import Any

import pytest

from botsecret.event_index import ReferenceIndex, references
from botsecret.event_messages import ChangeEvent, Ignored, reference_matches
from botsecret.event_notifications import parse_notification
from botsecret.event_streams import reader, stream_key
from botsecret.providers.change_queue import QueueMessage
from botsecret.spec import InvalidSpec
from botsecret.stores import parse_store

pytestmark = pytest.mark.scale
SECRET = "projects/bots/secrets/openai"
SUBSCRIPTION = "projects/central/subscriptions/secret-events"


def attributes(event_type: str = "SECRET_VERSION_ADD", secret: str = SECRET, **more: str) -> dict[str, str]:
    """A notification's attributes, as Secret Manager sets them."""
    return {"eventType": event_type, "secretId": secret, "dataFormat": "JSON_API_V1",
            "timestamp": "2026-12-07T11:17:45.081104-08:00", **more}


VERSION_DATA = json.dumps({"name": f"{SECRET}/versions/2", "state": "ENABLED", "createTime": "2026-12-07T19:17:45Z"})


def parse(attrs: dict[str, str], data: str = VERSION_DATA, project: str = "bots",
          location: str | None = None) -> ChangeEvent | Ignored:
    return parse_notification(attrs, data, project=project, location=location)


# -- parsing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("event_type", ["SECRET_VERSION_ADD", "SECRET_VERSION_ENABLE", "SECRET_VERSION_DISABLE",
                                        "SECRET_VERSION_DESTROY", "SECRET_VERSION_DESTROY_SCHEDULED"])
def test_each_version_change_names_its_secret_in_full_and_by_id(event_type: str) -> None:
    got = parse(attributes(event_type, versionId=f"{SECRET}/versions/2"))
    assert got == ChangeEvent(event_type, (SECRET, "openai"))


@pytest.mark.parametrize("event_type", ["SECRET_CREATE", "SECRET_UPDATE", "SECRET_DELETE"])
def test_secret_changes_carry_the_secret_resource(event_type: str) -> None:
    data = json.dumps({"name": SECRET, "replication": {"automatic": {}}, "versionAliases": {"prod": "2"}})
    assert parse(attributes(event_type), data) == ChangeEvent(event_type, (SECRET, "openai"))


def test_a_test_message_and_a_rotation_reminder_are_unrelated() -> None:
    assert parse({"eventType": "TOPIC_CONFIGURED"}, "") == Ignored("unrelated")
    assert parse(attributes("SECRET_ROTATE"), json.dumps({"name": SECRET})) == Ignored("unrelated")
    assert parse(attributes("SECRET_SOMETHING_NEW")) == Ignored("unrelated")


def test_another_project_or_location_matches_only_by_full_name() -> None:
    other = "projects/elsewhere/secrets/openai"
    assert parse(attributes(secret=other), json.dumps({"name": other})) == ChangeEvent("SECRET_VERSION_ADD", (other,))
    regional = "projects/bots/locations/europe-west1/secrets/openai"
    got = parse(attributes(secret=regional), json.dumps({"name": regional}))
    assert got == ChangeEvent("SECRET_VERSION_ADD", (regional,))
    assert parse(attributes(secret=regional), json.dumps({"name": regional}), location="europe-west1") == \
        ChangeEvent("SECRET_VERSION_ADD", (regional, "openai"))


def test_a_project_number_counts_as_the_stores_project_named_by_id() -> None:
    numbered = "projects/123456789012/secrets/openai"
    assert parse(attributes(secret=numbered), "") == ChangeEvent("SECRET_VERSION_ADD", (numbered, "openai"))
    assert parse(attributes(secret=numbered), "", project="999") == ChangeEvent("SECRET_VERSION_ADD", (numbered,))


@pytest.mark.parametrize(("attrs", "data"), [
    ({}, VERSION_DATA),
    ({"eventType": "secret version add"}, VERSION_DATA),
    (attributes(secret="openai"), VERSION_DATA),
    (attributes(secret="projects/bots/secrets/has spaces"), VERSION_DATA),
    ({k: v for k, v in attributes().items() if k != "secretId"}, VERSION_DATA),
    (attributes(dataFormat="NONE"), VERSION_DATA),
    (attributes(), "not json"),
    (attributes(), "[1, 2]"),
    (attributes(), json.dumps({"name": "projects/bots/secrets/other/versions/2"})),
    (attributes(), json.dumps({"name": f"{SECRET}x/versions/2"})),
    (attributes(), "{" + " " * (70 * 1024) + "}"),
], ids=["no-attributes", "event-type-garbage", "secret-id-bare", "secret-id-garbage", "no-secret-id",
        "other-data-format", "data-not-json", "data-a-list", "data-of-another-secret", "data-of-a-longer-name",
        "data-too-long"])
def test_malformed_notifications_are_classified_not_raised(attrs: dict[str, str], data: str) -> None:
    assert parse(attrs, data) == Ignored("malformed")


def test_an_ignored_notification_never_repeats_its_content() -> None:
    assert "hunter2" not in repr(parse({"eventType": "hunter2"}, "hunter2"))
    assert "hunter2" not in repr(QueueMessage("r", "hunter2", {"eventType": "hunter2"}))


# -- matching references ------------------------------------------------------------------------

@pytest.mark.parametrize("reference", ["openai", SECRET, f"{SECRET}/versions/3", f"{SECRET}/versions/latest"])
def test_a_reference_by_id_full_name_or_version_matches(reference: str) -> None:
    event = parse(attributes())
    assert isinstance(event, ChangeEvent) and reference_matches(reference, event.keys)


@pytest.mark.parametrize("reference", ["openai2", "open", "projects/elsewhere/secrets/openai",
                                       "projects/bots/secrets/openai2/versions/1"])
def test_other_secrets_do_not_match(reference: str) -> None:
    event = parse(attributes())
    assert isinstance(event, ChangeEvent) and not reference_matches(reference, event.keys)


def test_a_notification_finds_exactly_the_botsecrets_that_read_the_secret_through_the_store() -> None:
    def bot(name: str, remote: str) -> dict[str, Any]:
        return {"metadata": {"namespace": "team", "name": name},
                "spec": {"sources": [{"name": "s", "storeRef": {"name": "gcp"}}],
                         "data": [{"key": "K", "remoteRef": {"name": remote}}]}}

    index = ReferenceIndex()
    for name, remote in (("a1", "openai"), ("a2", f"{SECRET}/versions/1"), ("b", "anthropic")):
        index.record(("team", name), references(bot(name, remote)))
    event = parse(attributes())
    assert isinstance(event, ChangeEvent)
    found = index.referencing(("BotSecretStore", "team", "gcp"), event.keys)
    assert found == [(("team", "a1"), ["openai"]), (("team", "a2"), [f"{SECRET}/versions/1"])]


# -- the store's changeEvents block, and its stream ---------------------------------------------

def store(events: Any, kind: str = "BotSecretStore", **gcp: Any) -> dict[str, Any]:
    conf = {"project": "bots", "changeEvents": events, **gcp}
    body: dict[str, Any] = {"metadata": {"name": "s", "namespace": "team"}, "spec": {"provider": {"gcp": conf}}}
    if kind == "ClusterBotSecretStore":
        body["metadata"] = {"name": "s"}
        body["spec"]["conditions"] = [{"namespaceSelector": {}}]
    return body


def test_gcp_change_events_parse_with_a_default_fallback_and_read_through_the_stores_identity() -> None:
    spec = parse_store("BotSecretStore", store({"subscription": SUBSCRIPTION}))
    events = spec.change_events
    assert events is not None and events.subscription == SUBSCRIPTION and events.fallback_seconds == 3600
    assert stream_key(spec) == ("team", spec.provider, SUBSCRIPTION)
    field, call, parse_one = reader(spec.provider)  # type: ignore[arg-type]
    assert (field, call) == ("spec.provider.gcp", "Pull")
    assert parse_one(QueueMessage("ack", VERSION_DATA, attributes())) == ChangeEvent("SECRET_VERSION_ADD",
                                                                                     (SECRET, "openai"))
    longer = parse_store("BotSecretStore", store({"subscription": SUBSCRIPTION, "fallbackRefreshInterval": "6h"}))
    assert longer.change_events is not None and longer.change_events.fallback_seconds == 6 * 3600
    cluster = parse_store("ClusterBotSecretStore", store(
        {"subscription": SUBSCRIPTION}, "ClusterBotSecretStore",
        credentialsSecretRef={"name": "gcp-key", "namespace": "secrets"}))
    assert stream_key(cluster) == ("secrets", cluster.provider, SUBSCRIPTION)


@pytest.mark.parametrize(("events", "kind", "field", "fragment"), [
    ({}, "BotSecretStore", "gcp.changeEvents.subscription", "required"),
    ({"subscription": "secret-events"}, "BotSecretStore", "gcp.changeEvents.subscription", "Pub/Sub subscription"),
    ({"subscription": "projects/bots/topics/secret-events"}, "BotSecretStore", "gcp.changeEvents.subscription",
     "Pub/Sub subscription"),
    ({"subscription": "projects/bots/subscriptions/x"}, "BotSecretStore", "gcp.changeEvents.subscription",
     "Pub/Sub subscription"),
    ({"subscription": 42}, "BotSecretStore", "gcp.changeEvents.subscription", "string"),
    ({"subscription": SUBSCRIPTION, "fallbackRefreshInterval": "soon"}, "BotSecretStore",
     "gcp.changeEvents.fallbackRefreshInterval", "duration"),
    ({"subscription": SUBSCRIPTION, "fallbackRefreshInterval": "200h"}, "BotSecretStore",
     "gcp.changeEvents.fallbackRefreshInterval", "between"),
    ("yes", "BotSecretStore", "gcp.changeEvents", "object"),
    ({"subscription": SUBSCRIPTION}, "ClusterBotSecretStore", "gcp.changeEvents", "credentialsSecretRef"),
])
def test_bad_gcp_change_events_are_refused_naming_the_field(events: Any, kind: Any, field: str,
                                                            fragment: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_store(kind, store(events, kind))
    assert caught.value.field.endswith(field) and fragment in caught.value.message, str(caught.value)
