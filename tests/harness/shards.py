"""Which tests a shard runs: whole test modules, balanced by how long each took.

``make test`` runs the suite as concurrent shards (tests/harness/shard_runner.py), each a pytest
process with a world of its own. Every shard collects the whole suite and keeps its part, so the
assignment must come out the same in each: it depends only on the collected node ids, the weights
below and the shard count.

- A module stays whole: its module-scoped fixtures (the chaos suite's proxy) start once.
- Modules with a test that needs what is one per host (marked ``HOST_MARKERS`` or using a fixture
  of ``HOST_FIXTURES``, or listed in ``HOST_MODULES``: the kubelet node holds a host-wide lock
  for its whole session) all go to
  shard 0, so one shard never waits for another to end before its node can start.
- The leak scan (marker ``leaks``) runs in every shard, last: each scans its own world.
- The rest is spread longest first onto the shard with the least so far (LPT). A module not in
  ``SECONDS`` (new tests) weighs ``DEFAULT_TEST_SECONDS`` per test.

The weights are seconds measured warm with ``--durations=0`` (setup + call + teardown per test,
summed per module); refresh them when a module's time changes a lot:
``make test PYTEST_ARGS=--durations=0`` then ``.venv/bin/python -m tests.harness.shards test-artifacts/shard-*.log``
prints the table to paste here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

HOST_MARKERS = frozenset({"node", "hostcheck"})
HOST_FIXTURES = frozenset({"node"})
# Modules that start a node of their own in a subprocess (``make demo``), which no marker shows.
HOST_MODULES = frozenset({"tests/e2e/test_demo.py"})
EVERY_SHARD = frozenset({"leaks"})
DEFAULT_TEST_SECONDS = 5.0
UNIT_TEST_SECONDS = 0.05

# Seconds per module (setup + call + teardown; a module's first test also carries the start of
# the session's world), from `--durations=0` of a warm `make test` of main at 036ee8f on 2 cores
# shared with seven other test runs (load average 20-24, so about three times a quiet machine's).
# test_chaos.py: 351 s measured there plus 132 s for the throttling test added since (measured alone).
# Modules under a second are left out (a unit test weighs UNIT_TEST_SECONDS).
SECONDS: dict[str, float] = {
    "tests/e2e/test_chaos.py": 483,
    "tests/e2e/test_rollout.py": 364,
    "tests/e2e/test_replicas.py": 231,
    "tests/e2e/test_operability.py": 224,
    "tests/e2e/test_stores.py": 213,
    "tests/e2e/test_tenancy.py": 184,
    "tests/e2e/test_sync.py": 182,
    "tests/e2e/test_lifecycle.py": 160,
    "tests/e2e/test_zz_leaks.py": 151,
    "tests/e2e/test_image.py": 114,
    "tests/e2e/test_provider_gcp.py": 72,
    "tests/e2e/test_provider_vault.py": 69,
    "tests/e2e/test_features.py": 54,
    "tests/e2e/test_provider_aws.py": 42,
    "tests/e2e/test_store_crd.py": 19,
    "tests/unit/test_operability.py": 18,
    "tests/e2e/test_crd.py": 12,
    "tests/e2e/test_chart.py": 12,
    "tests/e2e/test_smoke_cluster.py": 7,
    "tests/e2e/test_packaging.py": 6,
    "tests/e2e/test_gcp_fake.py": 3,
}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _markers(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers()}


def _host_bound(item: pytest.Item) -> bool:
    return bool(_markers(item) & HOST_MARKERS or set(getattr(item, "fixturenames", ())) & HOST_FIXTURES)


def assign(items: Iterable[pytest.Item], count: int) -> dict[str, int | None]:
    """Module path -> its shard (``None``: every shard)."""
    tests: dict[str, list[pytest.Item]] = {}
    for item in items:
        tests.setdefault(_module(item.nodeid), []).append(item)
    load = [0.0] * count
    placed: dict[str, int | None] = {}

    def weight(module: str) -> float:
        per_test = UNIT_TEST_SECONDS if module.startswith("tests/unit/") else DEFAULT_TEST_SECONDS
        return SECONDS.get(module, per_test * len(tests[module]))

    for module, members in tests.items():
        marks = set().union(*(_markers(i) for i in members))
        if marks & EVERY_SHARD:
            placed[module] = None
        elif module in HOST_MODULES or any(_host_bound(i) for i in members):
            placed[module] = 0
            load[0] += weight(module)
    for module in sorted((m for m in tests if m not in placed), key=lambda m: (-weight(m), m)):
        shard = min(range(count), key=lambda s: (load[s], s))
        placed[module] = shard
        load[shard] += weight(module)
    return placed


def own_share(items: list[pytest.Item]) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, deselected) for this process's shard: ``BOTSECRET_SHARD`` of ``BOTSECRET_SHARDS``.
    Without them (a person running pytest) everything is kept."""
    index, count = os.environ.get("BOTSECRET_SHARD"), os.environ.get("BOTSECRET_SHARDS")
    if index is None or count is None:
        return items, []
    placed = assign(items, int(count))
    kept, dropped = [], []
    for item in items:
        shard = placed[_module(item.nodeid)]
        (kept if shard is None or shard == int(index) else dropped).append(item)
    return kept, dropped


_DURATION = re.compile(r"^\s*([\d.]+)s (?:setup|call|teardown)\s+(\S+?)::")


def seconds_from_durations(text: str) -> dict[str, float]:
    """Seconds per module from the ``slowest durations`` lines of pytest's ``--durations=0``."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _DURATION.match(line)
        if match:
            found[match[2]] = round(found.get(match[2], 0.0) + float(match[1]), 1)
    return found


if __name__ == "__main__":
    measured: dict[str, float] = {}
    for log in sys.argv[1:]:
        measured.update(seconds_from_durations(Path(log).read_text(errors="replace")))
    print("SECONDS: dict[str, float] = {")
    for module, seconds in sorted(measured.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {module!r}: {seconds},")
    print("}")
