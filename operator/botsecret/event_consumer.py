"""One thread that reads one change-event queue (an SQS queue, a Pub/Sub subscription) for as
long as a store names it.

A thread of its own, not the event loop's executor: a long poll holds its thread for up to 20 s,
and sync cycles must never wait behind it. Each received batch is classified (``parse``: the
provider's message format), handed over, then deleted (acknowledged), so a message that cannot
be understood is dropped rather than received again for ever. A failed receive reports the
stream unhealthy (polling takes over) and is retried with jittered, growing backoff on a new
client (the credentials may have rotated).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from .event_messages import ChangeEvent, Ignored
from .providers.change_queue import QueueError, QueueMessage

__all__ = ["FIRST_BACKOFF_SECONDS", "MAX_BACKOFF_SECONDS", "ChangeQueue", "QueueConsumer", "backoff_seconds"]

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0


class ChangeQueue(Protocol):
    def receive(self, *, wait: bool = True) -> list[QueueMessage]: ...
    def delete(self, messages: Sequence[QueueMessage]) -> int: ...
    def close(self) -> None: ...


def backoff_seconds(failures: int, rng: random.Random) -> float:
    """From about 1 s, doubling, to about a minute; ±50 % so consumers of one endpoint spread out."""
    base = min(FIRST_BACKOFF_SECONDS * 2.0 ** min(failures - 1, 16), MAX_BACKOFF_SECONDS)
    return base * rng.uniform(0.5, 1.5)


class QueueConsumer:
    """``open_queue`` builds a client (it may raise a classified provider error); ``parse``
    classifies one message; ``on_messages`` gets each batch, classified; ``on_health`` gets
    (healthy, error class) after every receive; ``on_delete_failure`` the error class of a failed
    delete. The callbacks run on this thread and must hand over quickly."""

    def __init__(self, name: str, open_queue: Callable[[], ChangeQueue],
                 on_messages: Callable[[list[ChangeEvent | Ignored]], None],
                 on_health: Callable[[bool, str], None],
                 on_delete_failure: Callable[[str], None] = lambda _: None,
                 rng: random.Random | None = None, *,
                 parse: Callable[[QueueMessage], ChangeEvent | Ignored]) -> None:
        self._open, self._parse = open_queue, parse
        self._on_messages, self._on_health, self._on_delete_failure = on_messages, on_health, on_delete_failure
        self._rng = rng or random.Random()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"botsecret-events-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does after the long poll in progress (at most its wait)."""
        self._stopped.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        queue: ChangeQueue | None = None
        failures = 0
        while not self._stopped.is_set():
            try:
                first = queue is None
                if queue is None:
                    queue = self._open()
                messages = queue.receive(wait=not first)
            except Exception as e:  # noqa: BLE001 - QueueError, ProviderError or a bug: never die; name the class only
                failures += 1
                _close(queue)
                queue = None
                self._on_health(False, _error_class(e))
                self._stopped.wait(backoff_seconds(failures, self._rng))
                continue
            failures = 0
            self._on_health(True, "")
            if messages:
                self._on_messages([self._parse(m) for m in messages])
                try:
                    refused = queue.delete(messages)
                    if refused:
                        self._on_delete_failure("DeleteRefused")
                except Exception as e:  # noqa: BLE001 - undeleted messages come back: one wake-up too many
                    self._on_delete_failure(_error_class(e))
        _close(queue)


def _error_class(error: BaseException) -> str:
    if isinstance(error, QueueError):
        return error.error_class
    return type(error).__name__


def _close(queue: ChangeQueue | None) -> None:
    if queue is not None:
        with contextlib.suppress(Exception):  # closing a broken client must not stop the consumer
            queue.close()
    return None
