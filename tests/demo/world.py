"""The demo's world: control plane, moto, OpenBao, the GCP fake, the operator and, when the host
can run one, a kubelet node. Everything started is stopped by the ExitStack, in reverse order,
whatever happens (an error, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import processes
from tests.harness.aws import MotoServer
from tests.harness.cluster import REPO, ControlPlane
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.operator_process import OperatorProcess, deploy
from tests.harness.vault import OpenBao

Say = Callable[[str], None]


def build_binaries(say: Say) -> Path:
    """hack/build-binaries.sh with its progress shown line by line (each Go build says when it
    starts and how long it took); the binaries are cached, so only the first run builds."""
    cached = (Path.home() / ".cache" / "botsecret" / "bin" / "kube-apiserver").exists()
    if not cached:
        say("building the control plane from its pinned Go modules: the first time this takes several minutes "
            "(etcd, kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler, helm); "
            "later runs use the cache")
    start = time.monotonic()
    build = subprocess.Popen(["bash", str(REPO / "hack" / "build-binaries.sh")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert build.stderr is not None and build.stdout is not None
    for line in build.stderr:
        say(line.rstrip())
    out = build.stdout.read().strip().splitlines()
    if build.wait() != 0 or not out:
        raise RuntimeError(f"hack/build-binaries.sh failed with exit {build.returncode}")
    say(f"control-plane binaries ready ({time.monotonic() - start:.1f} s)")
    return Path(out[-1])


@dataclass
class World:
    plane: ControlPlane
    moto: MotoServer
    bao: OpenBao
    gcp: GcpSecretManagerFake
    kube: Kube
    operator: OperatorProcess
    node: Any | None  # tests.harness.node's node when the host runs one


def node_support() -> tuple[Any | None, str]:
    """The harness's node module and '' when this host can run a node now; else None and why not."""
    try:
        from tests.harness import node
    except ImportError:
        return None, "this checkout has no kubelet node harness (tests/harness/node.py)"
    reason = node.missing_requirements()
    if reason:
        return None, reason
    # One node per host: never wait for another run's (a test session may hold it for an hour).
    node.LOCK.parent.mkdir(parents=True, exist_ok=True)
    with node.LOCK.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None, f"another run's node holds this host ({node.LOCK})"
        fcntl.flock(lock, fcntl.LOCK_UN)
    return node, ""


def _stopping(what: str, stop: Callable[[], None], failures: list[str]) -> Callable[[], None]:
    """``stop``, with a failure said and recorded instead of cutting the rest of the cleanup short."""
    def run() -> None:
        try:
            stop()
        except Exception as e:  # noqa: BLE001 - reported, and the demo exits non-zero
            failures.append(f"stopping {what}: {type(e).__name__}: {e}")
    return run


def _together(*starts: Callable[[], Any]) -> list[Any]:
    """Run ``starts`` at once (each waits on its own server); answer their results in order.
    Whatever happens, even Ctrl-C here, every start has ended before this returns or raises, so
    nothing is left starting behind the cleanup."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(starts)) as pool:
        running = [pool.submit(fn) for fn in starts]
        try:
            return [f.result() for f in running]
        finally:
            concurrent.futures.wait(running)


def start(stack: contextlib.ExitStack, workdir: Path, bin_dir: Path, say: Say, *, with_node: bool,
          failures: list[str]) -> World:
    # Registered first, so it runs last: whatever a failed start left running, by PID.
    stack.callback(_stopping("leftover processes", _stop_leftovers, failures))
    plane = ControlPlane(workdir=workdir / "cluster", bin_dir=bin_dir)
    moto = MotoServer(port=processes.free_port(), log=workdir / "moto.log")
    bao = OpenBao(port=processes.free_port(span=2), log=workdir / "openbao.log")
    gcp = GcpSecretManagerFake()
    # Each stop is harmless before its start, so all are registered before anything starts.
    for what, stop in (("the control plane", plane.stop), ("moto", moto.stop), ("OpenBao", bao.stop),
                       ("the GCP fake", gcp.stop)):
        stack.callback(_stopping(what, stop, failures))
    say("starting the control plane (etcd, kube-apiserver, kube-controller-manager) on loopback, and at the same "
        "time AWS Secrets Manager (moto), Vault (OpenBao dev server) and Google Secret Manager (gRPC fake)")
    _together(plane.start, moto.start, bao.start, gcp.start)
    kube = kube_for(plane.admin_kubeconfig)
    node = None
    starts: list[Callable[[], Any]] = [lambda: deploy(kube, plane, workdir)]
    if with_node:
        from tests.harness.node import Node, host_lock

        try:
            # Held until the node is stopped (the node's own take is re-entrant); never waited for.
            stack.enter_context(host_lock(timeout=1))
        except TimeoutError:
            say("no kubelet node after all: another run took this host's node meanwhile; the bot's Deployment "
                "runs with 0 replicas")
            with_node = False
    if with_node:
        say("starting a kubelet node (containerd, runc, a host-only bridge; kube-scheduler) that runs the bot's "
            "pods, every host change undone at the end; at the same time the CRDs, the operator's RBAC and the "
            "operator")
        node = Node(cluster=plane, kube=kube, scratch=workdir / "node")
        stack.callback(_stopping("the node (and undoing its host changes)", node.stop, failures))
        starts.append(node.start)  # undoes its own changes if it fails
    else:
        say("installing the CRDs, the operator's RBAC and starting the operator")
    operator: OperatorProcess = _together(*starts)[0]
    stack.callback(_stopping("the operator", operator.stop, failures))
    return World(plane, moto, bao, gcp, kube, operator, node)


def _stop_leftovers() -> None:
    for proc in processes.STARTED:
        processes.stop(proc)
