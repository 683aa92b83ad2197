"""The operator's metrics (provider requests, readiness gauges, build info) and its log format flag."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from botsecret import metrics
from botsecret.cli import log_format, main
from botsecret.metered import MeteredProvider
from botsecret.providers.base import AccessDenied, Fetched, NotFound, RemoteRef, Throttled, Unavailable
from botsecret.values import SecretValue


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


class Answers:
    def fetch(self, refs: Any) -> Any:
        if RemoteRef("boom") in refs:
            raise Throttled("slow down")
        return {RemoteRef("a"): Fetched(SecretValue(b"x"), "1"), RemoteRef("b"): NotFound("b"),
                RemoteRef("c"): AccessDenied("c")}

    def check(self) -> str:
        raise Unavailable("down")

    def close(self) -> None:
        pass


def test_provider_requests_are_counted_by_result() -> None:
    labels = {"provider": "aws", "operation": "read"}
    before = {r: sample("botsecret_provider_requests_total", **labels, result=r)
              for r in ("ok", "notfound", "denied", "throttled")}
    provider = MeteredProvider(Answers(), "aws")
    provider.fetch([RemoteRef("a"), RemoteRef("b"), RemoteRef("c")])
    with pytest.raises(Throttled):
        provider.fetch([RemoteRef("boom"), RemoteRef("other")])
    with pytest.raises(Unavailable):
        provider.check()
    after = {r: sample("botsecret_provider_requests_total", **labels, result=r) - before[r] for r in before}
    assert after == {"ok": 1, "notfound": 1, "denied": 1, "throttled": 2}
    assert sample("botsecret_provider_requests_total", provider="aws", operation="check", result="unavailable") >= 1


def test_ready_and_last_success_gauges_and_build_info() -> None:
    metrics.sync_outcome("ns", "gauged", True)
    assert sample("botsecret_ready", namespace="ns", name="gauged") == 1
    assert sample("botsecret_last_success_timestamp_seconds", namespace="ns", name="gauged") > 1.7e9
    metrics.sync_outcome("ns", "gauged", False)
    assert sample("botsecret_ready", namespace="ns", name="gauged") == 0
    metrics.forget("ns", "gauged")
    assert REGISTRY.get_sample_value("botsecret_ready", {"namespace": "ns", "name": "gauged"}) is None
    from botsecret import __version__

    assert any(s.labels.get("version") == __version__ for m in REGISTRY.collect() if m.name == "botsecret_build"
               for s in m.samples)


def test_log_format_text_json_and_the_json_logs_alias() -> None:
    import argparse

    def parsed(*argv: str) -> argparse.Namespace:
        captured: dict[str, argparse.Namespace] = {}

        def keep(args: argparse.Namespace) -> int:
            captured["args"] = args
            return 0
        import botsecret.cli as cli

        original = cli._run
        cli._run = keep  # type: ignore[assignment]
        try:
            main(["run", *argv])
        finally:
            cli._run = original  # type: ignore[assignment]
        return captured["args"]

    assert log_format(parsed()) == "text"
    assert log_format(parsed("--log-format", "json")) == "json"
    assert log_format(parsed("--json-logs")) == "json"
    with pytest.raises(SystemExit):
        parsed("--log-format", "xml")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_oldest_unsynced_change_grows_while_stuck_and_is_zero_once_synced() -> None:
    clock = Clock()
    changes = metrics.UnsyncedChanges(clock=clock)
    assert changes.oldest_age() == 0.0
    changes.seen("ns", "a")  # a spec edit, a force-sync or a failure
    clock.now += 5
    changes.seen("ns", "b")
    changes.seen("ns", "a")  # still the same unsynced change: its age keeps counting from the first
    clock.now += 10
    assert changes.oldest_age() == 15.0
    changes.synced("ns", "a")
    assert changes.oldest_age() == 10.0
    changes.synced("ns", "b")
    assert changes.oldest_age() == 0.0


def test_the_oldest_unsynced_change_gauge_follows_sync_outcomes() -> None:
    metrics.sync_outcome("unit", "stuck", ready=False)
    assert sample("botsecret_oldest_unsynced_change_age_seconds") >= 0.0
    assert metrics.UNSYNCED.oldest_age() >= 0.0 and ("unit", "stuck") in metrics.UNSYNCED.pending()
    metrics.sync_outcome("unit", "stuck", ready=True)
    assert ("unit", "stuck") not in metrics.UNSYNCED.pending()
    metrics.sync_outcome("unit", "gone", ready=False)
    metrics.forget("unit", "gone")
    assert ("unit", "gone") not in metrics.UNSYNCED.pending()


def test_a_body_with_an_edit_or_a_force_sync_not_yet_handled_is_an_unsynced_change() -> None:
    synced = {"metadata": {"generation": 2, "annotations": {"botsecret.dev/force-sync": "x"}},
              "status": {"observedGeneration": 2, "forceSyncHandled": "x"}}
    assert not metrics.unsynced_change(synced)
    assert metrics.unsynced_change({**synced, "metadata": {**synced["metadata"], "generation": 3}})
    assert metrics.unsynced_change({**synced, "metadata": {"generation": 2, "annotations": {
        "botsecret.dev/force-sync": "y"}}})
    assert metrics.unsynced_change({"metadata": {"generation": 1}})  # never synced yet


def test_the_force_sync_annotation_is_spelled_as_reconcile_spells_it() -> None:
    from botsecret.reconcile import FORCE_SYNC_ANNOTATION

    assert metrics.FORCE_SYNC_ANNOTATION == FORCE_SYNC_ANNOTATION
