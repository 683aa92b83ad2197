"""What the change-event tests of every provider share: a BotSecret reading one remote secret
through a store, the store's ``status.changeEvents``, and the operator's word that a sync polls
next at the fallback interval."""

from __future__ import annotations

from typing import Any

from . import botsecrets as bs
from .cluster_fixtures import Kube
from .stores import GROUP, VERSION, store_ref
from .waiting import wait_for

__all__ = ["assert_one_woke_one_malformed", "bot_reading", "stream_status", "two_readers_of_a_one_of_b", "wait_polls_at_fallback",
           "wait_stream"]


def bot_reading(kube: Kube, namespace: str, name: str, store: str, remote: str, refresh: str) -> None:
    """A BotSecret with one key, ``K``, read from ``remote`` through the store ``store``."""
    bs.create(kube, namespace, name, {"sources": [{"name": store, "storeRef": store_ref(store)}],
                                      "refreshInterval": refresh,
                                      "data": [{"key": "K", "remoteRef": {"name": remote}}]})


def stream_status(kube: Kube, namespace: str, store: str) -> dict[str, Any]:
    body = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "botsecretstores", store)
    found: dict[str, Any] = (body.get("status") or {}).get("changeEvents") or {}
    return found


def wait_stream(kube: Kube, namespace: str, store: str, *, healthy: bool, timeout: float = 90) -> dict[str, Any]:
    """Until the store's status says its change stream is (un)healthy; answers that status."""
    found: dict[str, Any] = wait_for(
        lambda: (s := stream_status(kube, namespace, store)) and s.get("healthy") is healthy and s,
        timeout=timeout, what=f"the change stream of store {store} {'healthy' if healthy else 'unhealthy'}")
    return found


def wait_polls_at_fallback(operator: Any, kube: Kube, namespace: str, name: str) -> float:
    """Force a sync of the BotSecret and find its log line: while the stream is healthy, it
    schedules the next poll at the fallback interval (an hour in these tests), not its own; answers
    the seconds the line gives."""
    bs.force_sync(kube, namespace, name)
    stretched = f"{namespace}/{name} Synced"
    line = wait_for(lambda: next((ln for ln in operator.output().splitlines() if stretched in ln
                                  and "change events cover it" in ln), None),
                    timeout=60, what="a sync that polls next at the fallback interval")
    print(f"while the stream is healthy: {line[line.index(stretched):]}")
    assert "next poll in" in line
    return float(line.rsplit("next poll in ", 1)[1].split()[0])


def assert_one_woke_one_malformed(operator: Any, store_label: str) -> None:
    """The operator's metrics after one matching change event and one garbage message: both
    counted, and the stream healthy."""
    counted = {outcome: operator.metric("botsecret_change_events_total", store=store_label, outcome=outcome)
               for outcome in ("woke", "malformed")}
    print(f"botsecret_change_events_total for store {store_label}: {counted}")
    assert counted == {"woke": 1, "malformed": 1}
    assert operator.metric("botsecret_change_stream_healthy", store=store_label) == 1


def two_readers_of_a_one_of_b(kube: Kube, namespace: str, store: str, a: str, b: str) -> None:
    """BotSecrets a-one and a-two read ``a``, b-one reads ``b``, each hourly, through ``store``;
    until all three synced and the store's stream is healthy."""
    for name, remote in (("a-one", a), ("a-two", a), ("b-one", b)):
        bot_reading(kube, namespace, name, store, remote, "1h")
    for name in ("a-one", "a-two", "b-one"):
        bs.wait_ready(kube, namespace, name, reason="Synced", timeout=120)
    wait_stream(kube, namespace, store, healthy=True)
