"""Start test servers on loopback, wait for them, and stop them by PID.

Every process the harness starts is recorded, so the session can prove at its end that none
outlived the run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

STARTED: list[subprocess.Popen[bytes]] = []


def free_port(span: int = 1) -> int:
    """A free TCP port on 127.0.0.1; with ``span`` > 1, the next ``span - 1`` ports are free too.

    Under ``BOTSECRET_PORTS=LOW-HIGH`` (set per shard by tests/harness/shard_runner.py) the port
    comes from that range: concurrent shards then never pick the same port between one's check
    and its server's bind, as two draws from the kernel's ephemeral range could.
    """
    own = os.environ.get("BOTSECRET_PORTS")
    low, high = (int(bound) for bound in own.split("-")) if own else (0, 0)
    for _ in range(200):
        if own:
            port = random.randint(low, high - span)
            if not _port_is_free(port):
                continue
        else:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        if all(_port_is_free(port + i) for i in range(1, span)):
            return port
    raise RuntimeError(f"no free port range found{f' in {own}' if own else ''}")


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready:\n{tail}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout} s:\n{tail}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group with output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    proc = subprocess.Popen(
        list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
    )
    out.close()
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 10) -> None:
    """SIGTERM the process (and its group), then SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # Children of the group that outlived their leader.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its group at once, and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def survivors() -> list[int]:
    """PIDs of started processes (or members of their groups) that are still alive."""
    alive = []
    for proc in STARTED:
        if proc.poll() is None:
            alive.append(proc.pid)
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 0)
            alive.append(proc.pid)
    return alive
