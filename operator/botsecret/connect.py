"""Build the provider client for a source, with the credentials of the BotSecret's own namespace.

Clients are cached per identity: the namespace, the source's settings and the version of the
credentials Secret. A rotated credentials Secret therefore gets a new client; nothing is shared
between two namespaces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from .providers.base import AccessDenied, Provider, ProviderError, Unavailable
from .spec import AwsSource, GcpSource, Source, VaultSource

__all__ = ["CredentialsError", "ProviderPool"]


class CredentialsError(ProviderError):
    """The credentials a source names cannot be read or are incomplete."""

    reason = "AccessDenied"


@dataclass(frozen=True)
class _Credentials:
    resource_version: str
    values: dict[str, bytes]

    def __repr__(self) -> str:
        return f"_Credentials(<{len(self.values)} keys>)"


def _read_credentials(core: Any, namespace: str, name: str, field: str) -> _Credentials:
    import base64

    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as e:
        if e.status == 404:
            raise CredentialsError(f"{field}: Secret {name!r} not found in namespace {namespace!r}") from None
        if e.status == 403:
            raise CredentialsError(f"{field}: the operator may not read Secret {name!r}") from None
        raise Unavailable(f"{field}: reading Secret {name!r} failed with HTTP {e.status}") from None
    values = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    return _Credentials(secret.metadata.resource_version or "", values)


def _need(creds: _Credentials, key: str, field: str, name: str) -> str:
    if key not in creds.values:
        raise CredentialsError(f"{field}: Secret {name!r} has no key {key!r}")
    return creds.values[key].decode("utf-8").strip()


class ProviderPool:
    """Provider clients keyed by identity; thread-safe."""

    def __init__(self, core: Any, *, timeout: float = 10.0) -> None:
        self._core = core
        self._timeout = timeout
        self._lock = threading.Lock()
        # (namespace, source settings) -> (credentials version, client)
        self._clients: dict[tuple[str, object], tuple[str | None, Provider]] = {}

    def get(self, namespace: str, source: Source, source_index: int) -> Provider:
        field = f"spec.sources[{source_index}].{source.kind}.credentialsSecretRef"
        conf = source.provider
        creds = None
        if conf.credentials_secret:
            creds = _read_credentials(self._core, namespace, conf.credentials_secret, field)
        key, version = (namespace, conf), creds.resource_version if creds else None
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            client = self._build(conf, creds, field)
            self._clients[key] = (version, client)
        if cached is not None:
            cached[1].close()  # the credentials rotated
        return client

    def _build(self, conf: AwsSource | GcpSource | VaultSource, creds: _Credentials | None, field: str) -> Provider:
        name = conf.credentials_secret or ""
        if isinstance(conf, AwsSource):
            from .providers.aws import AwsCredentials, AwsProvider

            aws_creds = None
            if creds is not None:
                token = creds.values.get("sessionToken")
                aws_creds = AwsCredentials(
                    access_key_id=_need(creds, "accessKeyId", field, name),
                    secret_access_key=_need(creds, "secretAccessKey", field, name),
                    session_token=token.decode().strip() if token else None,
                )
            return AwsProvider(conf, credentials=aws_creds, timeout=self._timeout)
        if isinstance(conf, GcpSource):
            from .providers.gcp import GcpProvider

            key_json = None
            if creds is not None:
                key_json = creds.values.get("credentials.json")
                if key_json is None:
                    raise CredentialsError(f"{field}: Secret {name!r} has no key 'credentials.json'")
            return GcpProvider(conf, credentials_json=key_json, timeout=self._timeout)
        from .providers.vault import VaultProvider

        if creds is None:
            raise AccessDenied(f"{field.rsplit('.', 1)[0]}: a Vault source needs credentialsSecretRef with a token")
        return VaultProvider(conf, token=_need(creds, "token", field, name), timeout=self._timeout)

    def forget_namespace(self, namespace: str) -> None:
        self._drop(lambda key: key[0] == namespace)

    def close(self) -> None:
        self._drop(lambda _: True)

    def _drop(self, predicate: Callable[[tuple[str, object]], bool]) -> None:
        with self._lock:
            dropped = [self._clients.pop(k)[1] for k in list(self._clients) if predicate(k)]
        for client in dropped:
            client.close()
