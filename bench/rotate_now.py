"""`botsecret rotate --now` benchmark: from the command to the pod-template patch, and to its exit.

Run it with ``make bench-rotate`` (or ``.venv/bin/python -m bench.rotate_now``). It starts the test
world of ``tests/harness`` in a temporary directory (control plane, moto, the operator under its
own ServiceAccount), and for each round puts a fresh value into the one AWS secret of a BotSecret
(debounce 30s, which --now skips) and runs ``botsecret rotate NAME --now`` as a user would, a
process of its own. It prints medians and never asserts on time.

- command start → template patched: from starting the process to the arrival of the watch event
  with the Deployment's new ``restarted-for.botsecret.dev/<name>`` annotation;
- the operator's part: from the CLI's annotation PATCH completing to the operator's Deployment
  PATCH completing, both read from the apiserver's audit log (one clock, microseconds);
- command → exit: the process ends once it has seen the rollout Complete (0 replicas: no kubelet).
"""

from __future__ import annotations

import argparse
import datetime
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rotation import APP, NAME, ObjectWatch, restart_annotation
from tests.harness import botsecrets as bs
from tests.harness import processes
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import OPERATOR_USER, ControlPlane, binaries
from tests.harness.cluster_fixtures import kube_for
from tests.harness.operator_process import deploy

TIMEOUT = 120.0


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _operator_part(plane: ControlPlane, namespace: str, after: float) -> float | None:
    """Seconds from the rotate command's BotSecret PATCH completing to the operator's Deployment
    PATCH completing, for the first such pair after wall time ``after``."""
    events = [e for e in plane.audit_events() if e.get("stage") == "ResponseComplete"
              and (e.get("objectRef") or {}).get("namespace") == namespace and _stamp(e["stageTimestamp"]) >= after]
    annotated = [_stamp(e["stageTimestamp"]) for e in events if e.get("verb") == "patch"
                 and e["objectRef"].get("resource") == "botsecrets" and not e["objectRef"].get("subresource")
                 and e["user"]["username"] != OPERATOR_USER]
    if not annotated:
        return None
    patched = [_stamp(e["stageTimestamp"]) for e in events if e.get("verb") == "patch"
               and e["objectRef"].get("resource") == "deployments" and e["user"]["username"] == OPERATOR_USER
               and _stamp(e["stageTimestamp"]) >= annotated[0]]
    return patched[0] - annotated[0] if patched else None


def run(workdir: Path, rounds: int) -> int:
    plane = ControlPlane(workdir=workdir / "cluster", bin_dir=binaries())
    moto = MotoServer(port=processes.free_port(), log=workdir / "moto.log")
    operator = None
    watch: ObjectWatch | None = None
    try:
        plane.start()
        moto.start()
        kube = kube_for(plane.admin_kubeconfig)
        operator = deploy(kube, plane, workdir)
        namespace = f"bench-{secrets.token_hex(4)}"
        kube.core.create_namespace({"metadata": {"name": namespace}})
        remote = f"{namespace}/token"
        moto.client().create_secret(Name=remote, SecretString=secrets.token_hex(16))
        wl.deployment(kube, namespace, APP, **wl.uses_all(NAME))
        bs.create(kube, namespace, NAME, {
            "sources": [bs.aws_source(kube, namespace, moto.endpoint)],
            "data": [{"key": "TOKEN", "remoteRef": {"name": remote}}],
            "rollout": {"targets": [{"kind": "Deployment", "name": APP}], "debounce": "30s"}})
        bs.wait_ready(kube, namespace, NAME, reason="Synced", timeout=TIMEOUT)
        watch = ObjectWatch(plane.admin_kubeconfig, lambda k: k.apps.list_namespaced_deployment, namespace, APP,
                            restart_annotation)
        watch.start()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
               "KUBECONFIG": str(plane.admin_kubeconfig)}
        to_patch: list[float] = []
        operator_part: list[float] = []
        to_exit: list[float] = []
        for i in range(rounds):
            moto.client().put_secret_value(SecretId=remote, SecretString=secrets.token_hex(16))
            before, mark = watch.latest(), watch.mark()
            wall, start = time.time(), time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "botsecret.cli", "rotate", NAME, "-n", namespace, "--now",
                                     "--timeout", str(int(TIMEOUT))], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            patched, _ = watch.wait(mark, lambda value, old=before: value is not None and value != old, TIMEOUT,
                                    "the template patch")
            out, _ = proc.communicate(timeout=TIMEOUT)
            ended = time.monotonic()
            if proc.returncode != 0:
                print(f"round {i + 1}: rotate exited {proc.returncode}:\n{out}")
                return 1
            to_patch.append(patched - start)
            to_exit.append(ended - start)
            part = _operator_part(plane, namespace, wall)
            if part is not None:
                operator_part.append(part)
            print(f"round {i + 1:2d}: template patched {to_patch[-1] * 1000:7.0f} ms after the command started; "
                  f"operator's part {part * 1000 if part is not None else float('nan'):6.0f} ms; "
                  f"exit on Complete {to_exit[-1] * 1000:7.0f} ms", flush=True)
        print(f"\nrotate --now, {rounds} rounds (medians; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}):")
        print(f"  command start -> template patched:            {statistics.median(to_patch) * 1000:7.0f} ms")
        if operator_part:
            print(f"  operator's part (annotated -> patched):       {statistics.median(operator_part) * 1000:7.0f} ms"
                  f"  ({len(operator_part)} rounds read from the audit log)")
        print(f"  command start -> exit on rollout Complete:    {statistics.median(to_exit) * 1000:7.0f} ms")
        return 0
    finally:
        if watch is not None:
            watch.stop()
        if operator is not None:
            operator.stop()
        moto.stop()
        plane.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.rotate_now", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="botsecret-bench-rotate-"))
    try:
        code = run(workdir, args.rounds)
    finally:
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    alive: list[Any] = processes.survivors()
    if alive:
        print(f"processes outlived the benchmark: {alive}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
