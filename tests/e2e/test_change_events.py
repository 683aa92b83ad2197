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
from tests.harness.change_events import (
    assert_one_woke_one_malformed,
    bot_reading,
    two_readers_of_a_one_of_b,
    wait_polls_at_fallback,
    wait_stream,
)
from tests.harness.cluster_fixtures import Kube
from tests.harness.counting_proxy import CountingProxy
from tests.harness.leaks import secret_value
from tests.harness.stores import create_store
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
    two_readers_of_a_one_of_b(kube, namespace, "aws", a, b)

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
    assert_one_woke_one_malformed(operator, f"{namespace}/aws")


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
    bot_reading(kube, namespace, "polled", "aws", remote, "10s")
    bs.wait_ready(kube, namespace, "polled", reason="Synced", timeout=120)
    wait_stream(kube, namespace, "aws", healthy=True)
    # While the queue answers, a sync schedules the next poll at the fallback interval, not 10 s.
    assert wait_polls_at_fallback(operator, kube, namespace, "polled") >= 3000

    sqs.delete_queue(QueueUrl=queue_url)
    down = wait_stream(kube, namespace, "aws", healthy=False)
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
