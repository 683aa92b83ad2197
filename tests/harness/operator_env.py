"""Run the session's operator for a while with a different environment.

Some behaviour depends on the operator process's surroundings, not on a BotSecret: the shipped
Deployment's read-only root filesystem, a CA the test world's TLS servers need trusted. A test
restarts the one operator with extra environment and gets the usual one back afterwards, so two
operators never write the same objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .operator_process import OperatorProcess

# Where the operator looks for a temporary directory when it has none (see below).
_NOWHERE = "/nonexistent/botsecret-read-only-root"


@contextmanager
def restarted_with(operator: OperatorProcess, **env: str) -> Iterator[OperatorProcess]:
    saved = dict(operator.env)
    operator.stop()
    operator.env = {**saved, **env}
    try:
        operator.start()
        yield operator
    finally:
        operator.stop()
        operator.env = saved
        operator.start()


def no_temp_dir(directory: Path) -> dict[str, str]:
    """Environment in which a Python process finds no usable temporary directory.

    The shipped Deployment runs with ``readOnlyRootFilesystem: true`` and no writable volume, so
    ``tempfile`` fails there with FileNotFoundError. The tests run as root on a writable
    filesystem (permissions stop nothing, TMPDIR falls back to /tmp), so a ``sitecustomize``
    points ``tempfile`` at a directory that does not exist before the operator imports anything.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        "# Test world: no writable temporary directory, as under a read-only root filesystem.\n"
        f"import tempfile\ntempfile.tempdir = {_NOWHERE!r}\n"
    )
    path = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def temp_file_fails(env: dict[str, str]) -> bool:
    """Whether a Python process started with ``env`` cannot create a temporary file."""
    probe = subprocess.run(
        [sys.executable, "-c", "import tempfile; tempfile.mkstemp()"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )
    return probe.returncode != 0 and "FileNotFoundError" in probe.stderr
