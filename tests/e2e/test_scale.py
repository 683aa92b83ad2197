"""Scale (issue 12): reads shared across BotSecrets of one identity, AWS reads gathered into
batches, counted at a proxy in front of moto; and the scale benchmark's quick mode."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.counting_proxy import CountingProxy
from tests.harness.leaks import secret_value
from tests.harness.stores import create_store, store_ref

pytestmark = pytest.mark.scale
BATCH = "secretsmanager.BatchGetSecretValue"


@pytest.fixture
def proxy(aws: MotoServer) -> Any:
    counting = CountingProxy(aws.endpoint)
    counting.start()
    yield counting
    counting.stop()


def _aws_store(kube: Kube, namespace: str, name: str, endpoint: str, key_id: str) -> None:
    bs.credentials_secret(kube, namespace, f"{name}-credentials", {"accessKeyId": key_id, "secretAccessKey": "testing"})
    create_store(kube, namespace, name, {"aws": {"region": "us-east-1", "endpoint": endpoint,
                                                 "credentialsSecretRef": {"name": f"{name}-credentials"}}})


def _bot(kube: Kube, namespace: str, name: str, store: str, remote: str, refresh: str = "60s") -> None:
    bs.create(kube, namespace, name, {"sources": [{"name": "aws", "storeRef": store_ref(store)}],
                                      "refreshInterval": refresh,
                                      "data": [{"key": "K", "remoteRef": {"name": remote}}]})


def _reads(proxy: CountingProxy, remotes: list[str]) -> dict[str, int]:
    return {remote: proxy.reads_of(remote) for remote in remotes}


def test_fifty_botsecrets_naming_five_remote_secrets_make_five_reads_per_cycle(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer, proxy: CountingProxy,
) -> None:
    sm = aws.client()
    remotes = [f"{namespace}/shared-{i}" for i in range(5)]
    for remote in remotes:
        sm.create_secret(Name=remote, SecretString=secret_value("shared"))
    _aws_store(kube, namespace, "aws", proxy.endpoint, "one-identity")
    names = [f"bot-{i:02d}" for i in range(50)]
    for i, name in enumerate(names):
        _bot(kube, namespace, name, "aws", remotes[i % 5])
    for name in names:
        bs.wait_ready(kube, namespace, name, reason="Synced", timeout=180)
    first = _reads(proxy, remotes)
    print(f"first syncs of 50 BotSecrets on 5 remote secrets: reads per remote secret {first}")
    assert first == dict.fromkeys(remotes, 1), f"first syncs: {first}"

    # One refresh cycle: every BotSecret refreshes once (60 s, jittered); each remote is read once.
    mark = time.time()
    for name in names:
        bs.wait_refreshed(operator, namespace, name, after=mark, timeout=180)
    cycle = {remote: proxy.reads_of(remote) - first[remote] for remote in remotes}
    print(f"one refresh cycle of 50 BotSecrets: reads per remote secret {cycle}")
    assert cycle == dict.fromkeys(remotes, 1), f"one refresh cycle: {cycle}"


def test_two_identities_naming_one_remote_secret_read_it_separately(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer, proxy: CountingProxy,
) -> None:
    remote = f"{namespace}/both"
    aws.client().create_secret(Name=remote, SecretString=secret_value("both"))
    _aws_store(kube, namespace, "first", proxy.endpoint, "identity-one")
    _aws_store(kube, namespace, "second", proxy.endpoint, "identity-two")
    for i in range(3):
        _bot(kube, namespace, f"one-{i}", "first", remote)
        _bot(kube, namespace, f"two-{i}", "second", remote)
    for i in range(3):
        bs.wait_ready(kube, namespace, f"one-{i}", reason="Synced", timeout=120)
        bs.wait_ready(kube, namespace, f"two-{i}", reason="Synced", timeout=120)
    signers = proxy.reads_by_signer(remote)
    print(f"6 BotSecrets, 2 identities, 1 remote secret: reads by identity {signers}")
    assert signers == {"identity-one": 1, "identity-two": 1}, signers


def test_forty_aws_references_of_one_identity_due_together_take_two_batch_calls(
    aws: MotoServer, proxy: CountingProxy,
) -> None:
    """Forty BotSecrets' syncs asking at once (threads released by a barrier), each for its own
    remote secret, through the shared client of one identity: the real AWS provider, real moto."""
    from botsecret.providers.aws import AwsCredentials, AwsProvider
    from botsecret.providers.base import Fetched, RemoteRef
    from botsecret.shared_fetch import SharedProvider
    from botsecret.spec import AwsSource

    sm = aws.client()
    remotes = [f"batch-{time.monotonic_ns()}-{i}" for i in range(40)]
    for remote in remotes:
        sm.create_secret(Name=remote, SecretString=secret_value("batched"))
    source = AwsSource(region="us-east-1", endpoint=proxy.endpoint)
    provider = AwsProvider(source, credentials=AwsCredentials("testing", "testing"))
    shared = SharedProvider(provider, batch_size=20, gather_seconds=0.5)
    before = proxy.calls(BATCH)
    answers: dict[str, Any] = {}
    start = threading.Barrier(len(remotes))

    def sync(remote: str) -> None:
        start.wait()
        answers[remote] = shared.fetch_shared([RemoteRef(remote)], max_age=30)[RemoteRef(remote)]

    threads = [threading.Thread(target=sync, args=(remote,)) for remote in remotes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    shared.close()
    calls = proxy.calls(BATCH) - before
    print(f"40 AWS references of one identity due together: {calls} BatchGetSecretValue calls, "
          f"{proxy.calls('secretsmanager.GetSecretValue')} GetSecretValue")
    assert all(isinstance(answers.get(r), Fetched) for r in remotes), answers
    assert calls == 2


def test_the_scale_benchmark_quick_mode_runs_end_to_end(tmp_path: Path) -> None:
    """N = 100 in a world of its own: prints every figure; asserts none on time, only that each
    was measured and that an operator restart wrote and restarted nothing."""
    from bench.scale import run

    figures = run(100, tmp_path / "world", refresh_s=30, burst=20, out=tmp_path / "results")
    assert figures["apply"]["apply_to_ready_s"] > 0
    assert figures["idle"]["full_syncs"] > 0
    assert figures["force_sync"]["patched"] == figures["force_sync"]["burst"]
    assert figures["restart"]["rechecked_s"] is not None
    assert figures["restart"]["secret_writes"] == 0 and figures["restart"]["template_patches"] == 0
    assert (tmp_path / "results" / "summary.json").exists()
    seen = [*figures["apply"]["kube_requests_new_by_verb"], *figures["idle"]["kube_requests_by_verb"],
            *figures["restart"]["kube_requests_by_verb"]]
    assert not [k for k in seen if k in ("list secrets", "watch secrets")], "the operator listed core Secrets"
    assert figures["idle"]["kube_writes"] == 0, figures["idle"]["kube_requests_by_verb"]
