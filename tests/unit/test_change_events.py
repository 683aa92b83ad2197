"""Change events (issue 12): parsing Secrets Manager's EventBridge messages, matching ARNs to
references, the index of references, the poll interval they allow, the store's changeEvents
block, shared reads dropped by an event, and the consumer's loop (on a queue stand-in: pure logic)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from botsecret.event_consumer import QueueConsumer, backoff_seconds
from botsecret.event_index import ReferenceIndex, References, poll_seconds, references
from botsecret.event_messages import ChangeEvent, Ignored, parse_message, reference_matches, secret_keys
from botsecret.providers.aws_events import QueueError, QueueMessage
from botsecret.providers.base import Fetched, RemoteRef
from botsecret.shared_fetch import SharedProvider
from botsecret.spec import InvalidSpec
from botsecret.stores import parse_store
from botsecret.values import SecretValue

pytestmark = pytest.mark.scale
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/openai-AbCdEf"


def event(name: str = "PutSecretValue", **detail: Any) -> str:
    """A message body as EventBridge delivers a Secrets Manager CloudTrail record to SQS."""
    body = {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.secretsmanager", "account": "123456789012", "time": "2026-12-07T21:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"eventVersion": "1.08", "eventSource": "secretsmanager.amazonaws.com", "eventName": name,
                       "awsRegion": "us-east-1", "requestParameters": {"secretId": ARN},
                       "responseElements": None, **detail}}
    return json.dumps(body)


# -- parsing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage", "RotateSecret",
                                  "DeleteSecret", "RestoreSecret", "CancelSecretVersionDelete"])
def test_each_change_action_names_its_secret(name: str) -> None:
    parsed = parse_message(event(name))
    assert parsed == ChangeEvent(event_name=name, secret_ids=(ARN,))


def test_rotation_succeeded_names_the_secret_in_additional_event_data() -> None:
    body = event("RotationSucceeded", requestParameters=None, additionalEventData={"SecretId": ARN})
    assert parse_message(body) == ChangeEvent("RotationSucceeded", (ARN,))


def test_response_elements_arn_in_either_spelling_counts_too() -> None:
    body = event("UpdateSecret", requestParameters={"secretId": "prod/openai"}, responseElements={"aRN": ARN})
    parsed = parse_message(body)
    assert isinstance(parsed, ChangeEvent) and parsed.secret_ids == ("prod/openai", ARN)


@pytest.mark.parametrize("body", [
    "not json", "[]", "null", json.dumps({"source": "aws.s3", "detail": {}}),
    json.dumps({"source": "aws.secretsmanager", "detail": "x"}),
    json.dumps({"source": "aws.secretsmanager", "detail": {"eventSource": "secretsmanager.amazonaws.com"}}),
    event(requestParameters={"secretId": 42}),
    event(requestParameters={"secretId": "has spaces and a\nnewline"}),
    "x" * (300 * 1024),
], ids=["text", "list", "null", "other-service", "detail-text", "no-event-name", "id-a-number", "id-garbage",
        "too-long"])
def test_malformed_messages_are_classified_not_raised(body: str) -> None:
    assert parse_message(body) == Ignored("malformed")


def test_reads_and_failed_calls_are_unrelated() -> None:
    assert parse_message(event("GetSecretValue")) == Ignored("unrelated")
    assert parse_message(event("PutSecretValue", errorCode="AccessDenied")) == Ignored("unrelated")


def test_an_ignored_message_never_repeats_its_text() -> None:
    assert "hunter2" not in repr(parse_message('{"source": "hunter2"}'))
    assert "hunter2" not in repr(QueueMessage("r", "hunter2"))


# -- ARN matching -------------------------------------------------------------------------------

def test_an_arn_answers_to_its_name_without_the_random_suffix() -> None:
    assert secret_keys(ARN) == {ARN, "prod/openai-AbCdEf", "prod/openai"}
    assert secret_keys("prod/openai") == {"prod/openai"}


@pytest.mark.parametrize("reference", ["prod/openai", ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/openai"])
@pytest.mark.parametrize("named", ["prod/openai", ARN])
def test_a_reference_by_name_or_arn_matches_an_event_by_name_or_arn(reference: str, named: str) -> None:
    assert reference_matches(reference, secret_keys(named))


@pytest.mark.parametrize("reference", ["prod/openai2", "prod/open", "prod/openai-AbCdEf-x", "staging/openai"])
def test_other_secrets_do_not_match(reference: str) -> None:
    assert not reference_matches(reference, secret_keys(ARN))


# -- the index and the poll interval ------------------------------------------------------------

def bot(name: str, *remotes: str, store: str = "aws", find: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"sources": [{"name": "s", "storeRef": {"name": store}}],
                            "data": [{"key": f"K{i}", "remoteRef": {"name": r}} for i, r in enumerate(remotes)]}
    if find:
        spec["dataFrom"] = [{"find": {"path": "prod/"}}]
    return {"metadata": {"namespace": "team", "name": name}, "spec": spec}


STORE = ("BotSecretStore", "team", "aws")


def test_an_event_finds_exactly_the_botsecrets_that_read_the_secret_through_the_store() -> None:
    index = ReferenceIndex()
    index.record(("team", "a1"), references(bot("a1", "prod/openai")))
    index.record(("team", "a2"), references(bot("a2", ARN, "other")))
    index.record(("team", "b"), references(bot("b", "prod/anthropic")))
    index.record(("team", "elsewhere"), references(bot("elsewhere", "prod/openai", store="other-store")))
    found = index.referencing(STORE, ChangeEvent("PutSecretValue", (ARN,)).keys)
    assert found == [(("team", "a1"), ["prod/openai"]), (("team", "a2"), [ARN])]
    index.forget(("team", "a1"))
    assert [b for b, _ in index.referencing(STORE, secret_keys(ARN))] == [("team", "a2")]


def test_an_invalid_spec_reads_nothing() -> None:
    assert references({"metadata": {"name": "x", "namespace": "team"}, "spec": {"sources": []}}) is None


def test_poll_interval_is_the_fallback_only_when_every_store_is_covered() -> None:
    refs = references(bot("a", "prod/openai"))
    assert poll_seconds(refs, 60, {STORE: 3600}) == 3600
    assert poll_seconds(refs, 7200, {STORE: 3600}) == 7200  # its own, if longer
    assert poll_seconds(refs, 60, {}) == 60  # the stream is down
    assert poll_seconds(references(bot("f", "prod/openai", find=True)), 60, {STORE: 3600}) == 60
    two = References(by_name={STORE: frozenset({"a"}), ("BotSecretStore", "team", "vault"): frozenset({"b"})})
    assert poll_seconds(two, 60, {STORE: 3600}) == 60
    assert poll_seconds(None, 60, {STORE: 3600}) == 60


# -- the store's changeEvents block -------------------------------------------------------------

def store(events: Any, kind: str = "BotSecretStore", **aws: Any) -> dict[str, Any]:
    allow_http = aws.pop("_http", False)
    conf = {"region": "us-east-1", "changeEvents": events, **aws}
    body: dict[str, Any] = {"metadata": {"name": "s", "namespace": "team"},
                            "spec": {"provider": {"aws": conf}, "insecureAllowPlainHTTP": allow_http}}
    if kind == "ClusterBotSecretStore":
        body["metadata"] = {"name": "s"}
        body["spec"]["conditions"] = [{"namespaceSelector": {}}]
    return body


QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/secret-changes"


def test_change_events_parse_with_a_default_fallback() -> None:
    events = parse_store("BotSecretStore", store({"sqsQueueURL": QUEUE})).change_events
    assert events is not None and events.queue_url == QUEUE and events.fallback_seconds == 3600
    assert events.endpoint == "https://sqs.us-east-1.amazonaws.com"
    longer = parse_store("BotSecretStore", store({"sqsQueueURL": QUEUE, "fallbackRefreshInterval": "6h"}))
    assert longer.change_events is not None and longer.change_events.fallback_seconds == 6 * 3600
    assert parse_store("BotSecretStore", store(None)).change_events is None


@pytest.mark.parametrize(("events", "kind", "aws", "field", "fragment"), [
    ({"sqsQueueURL": "not a url"}, "BotSecretStore", {}, "changeEvents.sqsQueueURL", "SQS queue URL"),
    ({"sqsQueueURL": "ftp://sqs.us-east-1.amazonaws.com/123456789012/q"}, "BotSecretStore", {},
     "changeEvents.sqsQueueURL", "SQS queue URL"),
    ({"sqsQueueURL": "https://sqs.us-east-1.amazonaws.com/q"}, "BotSecretStore", {}, "changeEvents.sqsQueueURL",
     "SQS queue URL"),
    ({"sqsQueueURL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q"}, "BotSecretStore", {},
     "changeEvents.sqsQueueURL", "region"),
    ({"sqsQueueURL": "http://127.0.0.1:5000/123456789012/q"}, "BotSecretStore", {}, "changeEvents.sqsQueueURL",
     "insecureAllowPlainHTTP"),
    ({}, "BotSecretStore", {}, "changeEvents.sqsQueueURL", "required"),
    ({"sqsQueueURL": QUEUE, "fallbackRefreshInterval": "soon"}, "BotSecretStore", {},
     "changeEvents.fallbackRefreshInterval", "duration"),
    ({"sqsQueueURL": QUEUE, "fallbackRefreshInterval": "1s"}, "BotSecretStore", {},
     "changeEvents.fallbackRefreshInterval", "between"),
    ("yes", "BotSecretStore", {}, "aws.changeEvents", "object"),
    ({"sqsQueueURL": QUEUE}, "BotSecretStore", {"service": "ParameterStore"}, "aws.changeEvents", "Secrets Manager"),
    ({"sqsQueueURL": QUEUE}, "ClusterBotSecretStore", {}, "aws.changeEvents", "credentialsSecretRef"),
])
def test_bad_change_events_are_refused_naming_the_field(events: Any, kind: Any, aws: dict[str, Any], field: str,
                                                        fragment: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_store(kind, store(events, kind, **aws))
    assert caught.value.field.endswith(field) and fragment in caught.value.message, str(caught.value)


def test_plain_http_queue_is_allowed_where_the_store_allows_plain_http() -> None:
    spec = parse_store("BotSecretStore", store({"sqsQueueURL": "http://127.0.0.1:5000/123456789012/q"}, _http=True))
    assert spec.change_events is not None and spec.change_events.endpoint == "http://127.0.0.1:5000"


# -- shared reads dropped by an event -----------------------------------------------------------

class Counting:
    def __init__(self) -> None:
        self.reads = 0

    def fetch(self, refs: Sequence[RemoteRef]) -> dict[RemoteRef, Fetched]:
        self.reads += 1
        return {ref: Fetched(SecretValue(b"v%d" % self.reads), str(self.reads)) for ref in refs}

    def check(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


def test_an_invalidated_name_is_read_again_and_other_names_are_not() -> None:
    inner = Counting()
    shared = SharedProvider(inner)
    a, b = RemoteRef("prod/openai"), RemoteRef("prod/other")
    shared.fetch_shared([a, b], max_age=3600)
    shared.fetch_shared([a, b], max_age=3600)
    assert inner.reads == 1
    shared.invalidate(["prod/openai"])
    again = shared.fetch_shared([a, b], max_age=3600)
    assert inner.reads == 2
    assert again[a] != again[b]  # a was read again; b still answers from the first read


# -- the consumer loop --------------------------------------------------------------------------

class Queue:
    """A queue stand-in that answers a script of batches or errors, then blocks until stopped."""

    def __init__(self, script: list[Any], done: threading.Event) -> None:
        self.script, self.done, self.deleted = script, done, []  # type: list[Any], threading.Event, list[str]

    def receive(self, *, wait: bool = True) -> list[QueueMessage]:
        if not self.script:
            self.done.set()
            return []
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return list(step)

    def delete(self, messages: Sequence[QueueMessage]) -> int:
        self.deleted += [m.receipt for m in messages]
        return 0

    def close(self) -> None:
        pass


def test_consumer_hands_over_deletes_everything_it_handled_and_survives_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botsecret.event_consumer.FIRST_BACKOFF_SECONDS", 0.001)
    done = threading.Event()
    queue = Queue([QueueError("AWS.SimpleQueueService.NonExistentQueue"),
                   [QueueMessage("r1", event()), QueueMessage("r2", "garbage")], []], done)
    opened: list[int] = []
    got: list[Any] = []
    health: list[tuple[bool, str]] = []

    def open_queue() -> Queue:
        opened.append(1)
        if len(opened) == 1:
            raise QueueError("AccessDenied")
        return queue

    consumer = QueueConsumer("t", open_queue, got.extend, lambda h, r: health.append((h, r)),
                             parse=lambda m: parse_message(m.body))
    consumer.start()
    assert done.wait(10)
    consumer.stop()
    consumer.join(10)
    assert got == [ChangeEvent("PutSecretValue", (ARN,)), Ignored("malformed")]
    assert queue.deleted == ["r1", "r2"]
    assert health[:3] == [(False, "AccessDenied"), (False, "AWS.SimpleQueueService.NonExistentQueue"), (True, "")]
    assert len(opened) == 3  # a new client after each failure


def test_backoff_grows_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    assert 0.5 <= backoff_seconds(1, rng) <= 1.5
    assert 4 <= backoff_seconds(4, rng) <= 12
    assert backoff_seconds(40, rng) <= 90
