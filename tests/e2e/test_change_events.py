"""Change events instead of polls (issue 12): a store names an SQS queue that EventBridge fills with
Secrets Manager's CloudTrail events; an event wakes exactly the BotSecrets that read its secret, and
polling takes over when the queue cannot be read. moto serves SQS beside Secrets Manager; the
store's Secrets Manager reads go through a counting proxy."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer, cloudtrail_event
from tests.harness.cluster_fixtures import Kube
from tests.harness.counting_proxy import CountingProxy
from tests.harness.leaks import secret_value
from tests.harness.stores import GROUP, VERSION, create_store, store_ref
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.scale


@pytest.fixture
def proxy(aws: MotoServer) -> Any:
    counting = CountingProxy(aws.endpoint)
    counting.start()
    yield counting
    counting.stop()


def _store_with_queue(kube: Kube, namespace: str, endpoint: str, queue_url: str, fallback: str = "1h") -> None:
    bs.credentials_secret(kube, namespace, "aws-credentials", {"accessKeyId": "events", "secretAccessKey": "testing"})
    create_store(kube, namespace, "aws", {"aws": {
        "region": "us-east-1", "endpoint": endpoint, "credentialsSecretRef": {"name": "aws-credentials"},
        "changeEvents": {"sqsQueueURL": queue_url, "fallbackRefreshInterval": fallback}}})


def _bot(kube: Kube, namespace: str, name: str, remote: str, refresh: str) -> None:
    bs.create(kube, namespace, name, {"sources": [{"name": "aws", "storeRef": store_ref("aws")}],
                                      "refreshInterval": refresh,
                                      "data": [{"key": "K", "remoteRef": {"name": remote}}]})


def _stream(kube: Kube, namespace: str) -> dict[str, Any]:
    store = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "botsecretstores", "aws")
    found: dict[str, Any] = (store.get("status") or {}).get("changeEvents") or {}
    return found


@pytest.mark.operator_metrics
def test_an_sqs_event_wakes_only_the_botsecrets_that_read_its_secret(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer, proxy: CountingProxy,
) -> None:
    sm, sqs = aws.client(), aws.client("sqs")
    a, b = f"{namespace}/a", f"{namespace}/b"
    first_a, first_b = secret_value("event_a"), secret_value("event_b")
    arn_a = sm.create_secret(Name=a, SecretString=first_a)["ARN"]
    sm.create_secret(Name=b, SecretString=first_b)
    queue_url = sqs.create_queue(QueueName=f"{namespace}-changes")["QueueUrl"]
    _store_with_queue(kube, namespace, proxy.endpoint, queue_url)
    for name, remote in (("a-one", a), ("a-two", a), ("b-one", b)):
        _bot(kube, namespace, name, remote, "1h")
    for name in ("a-one", "a-two", "b-one"):
        bs.wait_ready(kube, namespace, name, reason="Synced", timeout=120)
    wait_for(lambda: _stream(kube, namespace).get("healthy") is True, timeout=90, what="the change stream healthy")

    before = {remote: proxy.reads_of(remote) for remote in (a, b)}
    second_a = secret_value("event_a2")
    sm.put_secret_value(SecretId=a, SecretString=second_a)
    # Garbage first: counted, deleted, and the consumer goes on.
    sqs.send_message(QueueUrl=queue_url, MessageBody="not an event " + secret_value("event_garbage"))
    sqs.send_message(QueueUrl=queue_url, MessageBody=cloudtrail_event("PutSecretValue", arn_a))
    for name in ("a-one", "a-two"):
        bs.wait_secret(kube, namespace, name, {"K": second_a.encode()}, timeout=60)
    after = {remote: proxy.reads_of(remote) - before[remote] for remote in (a, b)}
    print(f"after one PutSecretValue event for {a} (by ARN): reads {after}; queue left "
          f"{sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=['All'])['Attributes'].get('ApproximateNumberOfMessages')}")
    assert after == {a: 1, b: 0}, after
    assert bs.secret_data(kube, namespace, "b-one") == {"K": first_b.encode()}
    wait_for(lambda: sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"].get(
        "ApproximateNumberOfMessages") == "0", timeout=30, what="the handled messages deleted")
    label = f"{namespace}/aws"
    counted = {outcome: operator.metric("botsecret_change_events_total", store=label, outcome=outcome)
               for outcome in ("woke", "malformed")}
    print(f"botsecret_change_events_total for store {label}: {counted}")
    assert counted == {"woke": 1, "malformed": 1}
    assert operator.metric("botsecret_change_stream_healthy", store=label) == 1


@pytest.mark.operator_metrics
@pytest.mark.operator_process  # reads the operator's log
def test_with_the_stream_down_polling_takes_over(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer, proxy: CountingProxy,
) -> None:
    sm, sqs = aws.client(), aws.client("sqs")
    remote = f"{namespace}/polled"
    first = secret_value("polled")
    sm.create_secret(Name=remote, SecretString=first)
    queue_url = sqs.create_queue(QueueName=f"{namespace}-doomed")["QueueUrl"]
    _store_with_queue(kube, namespace, proxy.endpoint, queue_url)
    _bot(kube, namespace, "polled", remote, "10s")
    bs.wait_ready(kube, namespace, "polled", reason="Synced", timeout=120)
    wait_for(lambda: _stream(kube, namespace).get("healthy") is True, timeout=90, what="the change stream healthy")
    # While the queue answers, a sync schedules the next poll at the fallback interval, not 10 s.
    bs.force_sync(kube, namespace, "polled")
    stretched = f"{namespace}/polled Synced"
    line = wait_for(lambda: next((ln for ln in operator.output().splitlines() if stretched in ln
                                  and "change events cover it" in ln), None),
                    timeout=60, what="a sync that polls next at the fallback interval")
    print(f"while the stream is healthy: {line[line.index(stretched):]}")
    assert "next poll in" in line and float(line.rsplit("next poll in ", 1)[1].split()[0]) >= 3000

    sqs.delete_queue(QueueUrl=queue_url)
    down = wait_for(lambda: (s := _stream(kube, namespace)) and s.get("healthy") is False and s, timeout=90,
                    what="the store reporting the change stream unhealthy")
    print(f"store status.changeEvents after the queue was deleted: {down}")
    assert down["reason"] not in ("", "Receiving") and "ReceiveMessage failed" in down["message"]
    assert operator.metric("botsecret_change_stream_healthy", store=f"{namespace}/aws") == 0

    # A poll after the stream was seen down (not the wake-up at the transition, which came before):
    # the BotSecret polls at its own 10 s again, where the fallback would have been an hour.
    mark = time.time()
    bs.wait_refreshed(operator, namespace, "polled", after=mark, timeout=60)
    second = secret_value("polled2")
    sm.put_secret_value(SecretId=remote, SecretString=second)  # no event: only polling can see it
    bs.wait_secret(kube, namespace, "polled", {"K": second.encode()}, timeout=60)
