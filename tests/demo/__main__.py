"""``make demo``: ``python -m tests.demo [--keep]``. Exit 0 when the timeline completed, 1 on a
failure, 130 when interrupted (Ctrl-C or SIGTERM); every process started is stopped either way."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from tests.harness import processes

from . import timeline
from .world import build_binaries, node_support, start


class Interrupted(BaseException):
    """Not an Exception: the harness's waits treat every Exception as "not yet"."""



def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="stay up after the timeline, until Ctrl-C")
    parser.add_argument("--workdir", type=Path, help="logs and state here, kept (default: a temporary folder, removed)")
    parser.add_argument("--seed", default=None, help="derive the demo's values from this (default: random)")
    parser.add_argument("--no-build", action="store_true", help="use the cached binaries; fail if there are none")
    parser.add_argument("--no-node", action="store_true", help="run no kubelet node (0 replicas) even if the host can")
    args = parser.parse_args(argv)

    begin = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - begin:6.1f}s] {text}", flush=True)

    def phase(name: str, detail: str) -> None:
        say(f"==> {name}: {detail}")

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="botsecret-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    code = 0
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            stack.callback(shutil.rmtree, workdir, True)
        try:
            say(f"demo: logs in {workdir}")
            if args.no_build:
                from tests.harness.cluster import binaries

                bin_dir = binaries()
            else:
                bin_dir = build_binaries(say)
            node_module, missing = (None, "--no-node given") if args.no_node else node_support()
            if node_module is None:
                say(f"no kubelet node: {missing}; the bot's Deployment runs with 0 replicas "
                    "(the restart and the rollout still happen, with no pod)")
            world = start(stack, workdir, bin_dir, say, with_node=node_module is not None, failures=failures)
            # For whoever checks that nothing outlives the demo (tests/e2e/test_demo.py).
            (workdir / "started.pids").write_text("".join(f"{p.pid}\n" for p in processes.STARTED))
            say(f"world up ({time.monotonic() - begin:.1f} s)\n{timeline.paste_lines(world)}")
            timeline.run(world, args.seed or secrets.token_hex(8), say, phase)
            say(f"demo: done in {time.monotonic() - begin:.1f} s")
            if args.keep:
                say("KEEP=1: staying up; paste the lines above into another shell. Ctrl-C stops everything.")
                threading.Event().wait()
        except Interrupted as e:
            say(f"demo: interrupted ({e}); stopping everything it started")
            code = 130
        except Exception as e:  # noqa: BLE001 - said in one line; the logs have the rest
            say(f"demo: FAILED: {type(e).__name__}: {e}")
            code = 1
        finally:
            # A second Ctrl-C must not cut the cleanup short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for failure in failures:
        say(f"demo: FAILED: {failure}")
    say("demo: everything it started is stopped" if not failures else "demo: cleanup incomplete (see above)")
    return code or (1 if failures else 0)


if __name__ == "__main__":
    sys.exit(main())
