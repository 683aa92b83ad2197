"""The Pub/Sub reader of GCP change events (providers/gcp_events.py) against the in-process
Subscriber (tests/harness/pubsub_fake.py), through the official generated client: a Pull that runs
out is an empty answer followed by an immediate Pull, acknowledged messages leave the backlog and
unacknowledged ones come back, and failures are named by class only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from botsecret.providers.change_queue import QueueError
from botsecret.providers.gcp_events import PubsubSubscription
from botsecret.spec import GcpSource
from tests.harness.gcp_fake import GcpSecretManagerFake

pytestmark = pytest.mark.scale
SUBSCRIPTION = "projects/bots-events/subscriptions/reader-test"


@pytest.fixture
def subscription(gcp: GcpSecretManagerFake, request: pytest.FixtureRequest) -> Iterator[PubsubSubscription]:
    # One subscription per test: a Pull another test left waiting can take no message from it.
    name = f"{SUBSCRIPTION}-{request.node.name[:40]}"
    gcp.pubsub.create_subscription(name)
    reader = PubsubSubscription(GcpSource(project="bots-events", endpoint=gcp.endpoint), name,
                                timeout=5, wait_seconds=1.0)
    yield reader
    reader.close()
    gcp.pubsub.delete_subscription(name)


def test_an_idle_pull_runs_out_empty_and_the_next_one_returns_at_once(
        gcp: GcpSecretManagerFake, subscription: PubsubSubscription) -> None:
    assert subscription.receive(wait=False) == []
    started = time.monotonic()
    assert subscription.receive() == []  # waited for its deadline: DEADLINE_EXCEEDED is no failure
    waited = time.monotonic() - started
    started = time.monotonic()
    assert subscription.receive() == []  # return_immediately: proves the subscription still answers
    immediate = time.monotonic() - started
    print(f"idle Pull waited {waited:.2f} s, the one after it {immediate:.2f} s")
    assert waited >= 0.9 and immediate < waited


def test_acknowledged_messages_leave_and_unacknowledged_ones_come_back(
        gcp: GcpSecretManagerFake, subscription: PubsubSubscription, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.harness.pubsub_fake.ACK_DEADLINE_SECONDS", 0.2)  # Pub/Sub's default is 10 s
    for n in range(12):
        gcp.pubsub.publish(subscription.name, b"{}", {"eventType": "SECRET_VERSION_ADD", "n": str(n)})
    first = subscription.receive(wait=False)
    assert len(first) == 10 and first[0].attributes["n"] == "0" and first[0].body == "{}"
    subscription.delete(first)
    rest = subscription.receive(wait=False)
    assert [m.attributes["n"] for m in rest] == ["10", "11"]
    time.sleep(0.3)  # past the (shortened) ack deadline: the unacknowledged two are delivered again
    again = subscription.receive(wait=False)
    assert [m.attributes["n"] for m in again] == ["10", "11"] and {m.receipt for m in again}.isdisjoint(
        {m.receipt for m in rest})
    subscription.delete(again)
    assert gcp.pubsub.backlog(subscription.name) == 0


def test_failures_are_named_by_class(gcp: GcpSecretManagerFake, subscription: PubsubSubscription) -> None:
    subscription.receive(wait=False)
    gcp.pubsub.delete_subscription(subscription.name)
    with pytest.raises(QueueError) as gone:
        subscription.receive()
    assert gone.value.error_class == "NotFound"
    stopped = GcpSecretManagerFake()
    stopped.start()
    endpoint = stopped.endpoint
    stopped.stop()
    silent = PubsubSubscription(GcpSource(project="bots-events", endpoint=endpoint), SUBSCRIPTION, timeout=2)
    with pytest.raises(QueueError) as down:
        silent.receive(wait=False)
    silent.close()
    print(f"deleted subscription: {gone.value.error_class}; stopped server: {down.value.error_class}")
    assert down.value.error_class in ("ServiceUnavailable", "DeadlineExceeded")
