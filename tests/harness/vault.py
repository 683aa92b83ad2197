"""A real OpenBao dev server (the Vault API), KV v2 mounted at ``secret/``."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from . import processes

ROOT_TOKEN = "root-token-for-tests"


@dataclass
class OpenBao:
    port: int  # the cluster listener takes port + 1
    log: Path
    proc: Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = str(Path(sys.executable).with_name("bao"))
        exe = exe if Path(exe).exists() else (shutil.which("bao") or "bao")
        self.proc = processes.start(
            [exe, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
             f"-dev-listen-address=127.0.0.1:{self.port}"],
            log=self.log, env={"HOME": str(self.log.parent), "BAO_ADDR": self.address},
        )
        processes.wait_until(
            lambda: urllib.request.urlopen(f"{self.address}/v1/sys/health", timeout=1).status == 200,
            timeout=30, what="OpenBao dev server", proc=self.proc, log=self.log,
        )

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def client(self, token: str = ROOT_TOKEN) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token)
