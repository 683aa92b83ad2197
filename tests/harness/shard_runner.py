"""Run the suite as concurrent shards and end with one line CI can read.

``python -m tests.harness.shard_runner [--shards N] [pytest args...]`` (what ``make test`` runs)
starts N pytest processes at once. The tests mostly wait on servers, so two or three share two
cores well. Each shard has a world of its own: its control plane, operator and provider servers
(its own pytest session), a port range (``BOTSECRET_PORTS``, see processes.free_port), an
artifacts folder (``BOTSECRET_ARTIFACTS=test-artifacts/shard-K``) and its own leak scan, last.
tests/harness/shards.py decides which test modules each runs.

Each shard's output goes to ``test-artifacts/shard-K.log``; a line per shard every minute says
how far it is. At the end: each shard's duration and pytest summary, the chaos suite's summary
line when a shard ran it, the last lines of every failing shard's log, and last, alone on a line,
``N passed, N failed``. Exit 0 only if every shard passed; pytest's exit code 5 (no test
selected, e.g. ``-m chaos`` leaves a shard nothing) counts as passed. ``--beside CMD`` runs a
command next to the shards (``make test``: the linters, CPU-bound while the tests mostly wait);
its log is ``test-artifacts/beside.log``, printed if it fails, and its failure fails the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PORTS = (20000, 32000)  # below Linux's ephemeral range (32768-60999): kernel-chosen ports never land here
NO_TESTS = 5
FAILED_TAIL_LINES = 150
HEARTBEAT_SECONDS = 60.0
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_SUMMARY = re.compile(r"^=+ .*\bin [\d.]+s\b.* =+$")
_PROGRESS = re.compile(r"\[\s*(\d+)%\]\s*$", re.MULTILINE)
_MODULE = re.compile(r"^(tests/\S+\.py) ", re.MULTILINE)


@dataclass
class Shard:
    index: int
    count: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    took: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.root / f"shard-{self.index}.log"

    @property
    def ports(self) -> str:
        width = (PORTS[1] - PORTS[0]) // self.count
        low = PORTS[0] + self.index * width
        return f"{low}-{low + width - 1}"

    def start(self, pytest_args: list[str]) -> None:
        env = {**os.environ, "BOTSECRET_SHARD": str(self.index), "BOTSECRET_SHARDS": str(self.count),
               "BOTSECRET_ARTIFACTS": str(self.root / f"shard-{self.index}"), "BOTSECRET_PORTS": self.ports,
               "PYTHONUNBUFFERED": "1"}  # the log shows progress as it happens
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    @property
    def returncode(self) -> int | None:
        assert self.proc is not None
        return self.proc.poll()

    @property
    def passed(self) -> bool:
        return self.returncode in (0, NO_TESTS)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def progress(self) -> str:
        """How far the shard is: pytest's last percentage and the module it is in."""
        text = self.text()
        done = _PROGRESS.findall(text)
        modules = _MODULE.findall(text)
        return f"{done[-1] if done else 0}%" + (f" in {modules[-1]}" if modules else "")

    def summary(self) -> str:
        lines = [line for line in self.text().splitlines() if _SUMMARY.match(line)]
        return lines[-1].strip("= ") if lines else "no pytest summary"

    def section(self, title: str) -> list[str]:
        """The lines of one ``=== title ===`` section of the terminal summary."""
        lines, inside = [], False
        for line in self.text().splitlines():
            if re.match(rf"^=+ {re.escape(title)} =+$", line):
                inside = True
                continue
            if inside and line.startswith("==="):
                break
            if inside:
                lines.append(line)
        return lines


@dataclass
class Beside:
    """A command run next to the shards (the linters: CPU-bound while the tests mostly wait)."""

    command: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    took: float = 0.0

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.command, shell=True, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.started = time.monotonic()


def run(count: int, pytest_args: list[str], beside: str | None = None) -> int:
    root = Path(os.environ.get("BOTSECRET_ARTIFACTS", REPO / "test-artifacts"))
    root.mkdir(parents=True, exist_ok=True)
    shards = [Shard(i, count, root) for i in range(count)]
    side = Beside(beside, root / "beside.log") if beside else None
    began = time.monotonic()
    try:
        if side is not None:
            side.start()
            print(f"beside the shards: {side.command} (log {side.log})", flush=True)
        for shard in shards:
            shard.start(pytest_args)
            print(f"shard {shard.index}: pytest pid {shard.proc.pid if shard.proc else '?'}, ports {shard.ports}, "
                  f"log {shard.log.relative_to(REPO) if shard.log.is_relative_to(REPO) else shard.log}", flush=True)
        beat = time.monotonic()
        while any(s.returncode is None for s in shards) or (side and side.proc and side.proc.poll() is None):
            time.sleep(1)  # the poll interval of the processes' exit; nothing is inferred from it
            if side is not None and side.proc is not None and side.proc.poll() is not None and not side.took:
                side.took = time.monotonic() - side.started
                print(f"beside: {side.command}: exit {side.proc.returncode} after {side.took:.0f} s", flush=True)
            for shard in shards:
                if shard.returncode is not None and not shard.took:
                    shard.took = time.monotonic() - shard.started
                    print(f"shard {shard.index}: finished in {shard.took:.0f} s: {shard.summary()}", flush=True)
            if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                running = ", ".join(f"shard {s.index} {s.progress()}" for s in shards if s.returncode is None)
                print(f"shards: {time.monotonic() - began:.0f} s, {running}", flush=True)
    finally:
        for proc in [s.proc for s in shards] + [side.proc if side else None]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(60)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return report(shards, time.monotonic() - began, side)


def report(shards: list[Shard], took: float, side: Beside | None = None) -> int:
    totals: dict[str, int] = {}
    for shard in shards:
        shard.took = shard.took or time.monotonic() - shard.started
        for number, kind in _COUNT.findall(shard.summary()):
            kind = "errors" if kind.startswith("error") else kind
            totals[kind] = totals.get(kind, 0) + int(number)
    for shard in shards:
        chaos = shard.section("chaos")
        if chaos:
            print(f"---- shard {shard.index}: chaos suite ----")
            print("\n".join(chaos))
    for shard in shards:
        if not shard.passed:
            tail = shard.text().splitlines()[-FAILED_TAIL_LINES:]
            print(f"---- shard {shard.index} failed (exit {shard.returncode}); last {len(tail)} lines of {shard.log} ----")
            print("\n".join(tail))
    side_failed = side is not None and side.proc is not None and side.proc.returncode != 0
    if side is not None and side_failed:
        tail = side.log.read_text(errors="replace").splitlines()[-FAILED_TAIL_LINES:]
        print(f"---- {side.command} failed; last {len(tail)} lines of {side.log} ----")
        print("\n".join(tail))
    print("==== shards ====")
    if side is not None and side.proc is not None:
        print(f"beside: {side.command}: {side.took:.0f} s, exit {side.proc.returncode}")
    for shard in shards:
        print(f"shard {shard.index}: {shard.took:.0f} s, exit {shard.returncode}: {shard.summary()}")
    others = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()) if k not in ("passed", "failed", "deselected"))
    print(f"all shards: {took:.0f} s" + (f"; {others}" if others else ""))
    failed = totals.get("failed", 0) + totals.get("errors", 0)
    if failed == 0 and not all(s.passed for s in shards):
        failed = 1  # a shard that died without a summary still fails the run
    print(f"{totals.get('passed', 0)} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and all(s.passed for s in shards) and not side_failed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0], allow_abbrev=False)
    parser.add_argument("--shards", type=int, default=int(os.environ.get("SHARDS", "2")))
    parser.add_argument("--beside", help="a shell command to run next to the shards; its failure fails the run")
    args, pytest_args = parser.parse_known_args()
    return run(args.shards, pytest_args, args.beside)


if __name__ == "__main__":
    sys.exit(main())
