"""The node's images without a registry: built by hack/build-node-images.sh (static binaries
wrapped by buildah, OCI archives cached by content under ~/.cache/botsecret/node-images) and
imported into the node's containerd with ``ctr images import``."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build(cache: Path | None = None) -> dict[str, tuple[str, Path]]:
    """Build (or find cached) the node's images: name ("pause", "bot") -> (reference, archive).
    ``cache`` replaces ~/.cache/botsecret for them (the benchmark's cold start)."""
    start = time.monotonic()
    env = {**os.environ, **({"BOTSECRET_CACHE": str(cache)} if cache else {})}
    out = subprocess.run(["bash", str(REPO / "hack" / "build-node-images.sh")], check=True,
                         stdout=subprocess.PIPE, text=True, env=env).stdout
    images = {}
    for line in out.splitlines():
        name, ref, archive = line.split()
        images[name] = (ref, Path(archive))
    print(f"harness: node images ready in {time.monotonic() - start:.1f} s")
    return images


def import_into(socket: Path, archive: Path) -> None:
    """Import an OCI archive into containerd's Kubernetes namespace, unpacked for the kubelet."""
    subprocess.run(["ctr", "--address", str(socket), "--namespace", "k8s.io", "images", "import",
                    "--snapshotter", "overlayfs", str(archive)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
