"""Polling with a deadline: the test world is eventually consistent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 30, interval: float = 0.1, what: str = "condition",
             ignore: tuple[type[Exception], ...] = (Exception,)) -> T:
    """Call ``check`` until it returns something truthy; return that. Exceptions of the ``ignore``
    types count as 'not yet' until the deadline, when the last one is raised; others at once."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
            last_error = None
        except ignore as e:
            last_error = e
        if time.monotonic() > deadline:
            if last_error is not None:
                raise last_error
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)
