"""py-spy over the operator while the scale benchmark runs: where its CPU goes, as text.

``py-spy record --format raw`` writes collapsed stacks ("frame;frame;... count"); this folds them
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
            [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--nonblocking",
             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self._proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


def summary(path: Path, top: int = 25) -> list[tuple[str, float]]:
    """(function, share of the samples it is on the stack for), the largest first."""
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame.split(" (")[0] + " " + _where(frame)] += n
    return [(frame, n / total) for frame, n in inclusive.most_common(top)] if total else []


def _where(frame: str) -> str:
    inside = frame.partition(" (")[2].rstrip(")")
    parts = inside.split("/")
    return "(" + "/".join(parts[-2:]) + ")" if parts else ""
