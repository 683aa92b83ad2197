"""`make demo`'s flow, as CI runs it: the phases in order, exit 0, values never shown, and a
Ctrl-C in the middle stopping everything it started. The output and the demo world's logs stay
under test-artifacts/demo/ for the leak scan."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo import bot
from tests.demo.timeline import PHASES
from tests.harness import leaks
from tests.harness.cluster import REPO
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.operability

PHASE_LINE = re.compile(r"^\[\s*[\d.]+s\] ==> ([a-z ]+): (.*)$")


def _demo(artifacts: Path, run: str, seed: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    workdir, output = artifacts / "demo" / run, artifacts / "demo" / f"{run}-output.log"
    workdir.mkdir(parents=True)
    leaks.ISSUED.extend(bot.values(seed))
    with output.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.demo", "--workdir", str(workdir), "--seed", seed],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    return proc, workdir, output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _started(workdir: Path) -> list[int]:
    return [int(p) for p in (workdir / "started.pids").read_text().split()]


def test_the_demo_prints_the_timeline_in_order_and_stops_everything(artifacts: Path) -> None:
    seed = "ci-demo-run"
    proc, workdir, output = _demo(artifacts, "run", seed)
    code = proc.wait(timeout=900)
    text = output.read_text()
    print(text)
    assert code == 0, text[-3000:]
    phases = [m.group(1) for line in text.splitlines() if (m := PHASE_LINE.match(line))]
    with_node = "bot running" in phases
    expected = [p for p in PHASES if with_node or p in ("synced", "rotated", "restarted", "rollout complete")]
    assert phases == expected, text
    details = {m.group(1): m.group(2) for line in text.splitlines() if (m := PHASE_LINE.match(line))}
    assert "8 keys" in details["synced"]
    assert f"{bot.ROTATED_KEY}" in details["restarted"] and f"Deployment/{bot.NAME}" in details["restarted"]
    if with_node:
        assert bot.digest(bot.value(seed, bot.ROTATED_KEY)) in details["bot running"]
        assert bot.digest(bot.value(seed, bot.ROTATED_KEY, 2)) in details["new pod running"]
    else:
        assert "0 replicas" in text and "no kubelet node" in text
    assert "export KUBECONFIG=" in text and f"kubectl -n {bot.NAMESPACE} get botsecret {bot.NAME}" in text
    assert re.search(r"demo: done in [\d.]+ s", text)
    assert not any(v in text for v in bot.values(seed))
    started = _started(workdir)
    assert len(started) >= 5  # etcd, apiserver, controller-manager, moto, OpenBao, the operator
    assert [p for p in started if _alive(p)] == []


def test_a_ctrl_c_in_the_middle_stops_everything_it_started(artifacts: Path) -> None:
    proc, workdir, output = _demo(artifacts, "interrupted", "ci-demo-interrupted")
    try:
        wait_for(lambda: "==> synced" in output.read_text() or proc.poll() is not None, timeout=600,
                 what="the demo's first sync")
        assert proc.poll() is None, output.read_text()[-3000:]
        started = _started(workdir)
        assert all(_alive(p) for p in started)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends Ctrl-C: to the whole foreground group
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = output.read_text()
    assert code == 130, text[-3000:]
    assert "demo: interrupted (SIGINT)" in text and "demo: everything it started is stopped" in text
    assert [p for p in started if _alive(p)] == []
