"""The ``botsecret`` command as a user runs it: a process with the caller's kubeconfig.

Every run's stdout and stderr go to ``test-artifacts/cli/`` for the leak scan, except the stdout
of ``render``, the one output that holds values on purpose.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

RUNS = itertools.count(1)


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str
    out_bytes: bytes


def botsecret(artifacts: Path, kubeconfig: Path | None, *args: str, timeout: float = 180) -> CliRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG"))}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run([sys.executable, "-m", "botsecret.cli", *args], capture_output=True, env=env,
                          timeout=timeout, check=False)
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    log = artifacts / "cli" / f"{next(RUNS):03d}-{args[0]}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    shown = "(render stdout: values, not kept)\n" if args[0] == "render" else out
    log.write_text(f"$ botsecret {' '.join(args)}\n# exit {done.returncode}\n# stdout\n{shown}# stderr\n{err}")
    return CliRun(done.returncode, out, err, done.stdout)


def rows(out: str) -> dict[str, list[str]]:
    """The check table by key: the columns before the hint, and the hint."""
    lines = out.splitlines()
    header = lines[0]
    hint_at = header.index("HINT")
    table: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line.strip() or "references OK" in line:
            continue
        table[line.split()[0]] = [*line[:hint_at].split(), line[hint_at:].strip()]
    return table
