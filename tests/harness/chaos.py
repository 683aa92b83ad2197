"""What the chaos suite (tests/e2e/test_chaos.py) injected and what came of it, for its one
summary line. Every count is made by the tests as they run; nothing here is a constant."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class Record:
    faults: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)  # fault -> the open issue it is expected to fail on
    bad_inputs: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    leaked: int | None = None  # set by the suite's last test, which scans for every test value
    spurious_restarts: int = 0
    writes_lost: int = 0
    started: float | None = None
    ended: float | None = None

    def summary(self) -> str:
        leaked = "unscanned" if self.leaked is None else str(self.leaked)
        return (f"faults injected {len(self.faults)}, survived {len(self.survived)}, "
                f"bad inputs tried {len(self.bad_inputs)}, rejected with a clear message {len(self.rejected)}, "
                f"values leaked {leaked}, spurious restarts {self.spurious_restarts}, "
                f"Secret writes lost {self.writes_lost}")


RECORD = Record()


def begin() -> None:
    if RECORD.started is None:
        RECORD.started = time.monotonic()
    RECORD.ended = time.monotonic()


@contextlib.contextmanager
def fault(name: str, *, known_issue: str | None = None) -> Iterator[None]:
    """One injected fault: counted when injected, counted as survived only if every assertion
    about it (made inside the block) passed. ``known_issue``: the test is an expected failure."""
    RECORD.faults.append(name)
    if known_issue:
        RECORD.known[name] = known_issue
    yield
    RECORD.survived.append(name)


def bad_input(name: str) -> None:
    RECORD.bad_inputs.append(name)


def rejected(name: str) -> None:
    RECORD.rejected.append(name)


def restarts(*, expected: int, seen: int) -> None:
    """ReplicaSets seen against those the rotations explain; more is a spurious restart."""
    RECORD.spurious_restarts += max(0, seen - expected)


def writes_lost(count: int) -> None:
    RECORD.writes_lost += count


def pytest_runtest_logfinish(nodeid: str) -> None:
    if "test_chaos.py" in nodeid and RECORD.started is not None:
        RECORD.ended = time.monotonic()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RECORD.started is None:
        return
    took = (RECORD.ended or time.monotonic()) - RECORD.started
    terminalreporter.write_sep("=", "chaos")
    terminalreporter.write_line(RECORD.summary())
    for name in RECORD.faults:
        if name not in RECORD.survived:
            known = RECORD.known.get(name)
            terminalreporter.write_line(f"not survived: {name}" + (f" (expected: {known})" if known else ""))
    terminalreporter.write_line(f"chaos suite took {took:.0f} s")
