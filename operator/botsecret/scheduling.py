"""When to sync next. Pure; every schedule is jittered so that BotSecrets created together do not
hit the providers together forever after."""

from __future__ import annotations

import random

__all__ = ["JITTER", "MAX_BACKOFF_SECONDS", "next_delay"]

JITTER = 0.10
MAX_BACKOFF_SECONDS = 300.0
FIRST_BACKOFF_SECONDS = 2.0


def next_delay(*, refresh_seconds: float, failures: int, retry_after: float | None = None,
               rng: random.Random | None = None) -> float:
    """Seconds until the next sync: the refresh interval ±10 %, or after ``failures`` retryable
    failures in a row an exponential backoff (capped by the refresh interval and 5 minutes)."""
    rng = rng or random.Random()
    if failures <= 0:
        return float(refresh_seconds * rng.uniform(1 - JITTER, 1 + JITTER))
    # The exponent stops growing long after the cap is reached, so it never overflows.
    base = min(FIRST_BACKOFF_SECONDS * 2.0 ** min(failures - 1, 32), MAX_BACKOFF_SECONDS, refresh_seconds)
    delay = base * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
