"""Shared reads, gathering and endpoint limits: pure logic over a fake provider (the e2e tests in
tests/e2e/test_scale.py count the same at proxies in front of real servers)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping, Sequence

import pytest

from botsecret.limits import EndpointLimiter, LimitReached, Limits
from botsecret.providers.base import Fetched, NotFound, ProviderError, RemoteRef, Throttled, Unavailable
from botsecret.rollout import MAX_STUCK_RECHECK, PAUSED_RECHECK, stuck_recheck
from botsecret.scheduling import startup_spread_seconds
from botsecret.shared_fetch import SharedProvider
from botsecret.values import SecretValue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProvider:
    def __init__(self, answer: Fetched | ProviderError | None = None, gate: threading.Event | None = None) -> None:
        self.calls: list[list[RemoteRef]] = []
        self.answer = answer
        self.gate = gate
        self._lock = threading.Lock()

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        with self._lock:
            self.calls.append(list(refs))
        if self.gate is not None:
            self.gate.wait(5)
        return {ref: self.answer or Fetched(SecretValue(ref.name.encode()), "v1") for ref in refs}

    def check(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


A, B = RemoteRef("a"), RemoteRef("b")


def test_a_value_read_moments_ago_is_shared_until_it_is_older_than_max_age() -> None:
    clock, inner = Clock(), FakeProvider()
    shared = SharedProvider(inner, clock=clock)
    for _ in range(10):
        assert shared.fetch_shared([A], max_age=30)[A] == Fetched(SecretValue(b"a"), "v1")
    assert len(inner.calls) == 1, f"10 BotSecrets naming one remote secret made {len(inner.calls)} calls"
    clock.now += 31
    shared.fetch_shared([A], max_age=30)
    assert len(inner.calls) == 2


def test_fresh_reads_never_take_a_kept_value() -> None:
    inner = FakeProvider()
    shared = SharedProvider(inner, clock=Clock())
    shared.fetch_shared([A], max_age=30)
    shared.fetch_shared([A], max_age=30, fresh=True)
    shared.fetch([A])  # the Provider interface (the CLI's check and render) is always fresh
    assert len(inner.calls) == 3


def test_errors_are_never_kept() -> None:
    inner = FakeProvider(answer=Unavailable("down"))
    shared = SharedProvider(inner, clock=Clock())
    assert isinstance(shared.fetch_shared([A], max_age=30)[A], Unavailable)
    assert isinstance(shared.fetch_shared([A], max_age=30)[A], Unavailable)
    assert len(inner.calls) == 2
    inner.answer = NotFound("gone")
    assert isinstance(shared.fetch_shared([A], max_age=30)[A], NotFound)
    assert len(inner.calls) == 3


def test_a_read_in_flight_is_waited_for_not_sent_again() -> None:
    gate = threading.Event()
    inner = FakeProvider(gate=gate)
    shared = SharedProvider(inner)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(shared.fetch_shared([A], max_age=30)[A]))
               for _ in range(20)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.2)  # let every thread reach the flight (the gate holds the one call)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(results) == 20 and all(isinstance(r, Fetched) for r in results)
    assert len(inner.calls) == 1, f"single flight broken: {len(inner.calls)} calls"


def test_batching_gathers_concurrent_reads_into_full_batches() -> None:
    inner = FakeProvider()
    shared = SharedProvider(inner, batch_size=20, gather_seconds=1.0)
    refs = [RemoteRef(f"s{i}") for i in range(40)]
    start = threading.Barrier(40)

    def one(ref: RemoteRef) -> None:
        start.wait()
        shared.fetch_shared([ref], max_age=30)

    threads = [threading.Thread(target=one, args=(ref,)) for ref in refs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(len(c) for c in inner.calls) == [20, 20], [len(c) for c in inner.calls]


def test_the_limiter_waits_for_tokens_and_refuses_past_max_wait() -> None:
    clock, slept = Clock(), []
    limiter = EndpointLimiter(Limits(concurrency=2, rate=10, max_wait=5), clock=clock, sleep=slept.append)
    with limiter.slot(20):  # the whole burst (2 x rate)
        pass
    with limiter.slot(10):  # a second's worth of debt: waits a second
        pass
    assert slept == [pytest.approx(1.0)]
    with pytest.raises(LimitReached), limiter.slot(100):
        pass


def test_retry_after_pauses_the_endpoint() -> None:
    clock = Clock()
    limiter = EndpointLimiter(Limits(rate=0, max_wait=5), clock=clock, sleep=lambda _: None)
    limiter.observe(Throttled("slow down", retry_after=30))
    with pytest.raises(LimitReached) as refused, limiter.slot():
        pass
    assert refused.value.retry_after == pytest.approx(30)
    clock.now += 31
    with limiter.slot():
        pass


def test_a_throttled_answer_through_the_shared_provider_pauses_its_endpoint() -> None:
    clock = Clock()
    limiter = EndpointLimiter(Limits(rate=0, max_wait=5), clock=clock, sleep=lambda _: None)
    inner = FakeProvider(answer=Throttled("slow down", retry_after=60))
    shared = SharedProvider(inner, limiter=limiter, clock=clock)
    shared.fetch_shared([A], max_age=30)
    assert isinstance(shared.fetch_shared([B], max_age=30)[B], LimitReached)
    assert len(inner.calls) == 1, "a paused endpoint was asked again"


def test_stuck_workloads_are_looked_at_less_and_less_often() -> None:
    now = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
    assert stuck_recheck(PAUSED_RECHECK, "2026-01-01T12:00:00Z", now) == PAUSED_RECHECK
    assert stuck_recheck(PAUSED_RECHECK, "2026-01-01T11:00:00Z", now) == MAX_STUCK_RECHECK
    assert stuck_recheck(PAUSED_RECHECK, "2026-01-01T11:58:00Z", now) == 30.0
    assert stuck_recheck(PAUSED_RECHECK, None, now) == PAUSED_RECHECK


def test_the_startup_spread_grows_with_the_fleet() -> None:
    assert startup_spread_seconds(0) == 10.0
    assert startup_spread_seconds(1000) == 10.0
    assert startup_spread_seconds(10000) == 100.0


def test_endpoint_limits_come_from_the_environment_the_flags_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from botsecret.runtime import OperatorConfig

    monkeypatch.setenv("BOTSECRET_PROVIDER_CONCURRENCY", "4")
    monkeypatch.setenv("BOTSECRET_PROVIDER_RATE", "2.5")
    limits = OperatorConfig.from_environment().limits
    assert (limits.concurrency, limits.rate) == (4, 2.5)


def test_one_limiter_per_endpoint_shared_by_identities() -> None:
    from botsecret.limits import Limiters
    from botsecret.spec import AwsSource, SecretRef

    limiters = Limiters(Limits())
    one = AwsSource(region="eu-west-1", credentials_secret=SecretRef("a", "creds"))
    other_identity = AwsSource(region="eu-west-1", credentials_secret=SecretRef("b", "creds"))
    other_region = AwsSource(region="us-east-1")
    assert limiters.for_provider(one) is limiters.for_provider(other_identity)
    assert limiters.for_provider(one) is not limiters.for_provider(other_region)
