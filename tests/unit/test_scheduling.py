"""botsecret.scheduling.next_delay, with seeded random generators."""

from __future__ import annotations

import random

import pytest

from botsecret.reconcile import SyncResult
from botsecret.scheduling import FIRST_BACKOFF_SECONDS, JITTER, MAX_BACKOFF_SECONDS, Retry, next_delay, throttle_cap

SEEDS = range(200)


def test_constants() -> None:
    assert JITTER == 0.10
    assert MAX_BACKOFF_SECONDS == 300.0
    assert FIRST_BACKOFF_SECONDS == 2.0


@pytest.mark.parametrize("refresh", [5.0, 60.0, 3600.0, 7 * 24 * 3600.0])
def test_refresh_delay_within_ten_percent(refresh: float) -> None:
    delays = [next_delay(refresh_seconds=refresh, failures=0, rng=random.Random(seed)) for seed in SEEDS]
    assert all(0.9 * refresh <= d <= 1.1 * refresh for d in delays)
    # Jittered for real: not the same delay for every BotSecret, and both sides of the interval are used.
    assert len(set(delays)) > 100
    assert min(delays) < 0.95 * refresh
    assert max(delays) > 1.05 * refresh


def test_seeded_generator_is_reproducible() -> None:
    a = next_delay(refresh_seconds=3600, failures=0, rng=random.Random(42))
    b = next_delay(refresh_seconds=3600, failures=0, rng=random.Random(42))
    assert a == b
    assert a == pytest.approx(3600 * random.Random(42).uniform(0.9, 1.1))


def test_without_rng_still_within_jitter() -> None:
    for _ in range(50):
        assert 540.0 <= next_delay(refresh_seconds=600, failures=0) <= 660.0


def test_negative_failures_count_as_none() -> None:
    assert 3240.0 <= next_delay(refresh_seconds=3600, failures=-1, rng=random.Random(1)) <= 3960.0


@pytest.mark.parametrize(("failures", "base"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (6, 64.0), (8, 256.0)])
def test_backoff_doubles_from_two_seconds(failures: int, base: float) -> None:
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=3600, failures=failures, rng=random.Random(seed))
        assert 0.9 * base <= delay <= 1.1 * base


@pytest.mark.parametrize("failures", [9, 10, 20, 100, 1000])
def test_backoff_capped_at_five_minutes(failures: int) -> None:
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=3600, failures=failures, rng=random.Random(seed))
        assert 0.9 * MAX_BACKOFF_SECONDS <= delay <= 1.1 * MAX_BACKOFF_SECONDS


@pytest.mark.parametrize(("refresh", "failures"), [(30.0, 5), (30.0, 50), (5.0, 3), (100.0, 8)])
def test_backoff_capped_at_refresh_interval(refresh: float, failures: int) -> None:
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=refresh, failures=failures, rng=random.Random(seed))
        assert 0.9 * refresh <= delay <= 1.1 * refresh


def test_backoff_is_jittered_too() -> None:
    delays = {next_delay(refresh_seconds=3600, failures=3, rng=random.Random(seed)) for seed in SEEDS}
    assert len(delays) > 100


def test_retry_after_is_honoured_when_longer() -> None:
    for seed in SEEDS:
        assert next_delay(refresh_seconds=3600, failures=1, retry_after=30.0, rng=random.Random(seed)) == 30.0
    # Even beyond the backoff cap: the provider said when to come back.
    assert next_delay(refresh_seconds=3600, failures=50, retry_after=900.0, rng=random.Random(0)) == 900.0


def test_retry_after_shorter_than_backoff_does_not_shorten_it() -> None:
    for seed in SEEDS:
        with_hint = next_delay(refresh_seconds=3600, failures=6, retry_after=1.0, rng=random.Random(seed))
        without = next_delay(refresh_seconds=3600, failures=6, rng=random.Random(seed))
        assert with_hint == without
        assert with_hint >= 0.9 * 64


# Bug found while writing these tests.


def test_backoff_after_very_many_failures() -> None:
    delay = next_delay(refresh_seconds=3600, failures=1025, rng=random.Random(0))
    assert 0.9 * MAX_BACKOFF_SECONDS <= delay <= 1.1 * MAX_BACKOFF_SECONDS


# What each outcome retries like (issue 9, items 5 and 7).


@pytest.mark.parametrize(("failures", "base"), [(1, 2.0), (5, 32.0), (9, 512.0), (11, 2048.0)])
def test_a_missing_dependency_backs_off_from_seconds(failures: int, base: float) -> None:
    # GitOps ordering: the credentials Secret or the remote secret lands after the BotSecret.
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=3600, failures=failures, retry=Retry.DEPENDENCY, rng=random.Random(seed))
        assert 0.9 * base <= delay <= 1.1 * base


@pytest.mark.parametrize("failures", [12, 20, 1025])
def test_a_missing_dependency_backs_off_up_to_the_refresh_interval(failures: int) -> None:
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=3600, failures=failures, retry=Retry.DEPENDENCY, rng=random.Random(seed))
        assert 0.9 * 3600 <= delay <= 1.1 * 3600


def test_no_retry_waits_for_the_refresh() -> None:
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=3600, failures=3, retry=Retry.NO, rng=random.Random(seed))
        assert 0.9 * 3600 <= delay <= 1.1 * 3600


@pytest.mark.parametrize(("refresh", "failures", "base"), [
    (5.0, 1, 10.0), (5.0, 2, 20.0), (5.0, 3, 40.0), (5.0, 4, 50.0), (5.0, 100, 50.0),
    (60.0, 1, 120.0), (60.0, 4, 600.0), (60.0, 9, 600.0),
    (600.0, 1, 1200.0), (600.0, 3, 3600.0), (600.0, 40, 3600.0),
    (3600.0, 1, 7200.0), (3600.0, 5, 7200.0),
])
def test_throttling_stretches_the_interval_beyond_the_refresh(refresh: float, failures: int, base: float) -> None:
    assert throttle_cap(refresh) == max(2 * refresh, min(10 * refresh, 3600.0))
    for seed in SEEDS:
        delay = next_delay(refresh_seconds=refresh, failures=failures, retry=Retry.THROTTLED, rng=random.Random(seed))
        assert 0.9 * base <= delay <= 1.1 * base
        # Always slower than a healthy BotSecret of the same interval at its fastest.
        assert delay > 1.1 * refresh


def test_throttling_is_jittered() -> None:
    delays = {next_delay(refresh_seconds=5, failures=2, retry=Retry.THROTTLED, rng=random.Random(seed))
              for seed in SEEDS}
    assert len(delays) > 100


def test_retry_after_is_honoured_under_throttling_up_to_the_cap() -> None:
    assert next_delay(refresh_seconds=5, failures=1, retry=Retry.THROTTLED, retry_after=45.0,
                      rng=random.Random(0)) == 45.0
    # A Retry-After of a day is not taken at its word: at most the throttling cap.
    assert next_delay(refresh_seconds=5, failures=1, retry=Retry.THROTTLED, retry_after=86400.0,
                      rng=random.Random(0)) == throttle_cap(5)


@pytest.mark.parametrize(("reason", "throttled", "retry"), [
    ("Synced", False, Retry.NO), ("InvalidSpec", False, Retry.NO), ("TargetConflict", False, Retry.NO),
    ("DataTooLarge", False, Retry.NO), ("ProviderError", False, Retry.TRANSIENT),
    ("WriteFailed", False, Retry.TRANSIENT), ("MissingKeys", False, Retry.DEPENDENCY),
    ("AccessDenied", False, Retry.DEPENDENCY), ("ProviderError", True, Retry.THROTTLED),
])
def test_sync_results_retry_by_reason(reason: str, throttled: bool, retry: Retry) -> None:
    result = SyncResult(reason == "Synced", reason, "message", throttled=throttled)
    assert result.retry is retry
    assert result.retryable is (retry is not Retry.NO)
