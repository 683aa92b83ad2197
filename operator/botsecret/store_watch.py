"""Keep every store's Ready condition true to a real check, and wake the BotSecrets that use a
store when it changes or a Secret it names rotates.

One task for all stores, not a kopf daemon per store: a daemon would put kopf's finalizer on every
store, and a store has nothing to clean up. The store objects come from kopf's watch (through
``seen``); the Secrets they name are read by name every ``CREDENTIALS_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .dependents import Dependents
from .resolve import GROUP, PLURALS, VERSION, StoreKey, StoreLookup
from .spec import InvalidSpec, StoreKind
from .store_check import check_store, secret_refs, secret_versions, store_status_patch
from .stores import parse_store

__all__ = ["CREDENTIALS_POLL_SECONDS", "RECHECK_SECONDS", "StoreWatch"]

CREDENTIALS_POLL_SECONDS = 20.0
RECHECK_SECONDS = 300.0
log = logging.getLogger("botsecret.stores")


@dataclass
class _State:
    kind: StoreKind
    body: Mapping[str, Any]
    generation: int
    checked_generation: int | None = None
    versions: tuple[str | None, ...] | None = None
    next_poll: float = 0.0
    next_check: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)


class StoreWatch:
    def __init__(self, api: Any, pool: Any, lookup: StoreLookup, dependents: Dependents) -> None:
        self._api, self._pool, self._lookup, self._dependents = api, pool, lookup, dependents
        self._states: dict[StoreKey, _State] = {}
        self._changed = asyncio.Event()

    def seen(self, key: StoreKey, kind: StoreKind, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a store (called on the event loop). ``event_type`` is None for the
        listing kopf does at start, when every BotSecret syncs anyway."""
        if event_type == "DELETED":
            self._states.pop(key, None)
            self._lookup.remember(key, None)
            self._dependents.wake(key)
            return
        self._lookup.remember(key, body)
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        state = self._states.get(key)
        if state is None:
            self._states[key] = _State(kind, body, generation, status=dict(body.get("status") or {}))
            if event_type == "ADDED":
                self._dependents.wake(key)  # BotSecrets that waited for this store
        else:
            changed = generation != state.generation
            state.body, state.generation = body, generation
            if changed:
                state.next_check = 0.0
                self._dependents.wake(key)
        self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            now = time.monotonic()
            for key, state in list(self._states.items()):
                if state.generation != state.checked_generation or now >= state.next_check:
                    await self._check(key, state)
                elif now >= state.next_poll:
                    await self._poll(key, state)
            wait = min((min(s.next_poll, s.next_check) for s in self._states.values()), default=now + 60) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.05, wait))

    async def _poll(self, key: StoreKey, state: _State) -> None:
        """A rotated Secret of the store: re-check it and wake its BotSecrets."""
        versions = await asyncio.to_thread(self._versions, state)
        state.next_poll = time.monotonic() + _jittered(CREDENTIALS_POLL_SECONDS)
        if versions != state.versions:
            state.versions = versions
            self._forget_credentials(state)
            woken = self._dependents.wake(key)
            log.info(f"{_shown(key)}: a Secret it names changed; re-syncing {woken} BotSecret(s)")
            await self._check(key, state)

    def _forget_credentials(self, state: _State) -> None:
        with contextlib.suppress(InvalidSpec):
            self._pool.forget_credentials(secret_refs(parse_store(state.kind, state.body)))

    def _versions(self, state: _State) -> tuple[str | None, ...]:
        try:
            store = parse_store(state.kind, state.body)
        except InvalidSpec:
            return ()
        return secret_versions(client.CoreV1Api(self._api), secret_refs(store))

    async def _check(self, key: StoreKey, state: _State) -> None:
        generation = state.generation
        try:
            state.versions = await asyncio.to_thread(self._versions, state)
            result = await asyncio.to_thread(check_store, self._pool, state.kind, state.body)
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            patch = store_status_patch(state.status, result, generation=generation, now=now)
            if patch is not None:
                await asyncio.to_thread(self.patch_status, key, patch)
                state.status = {**state.status, **patch}
                log.info(f"{_shown(key)}: Ready={result.status} {result.reason}: {result.message}")
        except ApiException as e:
            log.warning(f"{_shown(key)}: status update failed with HTTP {e.status}")
        except Exception as e:  # noqa: BLE001 - keep checking the other stores; the text may carry data
            log.error(f"{_shown(key)}: check failed unexpectedly: {type(e).__name__}")
        state.checked_generation = generation
        state.next_check = time.monotonic() + _jittered(RECHECK_SECONDS)
        state.next_poll = time.monotonic() + _jittered(CREDENTIALS_POLL_SECONDS)

    def patch_status(self, key: StoreKey, patch: dict[str, Any]) -> None:
        kind, namespace, name = key
        custom = client.CustomObjectsApi(self._api)
        body, merge = {"status": patch}, "application/merge-patch+json"
        if kind == "BotSecretStore":
            custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURALS[kind], name, body,
                                                         _content_type=merge)
        else:
            custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURALS[kind], name, body, _content_type=merge)


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


def _shown(key: StoreKey) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace + '/' if namespace else ''}{name}"
