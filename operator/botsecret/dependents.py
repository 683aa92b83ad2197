"""Which BotSecrets use which store, so that a store change wakes exactly those BotSecrets.

Kept in memory: after an operator restart every BotSecret syncs anyway, and each daemon records
its stores again on its first cycle. Called from the event loop only (asyncio events are not
thread-safe), so it needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from .resolve import StoreKey

__all__ = ["BotSecretKey", "Dependents"]

BotSecretKey = tuple[str, str]  # (namespace, name)


class Dependents:
    def __init__(self) -> None:
        self._wakeups: dict[BotSecretKey, asyncio.Event] = {}
        self._uses: dict[BotSecretKey, frozenset[StoreKey]] = {}

    def register(self, botsecret: BotSecretKey, wakeup: asyncio.Event) -> None:
        self._wakeups[botsecret] = wakeup

    def unregister(self, botsecret: BotSecretKey) -> None:
        self._wakeups.pop(botsecret, None)
        self._uses.pop(botsecret, None)

    def record(self, botsecret: BotSecretKey, stores: Iterable[StoreKey]) -> None:
        self._uses[botsecret] = frozenset(stores)

    def users(self, store: StoreKey) -> list[BotSecretKey]:
        return sorted(b for b, stores in self._uses.items() if store in stores)

    def wake_each(self, botsecrets: Iterable[BotSecretKey]) -> int:
        """Wake these BotSecrets (a change event named a secret they read); answer how many."""
        woken = 0
        for botsecret in botsecrets:
            event = self._wakeups.get(botsecret)
            if event is not None:
                event.set()
                woken += 1
        return woken

    def wake(self, store: StoreKey) -> int:
        """Wake every BotSecret that uses ``store``; answer how many."""
        woken = 0
        for botsecret in self.users(store):
            event = self._wakeups.get(botsecret)
            if event is not None:
                event.set()
                woken += 1
        return woken
