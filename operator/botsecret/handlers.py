"""kopf handlers for BotSecrets. Thin: they translate events into calls of plain functions.

One daemon per BotSecret does every sync, so syncs of one object never overlap; the change
handlers only wake it. Core Secrets get no handler, index or watch: they are read and written by
name.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException

from . import metrics
from .cycle import FINALIZER, FORCE_SYNC_ANNOTATION, release_target, run_cycle, run_rollout_cycle
from .event_index import references
from .event_streams import EventStreams
from .reconcile import SyncResult
from .resolve import store_key, stores_used
from .runtime import OperatorConfig, Runtime
from .scheduling import Retry, next_delay, startup_spread_seconds
from .spec import DEFAULT_REFRESH_SECONDS, StoreKind
from .status import log_line
from .store_watch import StoreWatch

GROUP, VERSION, PLURAL = "botsecret.dev", "v1alpha1", "botsecrets"
T = TypeVar("T")


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base at all: kopf's default writes a last-handled-configuration annotation on every
    BotSecret (one PATCH per new object, and per spec edit) for change handlers, and this operator
    has none (wake-ups compare generations, see wake_on_change; deletion is detected by its
    timestamp, not by a diff). Every essence is the same empty one, so kopf sees no change, builds
    no deep copy of the body and writes nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Every BotSecret gets this finalizer: kopf requires one for objects with a daemon, so that it
    # can stop the daemon before the object goes (kopf.daemon hard-codes requires_finalizer).
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.scanning.disabled = True  # no list/watch on CRDs and namespaces needed
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = 16
    if "runtime" not in memo:  # `botsecret run` starts it before kopf, to fail in one clear line
        memo.runtime = await asyncio.to_thread(Runtime.start, OperatorConfig.from_environment())
    runtime: Runtime = memo.runtime
    # Every cycle runs in asyncio's default executor (asyncio.to_thread); size it on purpose.
    asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(
        max_workers=runtime.settings.sync_threads, thread_name_prefix="botsecret-sync"))
    memo.store_watch = watch = StoreWatch(runtime.api, runtime.pool, runtime.stores, runtime.dependents)
    memo.store_watch_task = asyncio.create_task(watch.run())
    memo.event_streams = EventStreams(runtime.pool, runtime.references, wake=runtime.dependents.wake_each,
                                      wake_store=runtime.dependents.wake, patch_status=watch.patch_status)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = memo.get("store_watch_task")
    if task is not None:
        task.cancel()
    streams: EventStreams | None = memo.get("event_streams")
    if streams is not None:
        streams.stop()
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await asyncio.to_thread(runtime.close)


def _wakeup(memo: kopf.Memo) -> asyncio.Event:
    event: asyncio.Event = memo.setdefault("wakeup", asyncio.Event())
    return event


def _sync_trigger(body: Mapping[str, Any]) -> tuple[object, object]:
    return body.get("metadata", {}).get("generation"), body.get("metadata", {}).get("annotations", {}).get(
        FORCE_SYNC_ANNOTATION)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def wake_on_change(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
    # A spec edit (a new generation) or a new force-sync value: sync now, not at the next refresh.
    # A plain event handler needs no diff-base annotation on the object, unlike on.update.
    runtime: Runtime = memo.runtime
    key = (body.get("metadata", {}).get("namespace", ""), body.get("metadata", {}).get("name", ""))
    if type == "DELETED":
        runtime.dependents.unregister(key)
        runtime.references.forget(key)
        metrics.UNSYNCED.synced(*key)
        return
    # A BotSecret going away has nothing left to sync (its deletion bumps the generation).
    if metrics.unsynced_change(body) and not body.get("metadata", {}).get("deletionTimestamp"):
        metrics.UNSYNCED.seen(*key)
    runtime.dependents.register(key, _wakeup(memo))
    runtime.dependents.record(key, stores_used(body))
    runtime.references.record(key, references(body))
    if memo.get("synced_trigger") not in (None, _sync_trigger(body)):
        _wakeup(memo).set()


@kopf.on.event(GROUP, VERSION, "botsecretstores")
@kopf.on.event(GROUP, VERSION, "clusterbotsecretstores")
async def store_changed(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
    # Stores are few and small; the watch keeps their copies fresh, and a change wakes exactly
    # the BotSecrets that use the store.
    kind: StoreKind = "ClusterBotSecretStore" if body.get("kind") == "ClusterBotSecretStore" else "BotSecretStore"
    meta = body.get("metadata", {})
    watch: StoreWatch = memo.store_watch
    key, copy = store_key(kind, meta.get("namespace"), meta.get("name", "")), json.loads(json.dumps(dict(body)))
    watch.seen(key, kind, type, copy)
    streams: EventStreams = memo.event_streams
    streams.seen(key, kind, type, copy)


def _lock(memo: kopf.Memo) -> threading.Lock:
    lock: threading.Lock = memo.setdefault("lock", threading.Lock())
    return lock


def _locked(lock: threading.Lock, fn: Callable[..., T], *args: Any) -> T:
    # Cancelling the daemon does not stop a cycle already running in its thread; the lock makes
    # release wait for it, so nothing is written after the BotSecret's Secret was released.
    with lock:
        return fn(*args)


def _startup_spread(body: kopf.Body, runtime: Runtime) -> float:
    """A random delay for BotSecrets that existed before this operator process started, so that a
    restart does not send every fetch and login at once: spread over a time in proportion to
    their number."""
    created = body.get("metadata", {}).get("creationTimestamp") or ""
    try:
        born = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return 0.0
    spread = startup_spread_seconds(runtime.fleet_size)
    return random.uniform(0, spread) if born < runtime.started_at else 0.0


def _refresh_seconds(result: SyncResult) -> float:
    return result.spec.refresh_seconds if result.spec is not None else DEFAULT_REFRESH_SECONDS


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def keep_in_sync(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped,
                       logger: kopf.Logger, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    wakeup, lock = _wakeup(memo), _lock(memo)
    namespace, name = body.get("metadata", {}).get("namespace", ""), body.get("metadata", {}).get("name", "")
    failures = 0
    refresh_due = 0.0  # monotonic time of the next full sync
    woken = await _sleep(wakeup, stopped, _startup_spread(body, runtime))
    while not stopped:
        wakeup.clear()
        snapshot: dict[str, Any] = json.loads(json.dumps(dict(body)))  # the live body changes under us
        if "status" in memo:
            snapshot["status"] = memo.status
        memo.synced_trigger = _sync_trigger(snapshot)
        wake_in = None
        started = time.monotonic()
        try:
            outcome = None
            if not woken and failures == 0 and time.monotonic() < refresh_due:
                # Woken only to follow a rollout or end a debounce: the providers have nothing new to say.
                outcome = await asyncio.to_thread(_locked, lock, run_rollout_cycle, runtime, snapshot)
            full = outcome is None
            if outcome is None:
                outcome = await asyncio.to_thread(_locked, lock, run_cycle, runtime, snapshot)
            for kind, reason, message in outcome.events:
                kopf.event(body, type=kind, reason=reason, message=message)
            result, memo.status = outcome.result, outcome.status
            if full:
                streams: EventStreams = memo.event_streams
                poll = streams.poll_seconds((namespace, name), _refresh_seconds(result))
                failures, refresh_due, next_in = _schedule(result, failures, poll)
                log = logger.info if result.ready else logger.warning
                stretched = failures == 0 and poll > _refresh_seconds(result) and not math.isinf(next_in)
                log(log_line(result, namespace=namespace, name=name, seconds=time.monotonic() - started,
                             next_in=None if result.ready else next_in, events_poll=next_in if stretched else None))
            wake_in = outcome.wake_in
        except Exception as e:  # noqa: BLE001 - keep syncing; log the type only, the text may carry data
            failures += 1
            next_in = next_delay(refresh_seconds=DEFAULT_REFRESH_SECONDS, failures=failures)
            refresh_due = time.monotonic() + next_in
            logger.error(f"{namespace}/{name} sync failed unexpectedly: {type(e).__name__} "
                         f"({time.monotonic() - started:.2f} s; next try in {next_in:.0f} s)")
        delay = max(0.0, refresh_due - time.monotonic())
        if wake_in is not None:
            delay = min(delay, wake_in)
        woken = await _sleep(wakeup, stopped, delay)


def _schedule(result: SyncResult, failures: int, poll_seconds: float) -> tuple[int, float, float]:
    """Failures in a row after this result, the monotonic time of the next full sync and the
    seconds until then (infinite for refreshPolicy OnChange after a success: only a wake-up syncs).
    ``poll_seconds``: the refresh interval, or the longer fallback while change events cover it."""
    failures = failures + 1 if result.retry is not Retry.NO else 0
    if failures == 0 and result.spec is not None and result.spec.refresh_policy == "OnChange":
        return failures, math.inf, math.inf
    next_in = next_delay(refresh_seconds=poll_seconds if failures == 0 else _refresh_seconds(result),
                         failures=failures, retry=result.retry,
                         retry_after=result.retry_after)
    return failures, time.monotonic() + next_in, next_in


async def _sleep(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> bool:
    """Until the delay passes, something wakes this BotSecret, or the daemon is asked to stop.
    Answers whether something woke it."""
    waiters = {asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(waiters, timeout=None if math.isinf(delay) else delay,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return wakeup.is_set()


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    # Under the lock, release_target marks the BotSecret released: a cycle that gets the lock
    # afterwards writes nothing (cycle._being_deleted).
    snapshot: dict[str, Any] = json.loads(json.dumps(dict(body)))
    try:
        outcome = await asyncio.to_thread(_locked, _lock(memo), release_target, memo.runtime, snapshot)
    except ApiException as e:
        raise kopf.TemporaryError(f"releasing the target Secret failed with HTTP {e.status}", delay=5) from None
    logger.info(f"target Secret: {outcome}")
