"""What the operator needs to run as the chart's Pod on the test world's node.

Pods sit on the node's host-only bridge (``node_config.NODE_IP``) and cannot reach servers bound
to 127.0.0.1, and the chart's Pod may not use the host's network under Pod Security Admission
``restricted``. So what the Pod talks to listens on the bridge address: a byte relay to the
apiserver (whose serving certificate names that address too), a moto server, and an OpenBao TLS
listener with a certificate of a CA of the test's own. The image comes from hack/build-image.sh,
exported once per image to an OCI archive and imported into the node's containerd.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import processes
from .cluster_fixtures import Kube
from .node_config import NODE_IP
from .pki import CertificateAuthority
from .vault import ROOT_TOKEN

REPO = Path(__file__).resolve().parents[2]
IMAGE_CACHE = Path.home() / ".cache" / "botsecret" / "image"


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class TcpRelay:
    """Bytes from ``host``:<free port> to 127.0.0.1:``target_port``, both ways (TLS passes through)."""

    def __init__(self, host: str, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server((host, 0))
        self.host, self.port = host, self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
                self._open += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        for conn in self._open:
            with suppress(OSError):
                conn.close()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class OperatorImage:
    reference: str  # localhost/botsecret-operator:<content hash>
    archive: Path  # OCI archive for `ctr images import`
    size: str  # as buildah stores it (uncompressed layers), e.g. "496 MB"


def operator_image() -> OperatorImage:
    """The image built from this checkout (cached by content), as an OCI archive (cached by image)."""
    built = subprocess.run(["bash", str(REPO / "hack" / "build-image.sh")], capture_output=True, text=True,
                           timeout=1800, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"hack/build-image.sh failed:\n{built.stderr[-3000:]}")
    reference = built.stdout.strip().splitlines()[-1]
    buildah = ["buildah", "--root", str(IMAGE_CACHE / "storage"), "--runroot", str(IMAGE_CACHE / "run"),
               "--storage-driver", "vfs"]
    archive = IMAGE_CACHE / f"{reference.rsplit(':', 1)[1]}.oci.tar"
    if not archive.exists():
        for old in IMAGE_CACHE.glob("*.oci.tar"):  # archives of older sources only fill the disk
            old.unlink()
        partial = archive.with_suffix(".partial")
        subprocess.run([*buildah, "push", "--quiet", reference, f"oci-archive:{partial}:{reference}"],
                       check=True, capture_output=True, timeout=600)
        partial.rename(archive)
    size = subprocess.run([*buildah, "images", "--format", "{{.Size}}", reference],
                          capture_output=True, text=True, check=False).stdout.strip()
    return OperatorImage(reference, archive, size or "unknown")


@dataclass
class BridgedOpenBao:
    """An OpenBao dev server: plain HTTP on loopback for the test, TLS on ``host`` for Pods."""

    host: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    tls_port: int = 0

    @property
    def admin_address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"https://{self.host}:{self.tls_port}"

    @property
    def ca_path(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = CertificateAuthority(self.workdir / "pki").issue(
            "openbao", cn="openbao", server=True, ips=("127.0.0.1", self.host))
        self.port, self.tls_port = processes.free_port(span=2), processes.free_port()
        config = self.workdir / "tls-listener.hcl"
        config.write_text(f'listener "tcp" {{\n  address = "{self.host}:{self.tls_port}"\n'
                          f'  tls_cert_file = "{cert}"\n  tls_key_file = "{key}"\n}}\n')
        exe = str(Path(sys.executable).with_name("bao"))
        exe = exe if Path(exe).exists() else (shutil.which("bao") or "bao")
        log = self.workdir / "openbao.log"
        self.proc = processes.start(
            [exe, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
             f"-dev-listen-address=127.0.0.1:{self.port}", f"-config={config}"],
            log=log, env={"HOME": str(self.workdir)})
        processes.wait_until(
            lambda: urllib.request.urlopen(f"{self.admin_address}/v1/sys/health", timeout=1).status == 200,
            timeout=30, what="OpenBao on the bridge", proc=self.proc, log=log)

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def client(self) -> object:
        import hvac

        return hvac.Client(url=self.admin_address, token=ROOT_TOKEN)


@contextmanager
def relay(host: str, target_port: int) -> Iterator[TcpRelay]:
    running = TcpRelay(host, target_port)
    try:
        yield running
    finally:
        running.close()


def operator_pods(kube: Kube, namespace: str, release: str) -> list[Any]:
    return [p for p in kube.core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={release}").items
            if not p.metadata.deletion_timestamp]


def metrics_of(pod: Any) -> str:
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:9102/metrics", timeout=5) as response:
        return str(response.read().decode())


def leader_value(pod: Any) -> float:
    for line in metrics_of(pod).splitlines():
        if line.startswith("botsecret_leader "):
            return float(line.split()[1])
    return -1.0


def values_file(path: Path, image_ref: str, api_port: int, **extra: Any) -> Path:
    repository, tag = image_ref.rsplit(":", 1)
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "logFormat": "plain",
        # No kube-proxy on the test node: the in-cluster client goes to the relay on the bridge.
        "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": NODE_IP},
                     {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)}],
        **extra,
    }
    path.write_text(yaml.safe_dump(values))
    return path
