"""One identity's provider client, shared by every BotSecret that acts as that identity.

A remote secret that many BotSecrets name is asked for once: a value read less than ``max_age``
ago (half the asking BotSecret's refresh interval) is answered from memory, and a read already on
its way is waited for instead of being sent again (single flight). Only values are kept, never
errors: a failed read is tried again by the next BotSecret that asks. A ``fresh`` request (a
force-sync, a spec edit) never takes a kept value or a read that left before it; it may join a
batch still being gathered, which leaves after it.

For a provider that reads many secrets in one call (AWS ``BatchGetSecretValue``, 20 ids), reads
due at the same moment are gathered for a few milliseconds into one call. The instance belongs to
one pool key (namespace, store settings, credential versions), so nothing crosses identities.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from . import metrics
from .limits import EndpointLimiter
from .providers.base import Fetched, Provider, ProviderError, RemoteRef, Unavailable

__all__ = ["GATHER_SECONDS", "SharedProvider"]

GATHER_SECONDS = 0.05  # how long a batch waits for more reads before it leaves
SWEEP_SECONDS = 60.0
Answer = Fetched | ProviderError


@dataclass(eq=False)
class _Flight:
    """One call to the provider, or a batch still gathering its references."""

    refs: list[RemoteRef] = field(default_factory=list)
    sent_at: float | None = None  # None while gathering
    done: threading.Event = field(default_factory=threading.Event)
    answers: dict[RemoteRef, Answer] = field(default_factory=dict)


class SharedProvider:
    """A :class:`Provider` with shared reads (see the module's text); thread-safe."""

    def __init__(self, inner: Provider, *, batch_size: int = 1, wait_seconds: float = 30.0,
                 limiter: EndpointLimiter | None = None, gather_seconds: float = GATHER_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._batch_size = batch_size
        self._gather = gather_seconds if batch_size > 1 else 0.0
        self._wait = wait_seconds
        self._limiter = limiter
        self._clock = clock
        self._cond = threading.Condition()
        self._kept: dict[RemoteRef, tuple[float, Fetched]] = {}
        self._flying: dict[RemoteRef, _Flight] = {}
        self._gathering: _Flight | None = None
        self._longest_age = 0.0
        self._swept = clock()
        # Remote name -> when a change event said it changed: no read sent before is kept or joined.
        self._changed: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Shared({self._inner!r})"

    # -- the Provider interface -------------------------------------------------------------

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Answer]:
        return self.fetch_shared(refs, max_age=0.0, fresh=True)

    def check(self) -> str:
        return self._inner.check()

    def close(self) -> None:
        self._inner.close()

    def invalidate(self, names: Collection[str]) -> None:
        """A change event named these remote secrets: what was read of them before now is stale,
        kept or still on its way."""
        with self._cond:
            now = self._clock()
            for name in names:
                self._changed[name] = now
            self._kept = {ref: kept for ref, kept in self._kept.items() if ref.name not in self._changed
                          or kept[0] > self._changed[ref.name]}
            for ref, flight in list(self._flying.items()):
                if flight.sent_at is not None and ref.name in names:
                    del self._flying[ref]  # its callers still get its answer; new ones read again

    def _stale(self, ref: RemoteRef, sent_at: float) -> bool:
        changed = self._changed.get(ref.name)
        return changed is not None and sent_at <= changed

    # -- shared reads -----------------------------------------------------------------------

    def fetch_shared(self, refs: Sequence[RemoteRef], *, max_age: float,
                     fresh: bool = False) -> dict[RemoteRef, Answer]:
        """Each reference's answer: kept if younger than ``max_age`` (unless ``fresh``), else
        from a read in flight, else from a read of this call."""
        answers: dict[RemoteRef, Answer] = {}
        waits: dict[RemoteRef, _Flight] = {}
        led: list[_Flight] = []
        with self._cond:
            now = self._clock()
            self._longest_age = max(self._longest_age, max_age)
            self._sweep(now)
            for ref in dict.fromkeys(refs):
                kept = self._kept.get(ref)
                if not fresh and kept is not None and now - kept[0] <= max_age:
                    answers[ref] = kept[1]
                    continue
                flight = self._flying.get(ref)
                if flight is not None and (not fresh or flight.sent_at is None):
                    waits[ref] = flight
                    continue
                flight, leading = self._claim(ref, led[-1] if led and self._batch_size <= 1 else None)
                waits[ref] = flight
                if leading:
                    led.append(flight)
        if answers:
            metrics.SHARED_READS.inc(len(answers))
        for flight in led:
            self._lead(flight)
        deadline = self._clock() + self._wait
        for ref, flight in waits.items():
            if not flight.done.wait(max(0.0, deadline - self._clock())):
                answers[ref] = Unavailable(f"no answer for remote secret {ref.name!r} within {self._wait:.0f} s")
                continue
            answers[ref] = flight.answers.get(ref) or Unavailable(f"no answer for remote secret {ref.name!r}")
        return answers

    def _claim(self, ref: RemoteRef, own: _Flight | None) -> tuple[_Flight, bool]:
        """Put ``ref`` in the batch being gathered, or start one; answer it and whether this caller
        newly leads it (sends it). Without batching, a caller's references go in its own one call
        (``own``), as the provider would have read them. Called with the lock held."""
        if own is not None:
            own.refs.append(ref)
            self._flying[ref] = own
            return own, False
        gathering = self._gathering
        if gathering is not None and len(gathering.refs) < self._batch_size:
            gathering.refs.append(ref)
            self._flying[ref] = gathering
            if len(gathering.refs) >= self._batch_size:
                self._cond.notify_all()  # full: its leader sends it now
            return gathering, False
        flight = _Flight(refs=[ref])
        self._flying[ref] = flight
        if self._batch_size > 1:
            self._gathering = flight
        return flight, True

    def _lead(self, flight: _Flight) -> None:
        with self._cond:
            if self._gather > 0:
                until = self._clock() + self._gather
                self._cond.wait_for(lambda: len(flight.refs) >= self._batch_size or self._clock() >= until,
                                    timeout=self._gather)
            if self._gathering is flight:
                self._gathering = None
            flight.sent_at = self._clock()
            refs = list(flight.refs)
        answers = self._call(refs)
        with self._cond:
            for ref in refs:
                answer = answers.get(ref) or Unavailable(f"no answer for remote secret {ref.name!r}")
                flight.answers[ref] = answer
                if isinstance(answer, Fetched) and not self._stale(ref, flight.sent_at):
                    self._kept[ref] = (flight.sent_at, answer)
                else:
                    self._kept.pop(ref, None)  # errors are never kept, nor an older value past them
                if self._flying.get(ref) is flight:
                    del self._flying[ref]
        flight.done.set()

    def _call(self, refs: list[RemoteRef]) -> Mapping[RemoteRef, Answer]:
        calls = -(-len(refs) // self._batch_size) if self._batch_size > 1 else len(refs)
        try:
            if self._limiter is not None:
                with self._limiter.slot(calls):
                    return self._observe(self._inner.fetch(refs))
            return self._inner.fetch(refs)
        except ProviderError as e:
            if self._limiter is not None:
                self._limiter.observe(e)
            return dict.fromkeys(refs, e)
        except Exception as e:  # noqa: BLE001 - a bug in one provider must not stop the others; its text may echo data
            return dict.fromkeys(refs, Unavailable(f"unexpected {type(e).__name__} reading remote secrets"))

    def _observe(self, answers: Mapping[RemoteRef, Answer]) -> Mapping[RemoteRef, Answer]:
        assert self._limiter is not None
        for answer in answers.values():
            if isinstance(answer, ProviderError):
                self._limiter.observe(answer)
        return answers

    def _sweep(self, now: float) -> None:
        """Drop values no BotSecret would take any more (called with the lock held, once a minute)."""
        if now - self._swept < SWEEP_SECONDS:
            return
        self._swept = now
        self._changed = {name: at for name, at in self._changed.items() if now - at <= self._longest_age}
        self._kept = {ref: kept for ref, kept in self._kept.items() if now - kept[0] <= self._longest_age}
