"""moto in server mode: Secrets Manager, STS and SQS on loopback."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from . import processes

REGION = "us-east-1"


@dataclass
class MotoServer:
    port: int
    log: Path
    proc: Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = str(Path(sys.executable).with_name("moto_server"))
        exe = exe if Path(exe).exists() else (shutil.which("moto_server") or "moto_server")
        self.proc = processes.start([exe, "-H", "127.0.0.1", "-p", str(self.port)], log=self.log)
        processes.wait_until(
            lambda: urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).status == 200,
            timeout=30, what="moto server", proc=self.proc, log=self.log,
        )

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def client(self, service: str = "secretsmanager") -> Any:
        import boto3

        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
