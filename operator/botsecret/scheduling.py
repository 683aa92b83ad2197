"""When to sync next. Pure; every schedule is jittered so that BotSecrets created together do not
hit the providers together forever after."""

from __future__ import annotations

import enum
import random

__all__ = ["JITTER", "MAX_BACKOFF_SECONDS", "Retry", "next_delay", "startup_spread_seconds", "throttle_cap"]

JITTER = 0.10
MAX_BACKOFF_SECONDS = 300.0
FIRST_BACKOFF_SECONDS = 2.0
# Under throttling the interval grows to ten refresh intervals, but not past an hour unless two
# intervals are already longer than that.
THROTTLE_MAX_FACTOR = 10.0
THROTTLE_MAX_SECONDS = 3600.0
# BotSecrets that existed before an operator start are first synced over at least this long...
STARTUP_SPREAD_SECONDS = 10.0
# ...and longer for a larger fleet: about this many a second.
STARTUP_RATE_PER_SECOND = 100.0


class Retry(enum.Enum):
    """How an outcome is retried."""

    NO = "no"  # at the next refresh: nothing outside the spec will change the answer
    TRANSIENT = "transient"  # soon: the store did not answer, or the Secret write failed
    DEPENDENCY = "dependency"  # soon, then less and less often: a Secret or remote secret not there yet
    THROTTLED = "throttled"  # later than the refresh: the store says we ask too often


def throttle_cap(refresh_seconds: float) -> float:
    """The longest a throttled BotSecret waits."""
    return max(2 * refresh_seconds, min(THROTTLE_MAX_FACTOR * refresh_seconds, THROTTLE_MAX_SECONDS))


def startup_spread_seconds(fleet_size: int) -> float:
    """Over how long the first syncs after a start are spread: in proportion to the fleet, so that
    10,000 BotSecrets do not all ask their providers in the same ten seconds."""
    return max(STARTUP_SPREAD_SECONDS, fleet_size / STARTUP_RATE_PER_SECOND)


def _exponential(first: float, failures: int) -> float:
    # The exponent stops growing long after every cap is reached, so it never overflows.
    return first * 2.0 ** min(failures - 1, 32)


def next_delay(*, refresh_seconds: float, failures: int, retry: Retry = Retry.TRANSIENT,
               retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds until the next sync: the refresh interval ±10 %, or after ``failures`` failed syncs
    in a row a backoff that depends on how the last one failed (see :class:`Retry`).

    A transient failure backs off from 2 s to at most 5 minutes (and the refresh interval); a
    missing dependency from 2 s up to the refresh interval; throttling from two refresh
    intervals up to :func:`throttle_cap`. A provider's Retry-After is honoured when it asks for
    longer, up to the throttling cap.
    """
    rng = rng or random.Random()
    if failures <= 0 or retry is Retry.NO:
        base = refresh_seconds
    elif retry is Retry.TRANSIENT:
        base = min(_exponential(FIRST_BACKOFF_SECONDS, failures), MAX_BACKOFF_SECONDS, refresh_seconds)
    elif retry is Retry.DEPENDENCY:
        base = min(_exponential(FIRST_BACKOFF_SECONDS, failures), refresh_seconds)
    else:
        base = min(_exponential(2 * refresh_seconds, failures), throttle_cap(refresh_seconds))
    delay = float(base * rng.uniform(1 - JITTER, 1 + JITTER))
    if failures > 0 and retry_after is not None:
        delay = max(delay, min(retry_after, throttle_cap(refresh_seconds)))
    return delay
