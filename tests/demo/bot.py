"""The guide's bot in the demo world: its six X/OpenAI keys as one JSON secret in AWS Secrets
Manager, one key in Vault, one in Google Secret Manager, the stores an admin would write, a
Deployment that reads the Secret, and the BotSecret that ties them together.

Values come from a seed, so a test can know them (for the leak scan) without the demo printing
them: the demo itself shows only digests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.harness import stores
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.vault import ROOT_TOKEN, OpenBao

NAMESPACE = "demo"
NAME = "twitter-bot"
TARGET = "twitter-bot-env"
AWS_SECRET = "prod/twitter-bot"
VAULT_PATH = "twitter-bot"
VAULT_KEY = "DATABASE_PASSWORD"
GCP_PROJECT = "bots"
GCP_SECRET = "alerts-webhook-token"
GCP_KEY = "ALERTS_WEBHOOK_TOKEN"
# The guide's "all 6 keys" (docs/examples/twitter-bot.yaml names the same six).
SIX_KEYS = ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_SECRET", "X_BEARER_TOKEN", "OPENAI_API_KEY")
ROTATED_KEY = "X_ACCESS_TOKEN"
ALL_KEYS = (*SIX_KEYS, VAULT_KEY, GCP_KEY)


def value(seed: str, key: str, generation: int = 1) -> str:
    """A value as unique and greppable as the tests' (prefix ``bsvleak``), derived from ``seed``."""
    digest = hmac.new(seed.encode(), f"{key}/{generation}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"bsvleak-demo-{key.lower()}-{digest}"


def values(seed: str) -> list[str]:
    """Every value the demo puts into a provider, the rotated one included."""
    return [*(value(seed, k) for k in ALL_KEYS), value(seed, ROTATED_KEY, 2)]


def digest(text: str) -> str:
    """What the bot image prints for a variable: never the value, a short SHA-256 of it."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def put_remote_secrets(seed: str, aws: MotoServer, bao: OpenBao, gcp: GcpSecretManagerFake) -> None:
    aws.client().create_secret(Name=AWS_SECRET, SecretString=json.dumps({k: value(seed, k) for k in SIX_KEYS}))
    bao.client().secrets.kv.v2.create_or_update_secret(path=VAULT_PATH, secret={VAULT_KEY: value(seed, VAULT_KEY)})
    gcp.put(GCP_PROJECT, GCP_SECRET, value(seed, GCP_KEY).encode())


def rotate_remote(seed: str, aws: MotoServer) -> str:
    """The guide's emergency step 2: a new X_ACCESS_TOKEN in the store. Answers its version."""
    document = {k: value(seed, k) for k in SIX_KEYS} | {ROTATED_KEY: value(seed, ROTATED_KEY, 2)}
    return str(aws.client().put_secret_value(SecretId=AWS_SECRET, SecretString=json.dumps(document))["VersionId"])


def create_stores(kube: Kube, aws: MotoServer, bao: OpenBao, gcp: GcpSecretManagerFake) -> None:
    """What the namespace's admin writes: which endpoint, which credentials (the trust boundary)."""
    for name, data in (("aws-credentials", {"accessKeyId": "testing", "secretAccessKey": "testing"}),
                       ("vault-credentials", {"token": ROOT_TOKEN})):
        kube.core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": name}, "stringData": data})
    stores.create_store(kube, NAMESPACE, "aws", {"aws": {
        "region": "us-east-1", "endpoint": aws.endpoint, "stsEndpoint": aws.endpoint,
        "credentialsSecretRef": {"name": "aws-credentials"}}})
    stores.create_store(kube, NAMESPACE, "vault", {"vault": {
        "address": bao.address, "credentialsSecretRef": {"name": "vault-credentials"}}})
    stores.create_store(kube, NAMESPACE, "gcp", {"gcp": {"project": GCP_PROJECT, "endpoint": gcp.endpoint}})


def botsecret() -> dict[str, Any]:
    """What the bot's team writes: it only names the stores."""
    return {
        "apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret", "metadata": {"name": NAME},
        "spec": {
            "sources": [{"name": s, "storeRef": {"name": s}} for s in ("aws", "vault", "gcp")],
            "dataFrom": [{"source": "aws", "remoteRef": {"name": AWS_SECRET}}],
            "data": [{"key": VAULT_KEY, "source": "vault", "remoteRef": {"name": VAULT_PATH, "property": VAULT_KEY}},
                     {"key": GCP_KEY, "source": "gcp", "remoteRef": {"name": GCP_SECRET}}],
            "target": {"name": TARGET},
            "rollout": {"targets": [{"kind": "Deployment", "name": NAME}], "debounce": "5s"},
        },
    }


def deployment(replicas: int, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": NAME, "labels": {"app": NAME}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": NAME}},
                 # The new pod runs before the old one goes, as a bot with one API session wants.
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app": NAME}},
                              "spec": {"containers": [container], "terminationGracePeriodSeconds": 2}}},
    }
