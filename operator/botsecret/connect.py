"""Build the provider client for a source, acting as the BotSecret's own namespace.

Clients are cached per identity: the namespace, the source's settings (ServiceAccount, role and
audience included) and the versions of the Secrets read for it. A rotated credentials Secret
therefore gets a new client; nothing is shared between two namespaces.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes.client.exceptions import ApiException

from . import secrets
from .identity import token_source
from .limits import Limiters, Limits
from .metered import MeteredProvider
from .providers.base import AccessDenied, Provider, Unavailable
from .shared_fetch import GATHER_SECONDS, SharedProvider
from .spec import FORBIDDEN_TARGET_TYPES, AwsSource, GcpSource, ProviderConfig, SecretRef, VaultSource, provider_kind

if TYPE_CHECKING:
    from .providers.aws_events import SqsQueue
    from .providers.gcp_events import PubsubSubscription
    from .stores import ChangeEvents

__all__ = ["CredentialsError", "ProviderPool"]


class CredentialsError(AccessDenied):
    """The credentials a source names cannot be read or are incomplete."""


@dataclass(frozen=True)
class _Credentials:
    resource_version: str
    values: dict[str, bytes]

    def __repr__(self) -> str:
        return f"_Credentials(<{len(self.values)} keys>)"


def _read_credentials(core: Any, ref: SecretRef, field: str) -> _Credentials:
    name, namespace = ref.name, ref.namespace
    try:
        secret = secrets.read(core, namespace, name)
    except ApiException as e:
        if e.status == 403:
            raise CredentialsError(f"{field}: the operator may not read Secret {name!r}") from None
        raise Unavailable(f"{field}: reading Secret {name!r} failed with HTTP {e.status}") from None
    if secret is None:
        raise CredentialsError(f"{field}: Secret {name!r} not found in namespace {namespace!r}")
    if secret.type in FORBIDDEN_TARGET_TYPES:
        # A token the cluster minted for a ServiceAccount is not a provider credential; sending it
        # to a provider would hand that ServiceAccount's Kubernetes rights to whoever runs it.
        raise CredentialsError(f"{field}: Secret {name!r} is of type {secret.type}, which is never sent to a provider")
    return _Credentials(secret.metadata.resource_version or "", secrets.live_data(secret))


def _need(creds: _Credentials, key: str, field: str, name: str) -> str:
    if key not in creds.values:
        raise CredentialsError(f"{field}: Secret {name!r} has no key {key!r}")
    return creds.values[key].decode("utf-8").strip()


# A client not used for this long belongs to a source that was edited away or deleted.
IDLE_SECONDS = 6 * 3600.0
# The idle sweep runs at most this often, not on every get (an O(clients) scan per sync).
SWEEP_SECONDS = 60.0
# A credentials Secret read is reused this long, so that a store's Secret is read once in a while,
# not once per sync; the store watch (which reads them as often) drops it early when it rotates.
CREDENTIALS_TTL_SECONDS = 20.0
BATCH_SIZE = {"aws": 20}  # references one provider call can read (AWS BatchGetSecretValue)
# Longer than any provider call takes (timeouts are seconds), so a retired client is idle.
RETIRED_GRACE_SECONDS = 120.0
PoolKey = tuple[str, object]


def _ambient_refused(namespace: str, field: str) -> AccessDenied:
    return AccessDenied(
        f"{field}: the operator's own (ambient) credentials may not be used from namespace {namespace!r}; "
        "name credentialsSecretRef or a serviceAccountName, or have the operator allow-list the namespace")


class ProviderPool:
    """Provider clients keyed by identity; thread-safe.

    The key is the namespace and the source's settings (which include the ServiceAccount, role
    and audience); a rotated credentials or CA Secret gives a new client. Tokens and logins live
    inside the client, so they are reused for as long as it is.
    """

    def __init__(self, core: Any, *, timeout: float = 10.0,
                 ambient_namespaces: frozenset[str] = frozenset(), limits: Limits | None = None) -> None:
        self._core = core
        self._timeout = timeout
        self._ambient = ambient_namespaces
        self._limiters = Limiters(limits or Limits(max_wait=timeout))
        self._lock = threading.Lock()
        # (namespace, source settings) -> (versions of the Secrets read, client)
        self._clients: dict[PoolKey, tuple[tuple[str | None, ...], SharedProvider]] = {}
        self._credentials: dict[tuple[str, str], tuple[float, _Credentials]] = {}
        self._swept = time.monotonic()
        self._last_used: dict[PoolKey, float] = {}
        # One build at a time per key: concurrent misses (many BotSecrets of one store at start-up)
        # wait for the first build instead of each logging in and minting tokens of their own.
        self._building: dict[PoolKey, threading.Lock] = {}
        # Clients replaced after a rotation, closed once no cycle can still be using them.
        self._retired: list[tuple[float, SharedProvider]] = []

    def ambient_allowed(self, namespace: str) -> bool:
        return "*" in self._ambient or namespace in self._ambient

    def forget_credentials(self, refs: list[SecretRef]) -> None:
        """The store watch saw these Secrets change: the next get reads them again."""
        with self._lock:
            for ref in refs:
                self._credentials.pop((ref.namespace, ref.name), None)

    def _credentials_of(self, ref: SecretRef, field: str) -> _Credentials:
        now = time.monotonic()
        with self._lock:
            kept = self._credentials.get((ref.namespace, ref.name))
        if kept is not None and now - kept[0] < CREDENTIALS_TTL_SECONDS:
            return kept[1]
        creds = _read_credentials(self._core, ref, field)  # errors are not kept: the next get reads again
        with self._lock:
            self._credentials[(ref.namespace, ref.name)] = (now, creds)
        return creds

    def get(self, namespace: str, provider: ProviderConfig, field: str) -> SharedProvider:
        """The client for ``provider`` (a store's settings) acting for BotSecrets of ``namespace``:
        ServiceAccount tokens are minted there, and ambient credentials are allowed by it."""
        conf = provider
        creds = ca = None
        if conf.credentials_secret:
            creds = self._credentials_of(conf.credentials_secret, f"{field}.credentialsSecretRef")
        if isinstance(conf, VaultSource) and conf.ca_secret:
            ca = self._credentials_of(conf.ca_secret, f"{field}.caSecretRef")
        key: PoolKey = (namespace, conf)
        versions = (creds.resource_version if creds else None, ca.resource_version if ca else None)
        now = time.monotonic()
        if now - self._swept > SWEEP_SECONDS:
            self._swept = now
            self._drop(lambda k: now - self._last_used.get(k, now) > IDLE_SECONDS)
        with self._lock:
            self._last_used[key] = now
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                cached = self._clients.get(key)
            if cached is not None and cached[0] == versions:
                return cached[1]
            kind = provider_kind(conf)
            client = SharedProvider(MeteredProvider(self._build(namespace, conf, creds, ca, field), kind),
                                    batch_size=BATCH_SIZE.get(kind, 1), limiter=self._limiters.for_provider(conf),
                                    wait_seconds=3 * self._timeout + GATHER_SECONDS)
            with self._lock:
                replaced = self._clients.get(key)
                self._clients[key] = (versions, client)
                if replaced is not None:
                    # The credentials rotated. Another cycle may be mid-call on the old client.
                    self._retired.append((now, replaced[1]))
        return client

    def _build(self, namespace: str, conf: AwsSource | GcpSource | VaultSource, creds: _Credentials | None,
               ca: _Credentials | None, field: str) -> Provider:
        if isinstance(conf, AwsSource):
            from .providers.aws import AwsProvider

            aws_creds = self._aws_identity(namespace, conf, creds, field)
            if conf.service == "ParameterStore":
                from .providers.aws_ssm import ParameterStoreProvider

                return ParameterStoreProvider(conf, credentials=aws_creds, timeout=self._timeout)
            return AwsProvider(conf, credentials=aws_creds, timeout=self._timeout)
        if isinstance(conf, GcpSource):
            from .providers.gcp import GcpProvider

            return GcpProvider(conf, timeout=self._timeout, **self._gcp_identity(namespace, conf, creds, field))
        return self._build_vault(namespace, conf, creds, ca, field)

    def _gcp_identity(self, namespace: str, conf: GcpSource, creds: _Credentials | None, field: str) -> Any:
        """The Google identity a store's settings name, acting for ``namespace``: the keyword
        arguments (``federation`` or ``credentials_json``) of a GCP client."""
        if conf.federation is not None and conf.service_account_name:
            from .providers.gcp_federation import GcpFederation

            settings = conf.federation
            return {"federation": GcpFederation(
                audience=settings.audience, service_account_email=settings.service_account_email,
                sts_endpoint=settings.sts_endpoint, iam_endpoint=settings.iam_endpoint,
                token=token_source(self._core, namespace, conf.service_account_name, settings.token_audience,
                                   f"{field}.serviceAccountName"))}
        key_json = None
        if creds is not None:
            key_json = creds.values.get("credentials.json")
            if key_json is None:
                name = conf.credentials_secret.name if conf.credentials_secret else ""
                raise CredentialsError(f"{field}.credentialsSecretRef: Secret {name!r} has no key 'credentials.json'")
        elif not (conf.endpoint or "").lower().startswith("http://") and not self.ambient_allowed(namespace):
            # A plain-HTTP endpoint is an emulator reached without credentials, not an identity.
            raise _ambient_refused(namespace, field)
        return {"credentials_json": key_json}

    def _aws_identity(self, namespace: str, conf: AwsSource, creds: _Credentials | None, field: str) -> Any:
        """The AWS identity a store's settings name, acting for ``namespace``."""
        from .providers.aws import AwsCredentials, WebIdentity

        name = conf.credentials_secret.name if conf.credentials_secret else ""
        cred_field = f"{field}.credentialsSecretRef"
        if conf.role_arn and conf.service_account_name:
            return WebIdentity(
                role_arn=conf.role_arn, session_name=_session_name(namespace, conf.service_account_name),
                token=token_source(self._core, namespace, conf.service_account_name, conf.audience,
                                   f"{field}.serviceAccountName"))
        if creds is not None:
            token = creds.values.get("sessionToken")
            return AwsCredentials(
                access_key_id=_need(creds, "accessKeyId", cred_field, name),
                secret_access_key=_need(creds, "secretAccessKey", cred_field, name),
                session_token=token.decode().strip() if token else None)
        if not self.ambient_allowed(namespace):
            raise _ambient_refused(namespace, field)
        return None

    def change_queue(self, namespace: str, conf: AwsSource | GcpSource, events: ChangeEvents,
                     field: str) -> SqsQueue | PubsubSubscription:
        """A reader of a store's change events (its SQS queue or Pub/Sub subscription), acting as
        the store's identity for ``namespace`` (the same rules as its secrets client); the caller
        owns it."""
        creds = self._credentials_of(conf.credentials_secret, f"{field}.credentialsSecretRef") \
            if conf.credentials_secret else None
        if isinstance(conf, GcpSource):
            from .providers.gcp_events import PubsubSubscription

            return PubsubSubscription(conf, events.subscription, timeout=self._timeout,
                                      **self._gcp_identity(namespace, conf, creds, field))
        from .providers.aws_events import SqsQueue

        return SqsQueue(conf, events.queue_url, events.endpoint, timeout=self._timeout,
                        credentials=self._aws_identity(namespace, conf, creds, field))

    def invalidate(self, conf: ProviderConfig, names: Collection[str]) -> int:
        """Drop what the clients of these settings (any namespace) keep of these remote names, so
        the next read asks the provider; answers how many clients had the settings."""
        with self._lock:
            clients = [client for (_, settings), (_, client) in self._clients.items() if settings == conf]
        for client in clients:
            client.invalidate(names)
        return len(clients)

    def _build_vault(self, namespace: str, conf: VaultSource, creds: _Credentials | None,
                     ca: _Credentials | None, field: str) -> Provider:
        from .providers.vault import VaultProvider
        from .providers.vault_auth import VaultLogin, approle_login, kubernetes_login, static_token

        name = conf.credentials_secret.name if conf.credentials_secret else ""
        cred_field = f"{field}.credentialsSecretRef"
        login: VaultLogin
        if conf.auth_role and conf.service_account_name:
            jwt = token_source(self._core, namespace, conf.service_account_name, conf.audience,
                               f"{field}.serviceAccountName")
            login = kubernetes_login(conf.auth_role, conf.auth_mount, jwt)
        elif creds is not None and "token" in creds.values:
            login = static_token(_need(creds, "token", cred_field, name))
        elif creds is not None and "roleId" in creds.values:
            login = approle_login(_need(creds, "roleId", cred_field, name), _need(creds, "secretId", cred_field, name),
                                  conf.approle_mount)
        elif creds is not None:
            raise CredentialsError(f"{cred_field}: Secret {name!r} has neither a 'token' nor 'roleId' and 'secretId'")
        else:
            raise CredentialsError(f"{field}: needs credentialsSecretRef or auth.kubernetes")
        ca_pem = None
        if ca is not None:
            assert conf.ca_secret is not None
            ca_pem = _need(ca, conf.ca_secret.key or "ca.crt", f"{field}.caSecretRef", conf.ca_secret.name)
        return VaultProvider(conf, login=login, ca_pem=ca_pem, timeout=self._timeout)

    def close(self) -> None:
        self._drop(lambda _: True, grace=0.0)

    def _drop(self, predicate: Callable[[PoolKey], bool], grace: float = RETIRED_GRACE_SECONDS) -> None:
        now = time.monotonic()
        with self._lock:
            gone = [k for k in self._clients if predicate(k)]
            dropped = [self._clients.pop(k)[1] for k in gone]
            for k in gone:
                self._last_used.pop(k, None)
                self._building.pop(k, None)
            dropped += [c for since, c in self._retired if now - since >= grace]
            self._retired = [(since, c) for since, c in self._retired if now - since < grace]
        for client in dropped:
            client.close()


def _session_name(namespace: str, service_account: str) -> str:
    # RoleSessionName: 2-64 characters of [\w+=,.@-]; shows in CloudTrail as who read the secret.
    return re.sub(r"[^\w+=,.@-]", "-", f"botsecret.{namespace}.{service_account}")[:64]
