"""Start the test world by hand: ``make dev-up``. Prints what to export; Ctrl-C stops everything."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

from . import processes
from .aws import MotoServer
from .cluster import ControlPlane, binaries
from .gcp_fake import GcpSecretManagerFake
from .vault import ROOT_TOKEN, OpenBao


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="botsecret-dev-"))
    plane = ControlPlane(workdir=workdir / "cluster", bin_dir=binaries())
    moto = MotoServer(port=processes.free_port(), log=workdir / "moto.log")
    bao = OpenBao(port=processes.free_port(span=2), log=workdir / "openbao.log")
    gcp = GcpSecretManagerFake()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        plane.start()
        moto.start()
        bao.start()
        gcp.start()
        print(f"""
# botsecret test world is up (logs in {workdir}). Paste into another shell:
export KUBECONFIG={plane.admin_kubeconfig} PATH={plane.bin_dir}:$PATH   # kubectl and helm, built here
export AWS_ENDPOINT_URL={moto.endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export BAO_ADDR={bao.address} BAO_TOKEN={ROOT_TOKEN} VAULT_ADDR={bao.address} VAULT_TOKEN={ROOT_TOKEN}
export GCP_SECRET_MANAGER_ENDPOINT={gcp.endpoint}   # plain gRPC; use it as spec.sources[].gcp.endpoint
# Ctrl-C stops everything.
""", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        gcp.stop()
        bao.stop()
        moto.stop()
        plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
