"""Which shard runs what (tests/harness/shards.py): pure logic over node ids and markers."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tests.harness import shard_runner, shards


@dataclass
class Item:
    nodeid: str
    marks: list[str] = field(default_factory=list)
    fixturenames: list[str] = field(default_factory=list)

    def iter_markers(self) -> list[Any]:
        return [SimpleNamespace(name=name) for name in self.marks]


def items(weights: dict[str, float], monkeypatch: pytest.MonkeyPatch, **marks: str) -> list[Any]:
    monkeypatch.setattr(shards, "SECONDS", weights)
    found = [Item(f"{module}::test_{i}", [marks[module]] if module in marks else []) for i, module in enumerate(weights)]
    return found


def test_modules_stay_whole_and_the_load_is_balanced(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = {"tests/e2e/test_chaos.py": 300.0, "tests/e2e/test_a.py": 200.0, "tests/e2e/test_b.py": 150.0,
               "tests/e2e/test_c.py": 100.0, "tests/e2e/test_d.py": 50.0}
    found = items(weights, monkeypatch)
    found.append(Item("tests/e2e/test_chaos.py::test_other"))
    placed = shards.assign(found, 2)
    load = [sum(w for m, w in weights.items() if placed[m] == s) for s in (0, 1)]
    assert sorted(load) == [400.0, 400.0]
    assert placed["tests/e2e/test_chaos.py"] is not None


def test_one_per_host_modules_share_shard_zero_and_the_leak_scan_runs_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = {"tests/e2e/test_node.py": 10.0, "tests/e2e/test_demo.py": 10.0, "tests/e2e/test_big.py": 500.0,
               "tests/e2e/test_zz_leaks.py": 5.0}
    found = items(weights, monkeypatch, **{"tests/e2e/test_node.py": "node", "tests/e2e/test_demo.py": "operability",
                                           "tests/e2e/test_zz_leaks.py": "leaks"})
    found.append(Item("tests/e2e/test_revert.py::test_uses_the_node", fixturenames=["kube", "node"]))
    placed = shards.assign(found, 3)
    assert placed["tests/e2e/test_node.py"] == placed["tests/e2e/test_demo.py"] == placed["tests/e2e/test_revert.py"] == 0
    assert placed["tests/e2e/test_zz_leaks.py"] is None
    assert placed["tests/e2e/test_big.py"] == 1  # shard 0 already carries the node tests


def test_every_shard_keeps_its_part_and_the_parts_cover_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = {f"tests/e2e/test_{i}.py": float(i) for i in range(9)} | {"tests/e2e/test_zz_leaks.py": 1.0}
    found = items(weights, monkeypatch, **{"tests/e2e/test_zz_leaks.py": "leaks"})
    found.append(Item("tests/e2e/test_new.py::test_unweighed"))
    kept = []
    for index in range(3):
        monkeypatch.setenv("BOTSECRET_SHARD", str(index))
        monkeypatch.setenv("BOTSECRET_SHARDS", "3")
        mine, dropped = shards.own_share(found)
        assert len(mine) + len(dropped) == len(found)
        assert "tests/e2e/test_zz_leaks.py::test_9" in [i.nodeid for i in mine]
        kept += [i.nodeid for i in mine if "leaks" not in i.nodeid]
    assert sorted(kept) == sorted(i.nodeid for i in found if "leaks" not in i.nodeid)


def test_without_a_shard_everything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTSECRET_SHARD", raising=False)
    found = items({"tests/e2e/test_a.py": 1.0}, monkeypatch)
    assert shards.own_share(found) == (found, [])


def test_weights_are_summed_per_module_from_pytest_durations() -> None:
    text = """
============================= slowest durations ==============================
95.02s call     tests/e2e/test_chaos.py::test_throttled[x]
3.00s setup    tests/e2e/test_chaos.py::test_bad_input
1.50s teardown tests/e2e/test_sync.py::test_one
0.01s call     tests/unit/test_spec.py::test_a
"""
    assert shards.seconds_from_durations(text) == {"tests/e2e/test_chaos.py": 98.0, "tests/e2e/test_sync.py": 1.5,
                                                   "tests/unit/test_spec.py": 0.0}


def test_port_ranges_of_the_shards_do_not_overlap_and_stay_below_the_ephemeral_range(tmp_path: Any) -> None:
    for count in (1, 2, 3, 4):
        ranges = [tuple(map(int, shard_runner.Shard(i, count, tmp_path).ports.split("-"))) for i in range(count)]
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
        assert ranges[-1][1] < 32768 and ranges[0][0] >= 1024


def test_the_closing_line_sums_the_shards_and_counts_no_tests_as_passed(tmp_path: Any, capsys: Any) -> None:
    logs = ["tests/e2e/test_a.py ..F  [100%]\n=== 1 failed, 40 passed, 2 skipped in 700.10s (0:11:40) ===\n",
            "=== 30 passed, 1 error in 650.00s ===\n", "=== 12 deselected in 1.00s ===\n"]
    done = []
    for index, (text, code) in enumerate(zip(logs, (1, 1, 5), strict=True)):
        shard = shard_runner.Shard(index, 3, tmp_path)
        shard.log.write_text(text)
        shard.proc = type("Done", (), {"poll": lambda self, c=code: c})()  # type: ignore[assignment]
        shard.took, shard.started = 600.0 + index, 0.0
        done.append(shard)
    assert shard_runner.report(done, 701.0) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "70 passed, 2 failed"
    assert re.search(r"shard 2: 602 s, exit 5: 12 deselected", "\n".join(out))
    assert any(line.startswith("---- shard 0 failed (exit 1)") for line in out)
    assert not any(line.startswith("---- shard 2 failed") for line in out)


def test_a_failing_command_beside_the_shards_fails_the_run_and_shows_its_log(tmp_path: Any, capsys: Any) -> None:
    shard = shard_runner.Shard(0, 1, tmp_path)
    shard.log.write_text("=== 3 passed in 1.00s ===\n")
    shard.proc = type("Done", (), {"poll": lambda self: 0})()  # type: ignore[assignment]
    side = shard_runner.Beside("make lint", tmp_path / "beside.log")
    side.log.write_text("operator/x.py:1: error: Missing return type\n")
    side.proc = type("Done", (), {"returncode": 2})()  # type: ignore[assignment]
    assert shard_runner.report([shard], 5.0, side) == 1
    out = capsys.readouterr().out
    assert "Missing return type" in out and "beside: make lint: 0 s, exit 2" in out
    assert out.splitlines()[-1] == "3 passed, 0 failed"


def test_progress_names_the_percentage_and_the_module(tmp_path: Any) -> None:
    shard = shard_runner.Shard(0, 1, tmp_path)
    assert shard.progress() == "0%"
    shard.log.write_text("tests/e2e/test_chaos.py ....   [ 12%]\ntests/e2e/test_sync.py ..")
    assert shard.progress() == "12% in tests/e2e/test_sync.py"
