"""A real node that runs pods, joined to the test world's control plane.

containerd (Debian's 1.6, its socket, state and root under the run's scratch folder) with runc
and the CNI bridge on a host-only bridge ``bsnode0`` (10.214.0.1/24, the node's IP); the
kubelet and kube-scheduler built from the pinned Kubernetes module; a second
kube-controller-manager with the two controllers a node needs (node lifecycle, which lifts the
not-ready taint, and the root CA publisher, whose ``kube-root-ca.crt`` every service-account
volume mounts). Images come without a registry (tests/harness/node_images.py).

It needs root and changes the host. Every change is recorded, as it is made, in a
:class:`~tests.harness.host_changes.Ledger` and undone newest first by :meth:`Node.stop` or by
a failing :meth:`Node.start`, whatever fails; then the host is compared with a snapshot taken
before, and a leftover (an iptables rule, a mount, a link, a cgroup, a file) raises
:class:`~tests.harness.host_changes.HostNotRestored`. One node per host at a time: a lock file.

Use it through the fixtures in tests/harness/node_fixtures.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import node_images, processes
from .cluster import KUBELET_CLIENT_USER, ControlPlane, write_kubeconfig
from .cluster_fixtures import Kube
from .host_changes import HostNotRestored, HostSnapshot, Ledger, run
from .node_config import BRIDGE, CNI_BIN, NODE_IP, NODE_NAME, cni_conflist, containerd_toml, kubelet_yaml

LOCK = Path("/run/lock/botsecret-node.lock")
NODE_CONTROLLERS = "node-lifecycle-controller,root-ca-certificate-publisher-controller"


_held = 0  # how many holders of the node lock this process has (it is re-entrant within a process)
_handle: Any = None


@contextlib.contextmanager
def host_lock(timeout: float = 1800) -> Iterator[None]:
    """Hold the host's node lock: one node per host, across test runs (other runs wait, polling).
    Re-entrant within a process, so a test can hold it around a node's start and its own checks."""
    global _held, _handle
    if _held == 0:
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        handle = LOCK.open("w")
        deadline, waited = time.monotonic() + timeout, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    print(f"harness: waiting for the node lock {LOCK}: another test run has a node up")
                    waited = True
                if time.monotonic() > deadline:
                    handle.close()
                    raise TimeoutError(f"another test run holds the node lock {LOCK} since {timeout} s") from None
                time.sleep(0.5)
        _handle = handle
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0:
            _handle.close()
            _handle = None


def missing_requirements() -> str | None:
    """Why this host cannot run the node, or None."""
    if os.geteuid() != 0:
        return "the node needs root (a bridge, mounts, cgroups)"
    for tool in ("containerd", "runc", "ctr", "gcc", "buildah", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash hack/install-node-tools.sh; gcc and buildah: see README)"
    for plugin in ("bridge", "host-local", "loopback"):
        if not (CNI_BIN / plugin).exists():
            return f"CNI plugin {CNI_BIN / plugin} is missing (bash hack/install-node-tools.sh)"
    return None


@dataclass
class Node:
    """One node named ``bsnode``; ``images`` maps "pause" and "bot" to local image references."""

    cluster: ControlPlane
    kube: Kube
    scratch: Path
    name: str = NODE_NAME
    ip: str = NODE_IP
    images: dict[str, str] = field(default_factory=dict)
    kubelet_args: list[str] = field(default_factory=list)  # extra flags (a test makes the start fail)
    image_cache: Path | None = None  # instead of ~/.cache/botsecret (the benchmark's cold start)
    ledger: Ledger = field(default_factory=Ledger, repr=False)
    before: HostSnapshot | None = field(default=None, repr=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    _collector: PodLogCollector | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.scratch / "containerd" / "containerd.sock"

    @property
    def kept_pod_logs(self) -> Path:
        """Hard links to every container log the node wrote, kept after their pods are deleted."""
        return self.scratch / "pod-logs-kept"

    def start(self) -> None:
        """Bring the node up to Ready; on any failure undo what was done, then raise."""
        begin = time.monotonic()
        built = node_images.build(self.image_cache)
        self.images = {name: ref for name, (ref, _) in built.items()}
        self.timings["images"] = time.monotonic() - begin
        try:
            self._start(built)
        except BaseException as failure:
            try:
                self.stop()
            except HostNotRestored as e:
                failure.add_note(str(e))
            raise
        self.timings["ready"] = time.monotonic() - begin
        print(f"harness: node {self.name} Ready in {self.timings['ready']:.1f} s "
              f"(images {self.timings['images']:.1f} s)")

    def _start(self, built: dict[str, tuple[str, Path]]) -> None:
        self._take_lock()
        self.before = before = HostSnapshot.take()
        if BRIDGE in before.links:
            raise HostNotRestored(f"link {BRIDGE} exists: a node of an earlier run was not torn down "
                                  f"(ip link delete {BRIDGE}, after checking nothing else uses it)")
        # Catch-all undo steps for what the daemons change by themselves, recorded first so
        # they run last, after every process is gone.
        self.ledger.record("sysctls", before.restore_sysctls)
        self.ledger.record("iptables rules", before.restore_iptables)
        self.ledger.record("network links", before.remove_new_links)
        self.ledger.record("files under /run and /var", before.remove_new_files)
        self.ledger.record("mounts", before.unmount_new)
        self.ledger.record("cgroups", before.remove_new_cgroups)

        run("ip", "link", "add", BRIDGE, "type", "bridge")
        self.ledger.record(f"bridge {BRIDGE}", lambda: run("ip", "link", "delete", BRIDGE))
        run("ip", "addr", "add", f"{self.ip}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")

        self._start_containerd(built)
        self._register_with_cluster()
        self._start_kubelet()
        self._start_control_plane_parts()
        self._collector = PodLogCollector(self.scratch / "pods", self.kept_pod_logs)
        self._collector.start()
        self.ledger.record("pod log collector", self._collector.stop)
        self.ledger.record("pods on the node", self._drain)
        processes.wait_until(self.ready, timeout=180, what=f"node {self.name} Ready and untainted",
                             proc=self.procs["kubelet"], log=self.scratch / "kubelet.log")

    def _take_lock(self) -> None:
        lock = host_lock()
        lock.__enter__()
        self.ledger.record(f"node lock {LOCK}", lambda: lock.__exit__(None, None, None))

    def _start_process(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = processes.start(argv, log=self.scratch / f"{name}.log")
        self.procs[name] = proc
        self.ledger.record(f"process {name} ({proc.pid})", lambda: processes.stop(proc, timeout=20))
        return proc

    def _start_containerd(self, built: dict[str, tuple[str, Path]]) -> None:
        (self.scratch / "cni").mkdir(parents=True, exist_ok=True)
        (self.scratch / "cni" / "10-bsnode.conflist").write_text(cni_conflist(self.scratch))
        config = self.scratch / "containerd.toml"
        config.write_text(containerd_toml(self.scratch, self.images["pause"]))
        # Shims outlive containerd by design; those of this containerd die after it.
        self.ledger.record("containerd shims", self._kill_shims)
        proc = self._start_process("containerd", ["containerd", "--config", str(config), "--log-level", "info"])
        processes.wait_until(lambda: self.socket.is_socket() and self._ctr("version") is not None, timeout=60,
                             what="containerd", proc=proc, log=self.scratch / "containerd.log")
        for _, archive in built.values():
            node_images.import_into(self.socket, archive)

    def import_image(self, archive: Path) -> None:
        """Import another image (an OCI archive, e.g. from ``buildah push IMAGE oci-archive:FILE``)
        for pods to run with ``imagePullPolicy: Never``."""
        node_images.import_into(self.socket, archive)

    def _ctr(self, *args: str) -> str:
        return run("ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args)

    def _kill_shims(self) -> None:
        address = str(self.socket)
        for pid in shim_pids(address):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _register_with_cluster(self) -> None:
        """Credentials and RBAC for the kubelet, and for the apiserver to call the kubelet."""
        rbac = self.kube.rbac
        bindings = {f"botsecret-test-node-{self.name}": ("system:node", f"system:node:{self.name}"),
                    "botsecret-test-apiserver-kubelet-client": ("system:kubelet-api-admin", KUBELET_CLIENT_USER)}
        for binding, (role, user) in bindings.items():
            with contextlib.suppress(ApiException):  # left by an earlier node of this cluster
                rbac.delete_cluster_role_binding(binding)
            rbac.create_cluster_role_binding({
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
        self.ledger.record(f"Node object {self.name}", self._delete_node_object)

    def _delete_node_object(self) -> None:
        with contextlib.suppress(ApiException):
            self.kube.core.delete_node(self.name)

    def _kubeconfig(self, who: str, cn: str, org: str | None = None) -> Path:
        ca = self.cluster.ca
        assert ca is not None
        cert, key = ca.issue(f"node-{who}", cn=cn, org=org)
        return write_kubeconfig(self.scratch / f"{who}.kubeconfig", server=self.cluster.server, ca=ca.cert_path,
                                user=who, cert=cert, key=key)

    def _start_kubelet(self) -> None:
        ca = self.cluster.ca
        assert ca is not None
        serving = ca.issue("node-kubelet-serving", cn=self.name, server=True, ips=(self.ip,), dns=(self.name,))
        config = self.scratch / "kubelet.yaml"
        healthz = processes.free_port()
        config.write_text(kubelet_yaml(self.scratch, ca=ca.cert_path, serving=serving, healthz_port=healthz))
        kubeconfig = self._kubeconfig("kubelet", f"system:node:{self.name}", "system:nodes")
        self._start_process("kubelet", [
            str(self.cluster.bin_dir / "kubelet"), f"--config={config}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.scratch / 'kubelet'}", f"--node-ip={self.ip}", f"--hostname-override={self.name}",
            "--v=1", *self.kubelet_args])

    def _start_control_plane_parts(self) -> None:
        bin_dir = self.cluster.bin_dir
        scheduler = self._kubeconfig("scheduler", "system:kube-scheduler")
        self._start_process("kube-scheduler", [
            str(bin_dir / "kube-scheduler"), f"--kubeconfig={scheduler}", f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}", "--bind-address=127.0.0.1",
            f"--secure-port={processes.free_port()}", "--leader-elect=false", "--v=1"])
        kcm = self._kubeconfig("node-controllers", "system:kube-controller-manager")
        self._start_process("node-controllers", [
            str(bin_dir / "kube-controller-manager"), f"--kubeconfig={kcm}", f"--authentication-kubeconfig={kcm}",
            f"--authorization-kubeconfig={kcm}", "--bind-address=127.0.0.1", f"--secure-port={processes.free_port()}",
            f"--controllers={NODE_CONTROLLERS}", f"--root-ca-file={self.cluster.ca_path}",
            "--leader-elect=false", "--use-service-account-credentials=true", "--v=1"])

    def ready(self) -> bool:
        node = self.kube.core.read_node(self.name)
        conditions = {c.type: c.status for c in node.status.conditions or []}
        tainted = any(t.key == "node.kubernetes.io/not-ready" for t in node.spec.taints or [])
        return conditions.get("Ready") == "True" and not tainted

    def _drain(self, timeout: float = 60) -> None:
        """Cordon the node, delete its pods and wait until containerd runs no task: the kubelet
        tears pods down itself (CNI, network namespaces, volumes), so less is left to undo."""
        with contextlib.suppress(ApiException):
            self.kube.core.patch_node(self.name, {"spec": {"unschedulable": True}})
            for pod in self.kube.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.name}").items:
                with contextlib.suppress(ApiException):
                    self.kube.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                                         grace_period_seconds=0)
        deadline = time.monotonic() + timeout
        while self._ctr("tasks", "list", "--quiet").split() and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        """Undo every host change newest first; raise if a step failed or the host differs."""
        try:
            self.ledger.undo()
        finally:
            self.procs.clear()
        if self.before is not None:
            left = self.before.differences()
            self.before = None
            if left:
                raise HostNotRestored("the node's tear-down left the host changed:\n" + "\n".join(left))

    def memory_mib(self) -> dict[str, float]:
        """Resident memory of the node's own processes."""
        rss = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss[name] = int(line.split()[1]) / 1024
        return rss

    def log_files(self) -> list[Path]:
        """The node's daemons' logs and every container log it kept, for the leak scan."""
        return node_log_files(self.scratch)


def node_log_files(scratch: Path) -> list[Path]:
    return [*scratch.glob("*.log"), *(scratch / "pod-logs-kept").glob("*.log")]


def shim_pids(address: str) -> list[int]:
    """PIDs of containerd-shim processes serving the containerd at ``address``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and b"containerd-shim" in argv[0] and address.encode() in argv:
                found.append(int(entry.name))
    return found


class PodLogCollector:
    """Keeps a hard link to every container log file as soon as it appears, so the leak scan
    still reads the logs of pods the kubelet has deleted (it removes their log folders)."""

    def __init__(self, logs: Path, kept: Path, interval: float = 0.5) -> None:
        self.logs, self.kept, self.interval = logs, kept, interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-log-collector", daemon=True)

    def start(self) -> None:
        self.kept.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self.sweep()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            with contextlib.suppress(OSError):
                self.sweep()

    def sweep(self) -> None:
        for log in self.logs.glob("*/*/*.log"):
            pod_dir, container = log.parent.parent.name, log.parent.name
            link = self.kept / f"{pod_dir}__{container}__{log.name}"
            if not link.exists():
                with contextlib.suppress(FileNotFoundError, FileExistsError):
                    os.link(log, link)
