"""py-spy over the operator while the scale benchmark runs: where its CPU goes, as text.

``py-spy record --gil --format raw`` (only the thread holding the GIL: CPU, not waiting) writes
collapsed stacks ("frame;frame;... count"); this folds them
into the share of samples each function is on the stack for (inclusive), which is what tells
whether model deserialisation, kopf's bookkeeping or a provider SDK is the cost.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


class Profiler:
    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self._proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--nonblocking", "--gil",
             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self._proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


# Frames every busy stack goes through (threads, the event loop, the CLI): they say nothing.
_PLUMBING = ("threading.py", "futures/thread.py", "asyncio/", "runpy", "botsecret/cli.py", "reactor/running.py",
             "botsecret/handlers.py:_locked")


def summary(path: Path, top: int = 25) -> list[tuple[str, float]]:
    """(function, share of the busy samples it is on the stack for), the largest first, without the
    plumbing every stack has; then the packages the samples end in (where the CPU itself goes)."""
    inclusive: Counter[str] = Counter()
    leaf_package: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            name = frame.split(" (")[0] + " " + _where(frame)
            if not any(p in name for p in _PLUMBING):
                inclusive[name] += n
        leaf_package["self in " + _package(frames[-1])] += n
    if not total:
        return []
    return ([(frame, n / total) for frame, n in inclusive.most_common(top)]
            + [(package, n / total) for package, n in leaf_package.most_common(12)])


def _package(frame: str) -> str:
    # py-spy shortens paths to the last two parts: "package/module.py" (or "module.py" for the
    # top of the standard library).
    path = frame.partition(" (")[2].rstrip(")").split(":")[0]
    return path.split("/")[0] if "/" in path else "stdlib"


def _where(frame: str) -> str:
    inside = frame.partition(" (")[2].rstrip(")")
    parts = inside.split("/")
    return "(" + "/".join(parts[-2:]) + ")" if parts else ""
