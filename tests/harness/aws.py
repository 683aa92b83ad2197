"""moto in server mode: Secrets Manager, STS and SQS on loopback.

The server is this module run as a script (``python -m tests.harness.aws``): it patches moto where
it answers differently from AWS in ways the operator depends on, then serves as ``moto_server``
does. :func:`patch_moto` says what is patched and why.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from . import processes
from .external import provider_host

REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class MotoServer:
    port: int
    log: Path
    proc: Popen[bytes] | None = field(default=None, repr=False)
    host: str = field(default_factory=provider_host)  # where it listens; an address Pods reach, if they must

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self.proc = processes.start([sys.executable, "-m", "tests.harness.aws", "-H", self.host, "-p", str(self.port)],
                                    log=self.log, cwd=REPO)
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


def patch_moto() -> None:
    """Make moto's Secrets Manager follow AWSCURRENT the way AWS does.

    moto 5.2.5 answers GetSecretValue without VersionId/VersionStage, and every entry of
    BatchGetSecretValue, from the secret's ``default_version_id``, which only CreateSecret and
    PutSecretValue set; UpdateSecretVersionStage moves the AWSCURRENT label but not that pointer,
    so after a stage move those reads keep answering the old version (AWS answers the version
    that holds AWSCURRENT). Rotation lambdas end with exactly such a move.
    """
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage
    if getattr(original, "_botsecret_patched", False):
        return

    def update_secret_version_stage(self: Any, secret_id: str, version_stage: str,
                                    remove_from_version_id: str, move_to_version_id: str) -> tuple[str, str]:
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return result

    update_secret_version_stage._botsecret_patched = True  # type: ignore[attr-defined]
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]


def cloudtrail_event(name: str, secret_id: str) -> str:
    """What an EventBridge rule on Secrets Manager's CloudTrail events puts on an SQS queue: the
    record of the action ``name`` on ``secret_id`` (a name or an ARN), as the message body."""
    return json.dumps({
        "version": "0", "id": "1f6b7ab3-5a0e-4b8e-9a39-0f0c3a4c2d11", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.secretsmanager", "account": "123456789012", "time": "2026-12-07T21:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"eventVersion": "1.08", "eventTime": "2026-12-07T21:00:00Z",
                   "eventSource": "secretsmanager.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
                   "requestParameters": {"secretId": secret_id}, "responseElements": None,
                   "eventType": "AwsApiCall", "managementEvent": True}})


if __name__ == "__main__":
    from moto.server import main

    patch_moto()
    main(sys.argv[1:])
