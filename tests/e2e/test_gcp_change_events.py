"""GCP change events (issue 12): a store names a Pub/Sub subscription of Secret Manager's event
notifications; a notification wakes exactly the BotSecrets that read its secret, and polling
takes over when the subscription cannot be pulled. The in-process Secret Manager fake serves
Pub/Sub's Subscriber on the same port (tests/harness/pubsub_fake.py); the official client pulls it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness import change_events as events
from tests.harness.cluster_fixtures import Kube
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.leaks import secret_value
from tests.harness.stores import create_store
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.scale
PROJECT = "bots-events"


def notification(event_type: str, secret: str, version: int | None = None) -> tuple[bytes, dict[str, str]]:
    """What Secret Manager publishes to a secret's topic: the attributes, and the changed Secret or
    SecretVersion resource as proto3 JSON (no payload: notifications never carry values)."""
    secret_id = f"projects/{PROJECT}/secrets/{secret}"
    attributes = {"eventType": event_type, "secretId": secret_id, "dataFormat": "JSON_API_V1",
                  "timestamp": "2026-12-07T21:00:00.081104-08:00"}
    resource: dict[str, Any] = {"name": secret_id, "replication": {"automatic": {}},
                                "createTime": "2026-12-07T20:00:00Z", "etag": "\"1\""}
    if version is not None:
        attributes["versionId"] = f"{secret_id}/versions/{version}"
        resource = {"name": attributes["versionId"], "createTime": "2026-12-07T21:00:00Z", "state": "ENABLED",
                    "replicationStatus": {"automatic": {}}, "etag": "\"1\""}
    return json.dumps(resource).encode(), attributes


def _store_with_subscription(kube: Kube, namespace: str, endpoint: str, subscription: str) -> None:
    create_store(kube, namespace, "gcp", {"gcp": {
        "project": PROJECT, "endpoint": endpoint,
        "changeEvents": {"subscription": subscription, "fallbackRefreshInterval": "1h"}}})


def _reads(gcp: GcpSecretManagerFake, secret: str) -> int:
    return len(gcp.arrivals(resource_prefix=f"projects/{PROJECT}/secrets/{secret}/", method="AccessSecretVersion"))


@pytest.mark.operator_metrics
def test_a_pubsub_notification_wakes_only_the_botsecrets_that_read_its_secret(
    operator: Any, kube: Kube, namespace: str, gcp: GcpSecretManagerFake,
) -> None:
    a, b = f"{namespace}-a", f"{namespace}-b"
    first_a, first_b = secret_value("gcp_event_a"), secret_value("gcp_event_b")
    gcp.put(PROJECT, a, first_a.encode())
    gcp.put(PROJECT, b, first_b.encode())
    subscription = f"projects/{PROJECT}/subscriptions/{namespace}-events"
    gcp.pubsub.create_subscription(subscription)
    _store_with_subscription(kube, namespace, gcp.endpoint, subscription)
    events.two_readers_of_a_one_of_b(kube, namespace, "gcp", a, b)

    before = {secret: _reads(gcp, secret) for secret in (a, b)}
    second_a = secret_value("gcp_event_a2")
    gcp.put(PROJECT, a, second_a.encode())  # version 2, and no poll is due for an hour
    # Garbage first (no secretId, data not JSON): counted, acknowledged, and the consumer goes on.
    gcp.pubsub.publish(subscription, b"not an event " + secret_value("gcp_event_garbage").encode(),
                       {"eventType": "SECRET_VERSION_ADD"})
    gcp.pubsub.publish(subscription, *notification("SECRET_VERSION_ADD", a, version=2))
    for name in ("a-one", "a-two"):
        bs.wait_secret(kube, namespace, name, {"K": second_a.encode()}, timeout=60)
    after = {secret: _reads(gcp, secret) - before[secret] for secret in (a, b)}
    print(f"after one SECRET_VERSION_ADD notification for {a}: AccessSecretVersion calls {after}; "
          f"backlog {gcp.pubsub.backlog(subscription)}; Pub/Sub calls {dict(gcp.pubsub.calls)}")
    assert after == {a: 1, b: 0}, after
    assert bs.secret_data(kube, namespace, "b-one") == {"K": first_b.encode()}
    wait_for(lambda: gcp.pubsub.backlog(subscription) == 0, timeout=30, what="the handled messages acknowledged")
    events.assert_one_woke_one_malformed(operator, f"{namespace}/gcp")


@pytest.mark.operator_metrics
@pytest.mark.operator_process  # reads the operator's log
def test_with_the_subscription_gone_polling_takes_over(
    operator: Any, kube: Kube, namespace: str, gcp: GcpSecretManagerFake,
) -> None:
    remote = f"{namespace}-polled"
    gcp.put(PROJECT, remote, secret_value("gcp_polled").encode())
    subscription = f"projects/{PROJECT}/subscriptions/{namespace}-doomed"
    gcp.pubsub.create_subscription(subscription)
    _store_with_subscription(kube, namespace, gcp.endpoint, subscription)
    events.bot_reading(kube, namespace, "polled", "gcp", remote, "10s")
    bs.wait_ready(kube, namespace, "polled", reason="Synced", timeout=120)
    events.wait_stream(kube, namespace, "gcp", healthy=True)
    # While the subscription answers, a sync schedules the next poll at the fallback interval, not 10 s.
    assert events.wait_polls_at_fallback(operator, kube, namespace, "polled") >= 3000

    gcp.pubsub.delete_subscription(subscription)
    down = events.wait_stream(kube, namespace, "gcp", healthy=False)
    print(f"store status.changeEvents after the subscription was deleted: {down}")
    assert down["reason"] == "NotFound" and "Pull failed" in down["message"]
    assert operator.metric("botsecret_change_stream_healthy", store=f"{namespace}/gcp") == 0

    # A poll after the stream was seen down: the BotSecret polls at its own 10 s again, where the
    # fallback would have been an hour; a new version with no notification is seen by polling alone.
    mark = time.time()
    bs.wait_refreshed(operator, namespace, "polled", after=mark, timeout=60)
    second = secret_value("gcp_polled2")
    gcp.put(PROJECT, remote, second.encode())
    bs.wait_secret(kube, namespace, "polled", {"K": second.encode()}, timeout=60)
