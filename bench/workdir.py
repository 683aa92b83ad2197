"""A benchmark's run in a temporary directory of its own, with the check that every process it
started has stopped: kept (and named) when the run failed or ``keep`` asks for it."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.harness import processes


def in_workdir(prefix: str, keep: bool, body: Callable[[Path], bool]) -> int:
    """Run ``body`` in a new temporary directory; the exit code: 0 when it answered True and no
    process outlived it, 1 otherwise (an exception still propagates, after the check)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    ok = False
    try:
        ok = body(workdir)
    finally:
        alive = processes.survivors()
        if alive:
            print(f"error: processes outlived the benchmark: {alive}", file=sys.stderr)
            ok = False
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1
