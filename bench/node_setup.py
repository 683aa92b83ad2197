"""Node benchmark: how long the test world's node takes to be Ready, cold and warm, and the
memory of its processes; optionally how long the kubelet and kube-scheduler take to build.

Run it as root from the repository root: ``.venv/bin/python -m bench.node_setup`` (add
``--build`` for the warm Go build of kubelet + kube-scheduler, ``--cold-build`` for one from an
empty Go build cache: many minutes on 2 cores). It starts a control plane in a temporary
directory, then the node twice: cold (its images built into an empty cache) and warm (images
cached); each time it runs a 2-replica bot Deployment on it and waits for its pods. It prints and
never asserts on time; it stops everything it started and undoes the node's host changes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.harness import processes
from tests.harness.cluster import REPO, ControlPlane, binaries
from tests.harness.cluster_fixtures import kube_for
from tests.harness.node import Node, missing_requirements
from tests.harness.node_fixtures import bot_deployment, wait_for_deployment_pods


def go_build_seconds(gocache: Path | None) -> dict[str, float]:
    """Seconds to build kubelet and kube-scheduler, as hack/build-binaries.sh does (same flags)."""
    env = {"GOCACHE": str(gocache)} if gocache else {}
    out = Path(tempfile.mkdtemp(prefix="bench-node-build-"))
    seconds = {}
    try:
        for command in ("kubelet", "kube-scheduler"):
            start = time.monotonic()
            subprocess.run(["nice", "-n", "10", "go", "build", "-buildvcs=false", "-trimpath", "-ldflags=-s -w",
                            "-o", str(out / command), f"k8s.io/kubernetes/cmd/{command}"],
                           cwd=REPO / "hack" / "k8s", check=True, env={**os.environ, **env})
            seconds[command] = time.monotonic() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return seconds


def one_start(plane: ControlPlane, scratch: Path, image_cache: Path | None) -> dict[str, object]:
    kube = kube_for(plane.admin_kubeconfig)
    node = Node(cluster=plane, kube=kube, scratch=scratch, image_cache=image_cache)
    node.start()
    try:
        namespace = f"bench-{scratch.name}"
        kube.core.create_namespace({"metadata": {"name": namespace}})
        start = time.monotonic()
        bot_deployment(kube, namespace, "bots", node, replicas=2, keys=["HOME"])
        wait_for_deployment_pods(kube, namespace, "bots")
        pods = time.monotonic() - start
        return {"images s": round(node.timings["images"], 1), "Ready s": round(node.timings["ready"], 1),
                "2 pods Running s": round(pods, 1),
                "RSS MiB": {k: round(v, 1) for k, v in node.memory_mib().items()}}
    finally:
        node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="time the warm Go build of kubelet + kube-scheduler")
    parser.add_argument("--cold-build", action="store_true", help="time it from an empty Go build cache too")
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        print(f"node benchmark: cannot run here: {reason}")
        return 2
    print(f"node benchmark {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
          f"load {Path('/proc/loadavg').read_text().split()[0]}")
    if args.build:
        print(f"go build (warm cache), s: {go_build_seconds(None)}")
    if args.cold_build:
        cold = Path(tempfile.mkdtemp(prefix="bench-gocache-"))
        try:
            print(f"go build (empty build cache), s: {go_build_seconds(cold)}")
        finally:
            shutil.rmtree(cold, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="bench-node-"))
    plane = ControlPlane(workdir=work / "cluster", bin_dir=binaries())
    try:
        plane.start()
        print(f"node cold (images built): {one_start(plane, work / 'cold', work / 'image-cache')}")
        print(f"node warm (images cached): {one_start(plane, work / 'warm', None)}")
    finally:
        plane.stop()
        shutil.rmtree(work, ignore_errors=True)
    alive = processes.survivors()
    if alive:
        print(f"processes outlived the benchmark: {alive}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
