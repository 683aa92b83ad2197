"""Helpers to drive BotSecrets through the real apiserver, as a user with kubectl would."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from kubernetes.client.exceptions import ApiException

from .cluster_fixtures import Kube
from .stores import file_inline_sources
from .vault import ROOT_TOKEN
from .waiting import wait_for

GROUP, VERSION, PLURAL = "botsecret.dev", "v1alpha1", "botsecrets"
FORCE_SYNC = "botsecret.dev/force-sync"


def create(kube: Kube, namespace: str, name: str, spec: dict[str, Any],
           annotations: dict[str, str] | None = None) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BotSecret",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": file_inline_sources(kube, namespace, spec)}
    result: dict[str, Any] = kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return result


def get(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return result


def patch_spec(kube: Kube, namespace: str, name: str, spec: dict[str, Any]) -> None:
    spec = file_inline_sources(kube, namespace, spec)
    kube.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec},
                                               _content_type="application/merge-patch+json")


def delete(kube: Kube, namespace: str, name: str) -> None:
    kube.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def gone(kube: Kube, namespace: str, name: str) -> bool:
    try:
        get(kube, namespace, name)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def force_sync(kube: Kube, namespace: str, name: str) -> str:
    value = secrets.token_hex(4)
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": {FORCE_SYNC: value}}},
        _content_type="application/merge-patch+json")
    return value


def condition(body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for found in (body.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return None


def ready(body: dict[str, Any]) -> dict[str, Any] | None:
    return condition(body, "Ready")


def wait_ready(kube: Kube, namespace: str, name: str, *, status: str = "True", reason: str | None = None,
               timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get(kube, namespace, name)
        condition = ready(body)
        if condition and condition["status"] == status and (reason is None or condition["reason"] == reason):
            return body
        return None
    return wait_for(check, timeout=timeout, what=f"BotSecret {name} Ready={status} reason={reason}")


def secret_data(kube: Kube, namespace: str, name: str) -> dict[str, bytes] | None:
    try:
        secret = kube.core.read_namespaced_secret(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}


def wait_secret(kube: Kube, namespace: str, name: str, expected: dict[str, bytes], timeout: float = 30) -> None:
    wait_for(lambda: secret_data(kube, namespace, name) == expected, timeout=timeout,
             what=f"Secret {name} to hold the expected data")


def credentials_secret(kube: Kube, namespace: str, name: str, values: dict[str, str]) -> dict[str, str]:
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": values})
    return {"name": name}


def aws_source(kube: Kube, namespace: str, endpoint: str, name: str = "aws") -> dict[str, Any]:
    ref = credentials_secret(kube, namespace, f"{name}-credentials",
                             {"accessKeyId": "testing", "secretAccessKey": "testing"})
    return {"name": name, "aws": {"region": "us-east-1", "endpoint": endpoint, "stsEndpoint": endpoint,
                                  "credentialsSecretRef": ref}}


def vault_source(kube: Kube, namespace: str, address: str, name: str = "vault", **extra: Any) -> dict[str, Any]:
    ref = credentials_secret(kube, namespace, f"{name}-credentials", {"token": ROOT_TOKEN})
    return {"name": name, "vault": {"address": address, "credentialsSecretRef": ref, **extra}}


def gcp_source(endpoint: str, name: str = "gcp", project: str = "bots", **extra: Any) -> dict[str, Any]:
    return {"name": name, "gcp": {"project": project, "endpoint": endpoint, **extra}}


def last_checked(operator: Any, namespace: str, name: str) -> float:
    """Unix time of the BotSecret's last successful sync, from the operator's metrics: an idle
    refresh patches no status, so this is where a test sees that a refresh happened."""
    value: float = operator.metric("botsecret_last_success_timestamp_seconds", namespace=namespace, name=name)
    return value


def wait_refreshed(operator: Any, namespace: str, name: str, after: float, timeout: float = 60) -> None:
    """Until the BotSecret has synced successfully after Unix time ``after``."""
    wait_for(lambda: last_checked(operator, namespace, name) > after, timeout=timeout, interval=0.5,
             what=f"a refresh of BotSecret {name}")


def read_secret(kube: Kube, namespace: str, name: str) -> Any | None:
    """The Secret by name, or None when there is none."""
    try:
        return kube.core.read_namespaced_secret(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
