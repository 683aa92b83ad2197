"""Every store's change-event stream: one consumer per (identity, queue), the stores it serves,
whether it is healthy; an event wakes exactly the BotSecrets that read the changed secret through
one of those stores, after their shared reads of it are dropped.

Lives on the event loop; the consumer threads hand over with ``call_soon_threadsafe``. Health is
in memory and in each store's ``status.changeEvents`` (reason: an error class, never a message).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import metrics
from .connect import ProviderPool
from .event_consumer import QueueConsumer
from .event_index import BotSecretKey, ReferenceIndex, StoreKey, poll_seconds
from .event_messages import ChangeEvent, Ignored, parse_message
from .event_notifications import parse_notification
from .providers.change_queue import QueueMessage
from .spec import AwsSource, GcpSource, InvalidSpec, StoreKind
from .stores import StoreSpec, parse_store

__all__ = ["EventStreams", "StreamKey", "store_label"]

log = logging.getLogger("botsecret.events")
# (namespace acted for, the store's provider settings, queue URL or subscription)
StreamKey = tuple[str, AwsSource | GcpSource, str]
Parse = Callable[[QueueMessage], ChangeEvent | Ignored]


def store_label(key: StoreKey) -> str:
    kind, namespace, name = key
    return f"{namespace}/{name}" if kind == "BotSecretStore" else name


def stream_key(store: StoreSpec) -> StreamKey | None:
    """Whose identity reads the queue: a BotSecretStore's namespace; a ClusterBotSecretStore's
    credentials Secret's namespace (parsing refuses change events without one)."""
    events, provider = store.change_events, store.provider
    if events is None or not isinstance(provider, AwsSource | GcpSource):
        return None
    namespace = store.namespace or (provider.credentials_secret.namespace if provider.credentials_secret else "")
    return (namespace, provider, events.stream)


def reader(provider: AwsSource | GcpSource) -> tuple[str, str, Parse]:
    """A provider's change events: its store field, the call that receives them, their parser."""
    if isinstance(provider, GcpSource):
        project, location = provider.project, provider.location
        return "spec.provider.gcp", "Pull", lambda m: parse_notification(m.attributes, m.body, project=project,
                                                                         location=location)
    return "spec.provider.aws", "ReceiveMessage", lambda m: parse_message(m.body)


@dataclass
class _Stream:
    consumer: QueueConsumer
    stores: set[StoreKey] = field(default_factory=set)
    call: str = "ReceiveMessage"  # the provider's receive call, for the status message
    healthy: bool | None = None  # None: no answer yet
    reason: str = ""


class EventStreams:
    def __init__(self, pool: ProviderPool, index: ReferenceIndex, *,
                 wake: Callable[[Iterable[BotSecretKey]], int], wake_store: Callable[[StoreKey], int],
                 patch_status: Callable[[StoreKey, dict[str, Any]], None]) -> None:
        self._pool, self._index = pool, index
        self._wake, self._wake_store, self._patch_status = wake, wake_store, patch_status
        self._stores: dict[StoreKey, StoreSpec] = {}
        self._of_store: dict[StoreKey, StreamKey] = {}
        self._streams: dict[StreamKey, _Stream] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, key: StoreKey, kind: StoreKind, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A store's watch event (on the event loop): start, move or stop its stream."""
        self._loop = asyncio.get_running_loop()
        spec: StoreSpec | None = None
        if event_type != "DELETED":
            try:
                spec = parse_store(kind, body)
            except InvalidSpec:
                spec = None
        wanted = stream_key(spec) if spec is not None else None
        if self._of_store.get(key) != wanted:
            self._detach(key)
            if wanted is not None and spec is not None:
                self._attach(key, wanted, spec)
        if wanted is not None and spec is not None:
            self._stores[key] = spec

    def poll_seconds(self, botsecret: BotSecretKey, own: float) -> float:
        """How long the BotSecret may wait between polls (see event_index.poll_seconds)."""
        fallbacks = {}
        for store, spec in self._stores.items():
            wanted = self._of_store.get(store)
            stream = self._streams.get(wanted) if wanted is not None else None
            if stream is not None and stream.healthy and spec.change_events is not None:
                fallbacks[store] = spec.change_events.fallback_seconds
        return poll_seconds(self._index.of(botsecret), own, fallbacks)

    def stop(self) -> None:
        for stream in self._streams.values():
            stream.consumer.stop()

    def _attach(self, key: StoreKey, wanted: StreamKey, spec: StoreSpec) -> None:
        self._of_store[key] = wanted
        stream = self._streams.get(wanted)
        if stream is None:
            stream = self._streams[wanted] = _Stream(self._consumer(wanted, spec, key), call=reader(wanted[1])[1])
            stream.consumer.start()
        stream.stores.add(key)
        metrics.CHANGE_STREAM_HEALTHY.labels(store_label(key)).set(1 if stream.healthy else 0)

    def _detach(self, key: StoreKey) -> None:
        self._stores.pop(key, None)
        wanted = self._of_store.pop(key, None)
        stream = self._streams.get(wanted) if wanted is not None else None
        with contextlib.suppress(KeyError):
            metrics.CHANGE_STREAM_HEALTHY.remove(store_label(key))
        if stream is None:
            return
        stream.stores.discard(key)
        if not stream.stores and wanted is not None:
            stream.consumer.stop()
            del self._streams[wanted]

    def _consumer(self, wanted: StreamKey, spec: StoreSpec, key: StoreKey) -> QueueConsumer:
        namespace, provider, _ = wanted
        events = spec.change_events
        assert events is not None
        field_path, _, parse = reader(provider)

        def handover(fn: Callable[..., None], *args: Any) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(fn, *args)

        return QueueConsumer(
            store_label(key).replace("/", "."),
            open_queue=lambda: self._pool.change_queue(namespace, provider, events, field_path),
            on_messages=lambda parsed: handover(self._deliver, wanted, parsed),
            on_health=lambda healthy, reason: handover(self._health, wanted, healthy, reason),
            on_delete_failure=lambda error: handover(self._delete_failed, wanted, error), parse=parse)

    def _deliver(self, wanted: StreamKey, parsed: list[ChangeEvent | Ignored]) -> None:
        stream = self._streams.get(wanted)
        if stream is None:
            return
        for item in parsed:
            for store in sorted(stream.stores):
                label = store_label(store)
                if isinstance(item, Ignored):
                    metrics.CHANGE_EVENTS.labels(label, item.outcome).inc()
                    continue
                found = self._index.referencing(store, item.keys)
                if not found:
                    metrics.CHANGE_EVENTS.labels(label, "unmatched").inc()
                    continue
                spec = self._stores.get(store)
                if spec is not None:
                    self._pool.invalidate(spec.provider, {name for _, names in found for name in names})
                woken = self._wake(botsecret for botsecret, _ in found)
                metrics.CHANGE_EVENTS.labels(label, "woke").inc()
                log.info(f"{label}: change event {item.event_name}; woke {woken} BotSecret(s)")

    def _delete_failed(self, wanted: StreamKey, error: str) -> None:
        stream = self._streams.get(wanted)
        for store in sorted(stream.stores if stream is not None else ()):
            metrics.CHANGE_STREAM_FAILURES.labels(store_label(store), error).inc()

    def _health(self, wanted: StreamKey, healthy: bool, reason: str) -> None:
        stream = self._streams.get(wanted)
        if stream is None:
            return
        for store in stream.stores:
            metrics.CHANGE_STREAM_HEALTHY.labels(store_label(store)).set(1 if healthy else 0)
            if not healthy:
                metrics.CHANGE_STREAM_FAILURES.labels(store_label(store), reason).inc()
        if (stream.healthy, stream.reason) == (healthy, reason):
            return
        was, stream.healthy, stream.reason = stream.healthy, healthy, reason
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {"changeEvents": {
            "healthy": healthy, "reason": "Receiving" if healthy else reason, "lastTransitionTime": now,
            "message": "receiving change events; polling at the fallback interval" if healthy else
                       f"{stream.call} failed ({reason}); BotSecrets poll at their own refreshInterval"}}
        for store in sorted(stream.stores):
            (log.info if healthy else log.warning)(f"{store_label(store)}: {status['changeEvents']['message']}")
            self._spawn(store, status)
            if was and not healthy:
                # Events may have been missed, and the BotSecrets sleep for the fallback interval:
                # each syncs now and then polls at its own interval.
                self._wake_store(store)

    def _spawn(self, store: StoreKey, status: dict[str, Any]) -> None:
        async def patch() -> None:
            try:
                await asyncio.to_thread(self._patch_status, store, status)
            except Exception as e:  # noqa: BLE001 - a status write must not stop the stream; text may carry data
                log.warning(f"{store_label(store)}: change-event status update failed: {type(e).__name__}")

        task = asyncio.get_running_loop().create_task(patch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
