"""BotSecretStore and ClusterBotSecretStore specs as typed values: the trust boundary.

A store holds one provider's settings and its authentication. Whoever can write a store decides
which identity is used and where credentials are sent; a BotSecret only names a store. Parsing
checks again what the CRD schema checks, because not every stored object went through the
current schema; every error names the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .spec import (
    AwsSource,
    GcpFederationSettings,
    GcpSource,
    InvalidSpec,
    ProviderConfig,
    SecretRef,
    StoreKind,
    VaultSource,
    _map,
    _str,
    object_name,
    parse_duration,
)

AWS_SERVICES = ("SecretsManager", "ParameterStore")

__all__ = ["AWS_SERVICES", "ChangeEvents", "NamespaceCondition", "StoreSpec", "parse_store", "plain_http_addresses"]

DEFAULT_FALLBACK_SECONDS = 3600.0
MIN_FALLBACK_SECONDS, MAX_FALLBACK_SECONDS = 5.0, 7 * 24 * 3600.0
# https://sqs.<region>.amazonaws.com/<account>/<queue> (or a test server's host): the path is
# always the account id and the queue name.
_QUEUE_PATH = re.compile(r"^/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_AWS_SQS_HOST = re.compile(r"^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
# projects/<project id or number>/subscriptions/<name>, as Pub/Sub names subscriptions.
_SUBSCRIPTION = re.compile(r"^projects/[a-z0-9][a-z0-9.:-]{0,127}/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")


@dataclass(frozen=True)
class ChangeEvents:
    """``aws.changeEvents``: an SQS queue fed by EventBridge with Secrets Manager's CloudTrail
    events; ``gcp.changeEvents``: a Pub/Sub subscription of Secret Manager's event notifications.
    Either is read with the store's identity; while it is healthy, BotSecrets that only read
    through such stores poll every ``fallback_seconds`` (or their own interval, if longer)."""

    queue_url: str = ""  # aws
    fallback_seconds: float = DEFAULT_FALLBACK_SECONDS
    subscription: str = ""  # gcp: projects/<p>/subscriptions/<s>

    @property
    def stream(self) -> str:
        """Where the events are read: the queue URL or the subscription's name."""
        return self.queue_url or self.subscription

    @property
    def endpoint(self) -> str:
        """Where the queue is read: the scheme and host of its URL."""
        parts = urlsplit(self.queue_url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class NamespaceCondition:
    """Which namespaces may use a ClusterBotSecretStore: any listed name, or labels that match.
    An empty selector (``namespaceSelector: {}``) matches every namespace, as in Kubernetes."""

    namespaces: frozenset[str] = frozenset()
    match_labels: Mapping[str, str] | None = None

    def admits(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if namespace in self.namespaces:
            return True
        if self.match_labels is None:
            return False
        return all(labels.get(k) == v for k, v in self.match_labels.items())


@dataclass(frozen=True)
class StoreSpec:
    kind: StoreKind
    name: str
    namespace: str | None  # None for a ClusterBotSecretStore
    provider: ProviderConfig
    allow_plain_http: bool = False
    conditions: tuple[NamespaceCondition, ...] = ()
    change_events: ChangeEvents | None = None

    def admits(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.kind == "BotSecretStore":
            return namespace == self.namespace
        return any(c.admits(namespace, labels) for c in self.conditions)

    @property
    def needs_namespace_labels(self) -> bool:
        return any(c.match_labels for c in self.conditions)


def _secret_ref(conf: Mapping[str, Any], key: str, path: str, *, home: str | None,
                default_key: str | None = None) -> SecretRef | None:
    """A Secret a store names. A BotSecretStore's Secrets live in its own namespace (``home``); a
    ClusterBotSecretStore must say which namespace, since it has none of its own."""
    ref = conf.get(key)
    if ref is None:
        return None
    rpath = f"{path}.{key}"
    if not isinstance(ref, Mapping):
        raise InvalidSpec(rpath, "must be an object with a name")
    name = object_name(ref, "name", rpath, required=True) or ""
    namespace = home
    if home is None:
        namespace = _str(ref, "namespace", rpath, required=True)
    elif ref.get("namespace") not in (None, home):
        raise InvalidSpec(f"{rpath}.namespace", "a BotSecretStore reads Secrets of its own namespace only")
    return SecretRef(namespace=namespace or "", name=name, key=_str(ref, "key", rpath) or default_key)


def _aws(conf: Mapping[str, Any], path: str, home: str | None) -> AwsSource:
    service = conf.get("service", "SecretsManager")
    if service not in AWS_SERVICES:
        raise InvalidSpec(f"{path}.service", "must be SecretsManager or ParameterStore")
    provider = AwsSource(
        region=_str(conf, "region", path, required=True) or "",
        service=service,
        endpoint=_str(conf, "endpoint", path),
        credentials_secret=_secret_ref(conf, "credentialsSecretRef", path, home=home),
        service_account_name=object_name(conf, "serviceAccountName", path),
        role_arn=_str(conf, "roleArn", path),
        audience=_str(conf, "audience", path) or "sts.amazonaws.com",
        sts_endpoint=_str(conf, "stsEndpoint", path),
    )
    if (provider.role_arn is None) != (provider.service_account_name is None):
        raise InvalidSpec(path, "roleArn and serviceAccountName go together (web identity)")
    if provider.role_arn and provider.credentials_secret:
        raise InvalidSpec(path, "set either credentialsSecretRef or serviceAccountName with roleArn, not both")
    return provider


def _gcp(conf: Mapping[str, Any], path: str, home: str | None) -> GcpSource:
    federation = None
    if conf.get("workloadIdentity") is not None:
        wpath = f"{path}.workloadIdentity"
        wif = _map(conf, "workloadIdentity", path)
        audience = _str(wif, "audience", wpath, required=True) or ""
        federation = GcpFederationSettings(
            audience=audience, token_audience=_str(wif, "tokenAudience", wpath) or audience,
            service_account_email=_str(wif, "serviceAccountEmail", wpath),
            sts_endpoint=_str(wif, "stsEndpoint", wpath), iam_endpoint=_str(wif, "iamEndpoint", wpath))
        for name, url in (("stsEndpoint", federation.sts_endpoint), ("iamEndpoint", federation.iam_endpoint)):
            if url is not None and not url.startswith(("http://", "https://")):
                raise InvalidSpec(f"{wpath}.{name}", "must start with http:// or https://")
        if federation.service_account_email is not None and "@" not in federation.service_account_email:
            raise InvalidSpec(f"{wpath}.serviceAccountEmail", "must be a service account's email address")
    provider = GcpSource(
        project=_str(conf, "project", path, required=True) or "",
        location=_str(conf, "location", path),
        endpoint=_str(conf, "endpoint", path),
        credentials_secret=_secret_ref(conf, "credentialsSecretRef", path, home=home),
        service_account_name=object_name(conf, "serviceAccountName", path),
        federation=federation,
    )
    if (provider.federation is None) != (provider.service_account_name is None):
        raise InvalidSpec(path, "workloadIdentity and serviceAccountName go together (Workload Identity Federation)")
    if provider.federation and provider.credentials_secret:
        raise InvalidSpec(path, "set either credentialsSecretRef or serviceAccountName with workloadIdentity, not both")
    return provider


def _vault(conf: Mapping[str, Any], path: str, home: str | None) -> VaultSource:
    kv_version = conf.get("kvVersion", 2)
    if type(kv_version) is not int or kv_version not in (1, 2):
        raise InvalidSpec(f"{path}.kvVersion", "must be 1 or 2")
    auth = _map(conf, "auth", path)
    kube = _map(auth, "kubernetes", f"{path}.auth")
    insecure = conf.get("insecureSkipVerify", False)
    if not isinstance(insecure, bool):
        raise InvalidSpec(f"{path}.insecureSkipVerify", "must be true or false")
    address = _str(conf, "address", path, required=True) or ""
    if not address.startswith(("http://", "https://")):
        raise InvalidSpec(f"{path}.address", "must start with http:// or https://")
    provider = VaultSource(
        address=address,
        mount=_str(conf, "mount", path) or "secret",
        kv_version=int(kv_version),
        namespace=_str(conf, "namespace", path),
        ca_bundle=_str(conf, "caBundle", path),
        credentials_secret=_secret_ref(conf, "credentialsSecretRef", path, home=home),
        service_account_name=object_name(conf, "serviceAccountName", path),
        auth_role=_str(kube, "role", f"{path}.auth.kubernetes"),
        auth_mount=_str(kube, "mount", f"{path}.auth.kubernetes") or "kubernetes",
        audience=_str(kube, "audience", f"{path}.auth.kubernetes") or "vault",
        approle_mount=_str(_map(auth, "appRole", f"{path}.auth"), "mount", f"{path}.auth.appRole") or "approle",
        ca_secret=_secret_ref(conf, "caSecretRef", path, home=home, default_key="ca.crt"),
        insecure_skip_verify=insecure,
    )
    if kube and (provider.auth_role is None or provider.service_account_name is None):
        raise InvalidSpec(f"{path}.auth.kubernetes", "needs a role and vault.serviceAccountName")
    if provider.credentials_secret is None and provider.auth_role is None:
        raise InvalidSpec(path, "needs credentialsSecretRef (a token or an AppRole) or auth.kubernetes")
    if provider.ca_bundle and provider.ca_secret:
        raise InvalidSpec(path, "set caBundle or caSecretRef, not both")
    return provider


def _change_events(conf: Mapping[str, Any], base: str, provider: AwsSource | GcpSource, *, cluster: bool,
                   allow_http: bool) -> ChangeEvents | None:
    if conf.get("changeEvents") is None:
        return None
    path = f"{base}.changeEvents"
    block = _map(conf, "changeEvents", base)
    if cluster and provider.credentials_secret is None:
        what = "queue" if isinstance(provider, AwsSource) else "subscription"
        raise InvalidSpec(path, f"a ClusterBotSecretStore reads its {what} with credentialsSecretRef only "
                                "(it has no namespace of its own to act from)")
    if isinstance(provider, GcpSource):
        subscription = _str(block, "subscription", path, required=True) or ""
        if not _SUBSCRIPTION.match(subscription):
            raise InvalidSpec(f"{path}.subscription", "must be a Pub/Sub subscription's name such as "
                                                      "projects/my-project/subscriptions/secret-events")
        return ChangeEvents(subscription=subscription, fallback_seconds=_fallback(block, path))
    if provider.service != "SecretsManager":
        raise InvalidSpec(path, "change events come from Secrets Manager only (service: SecretsManager)")
    url = _str(block, "sqsQueueURL", path, required=True) or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _QUEUE_PATH.match(parts.path) \
            or parts.query or parts.fragment:
        raise InvalidSpec(f"{path}.sqsQueueURL", "must be an SQS queue URL such as "
                                                 "https://sqs.us-east-1.amazonaws.com/123456789012/secret-changes")
    if parts.scheme == "http" and not allow_http:
        raise InvalidSpec(f"{path}.sqsQueueURL", "plain http:// sends credentials unencrypted; use https:// or set "
                                                 "spec.insecureAllowPlainHTTP: true")
    aws_host = _AWS_SQS_HOST.match(parts.hostname)
    if aws_host and aws_host.group(1) != provider.region:
        raise InvalidSpec(f"{path}.sqsQueueURL", f"the queue is in region {aws_host.group(1)!r}, the store in "
                                                 f"{provider.region!r}; they must be the same")
    return ChangeEvents(queue_url=url, fallback_seconds=_fallback(block, path))


def _fallback(block: Mapping[str, Any], path: str) -> float:
    if block.get("fallbackRefreshInterval") is None:
        return DEFAULT_FALLBACK_SECONDS
    fallback = parse_duration(block["fallbackRefreshInterval"], f"{path}.fallbackRefreshInterval")
    if not MIN_FALLBACK_SECONDS <= fallback <= MAX_FALLBACK_SECONDS:
        raise InvalidSpec(f"{path}.fallbackRefreshInterval", "must be between 5s and 168h")
    return fallback


_PARSERS: dict[str, Callable[[Mapping[str, Any], str, str | None], ProviderConfig]] = {
    "aws": _aws, "gcp": _gcp, "vault": _vault}


def plain_http_addresses(provider: ProviderConfig) -> list[str]:
    """The fields of a provider's settings that send requests over plain HTTP."""
    fields = {"endpoint": getattr(provider, "endpoint", None), "stsEndpoint": getattr(provider, "sts_endpoint", None),
              "address": getattr(provider, "address", None)}
    federation = getattr(provider, "federation", None)
    if federation is not None:
        fields["workloadIdentity.stsEndpoint"] = federation.sts_endpoint
        fields["workloadIdentity.iamEndpoint"] = federation.iam_endpoint
    return [name for name, url in fields.items() if isinstance(url, str) and url.lower().startswith("http://")]


def _conditions(spec: Mapping[str, Any]) -> tuple[NamespaceCondition, ...]:
    raw = spec.get("conditions")
    if not isinstance(raw, list) or not raw:
        raise InvalidSpec("spec.conditions", "a ClusterBotSecretStore must say which namespaces may use it "
                                             "(namespaces or namespaceSelector; namespaceSelector: {} for all)")
    conditions = []
    for i, item in enumerate(raw):
        path = f"spec.conditions[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSpec(path, "must be an object")
        names = item.get("namespaces") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidSpec(f"{path}.namespaces", "must be a list of namespace names")
        selector = item.get("namespaceSelector")
        labels: dict[str, str] | None = None
        if selector is not None:
            if not isinstance(selector, Mapping):
                raise InvalidSpec(f"{path}.namespaceSelector", "must be an object with matchLabels")
            labels = {str(k): str(v) for k, v in _map(selector, "matchLabels", f"{path}.namespaceSelector").items()}
        if not names and labels is None:
            raise InvalidSpec(path, "must set namespaces or namespaceSelector")
        conditions.append(NamespaceCondition(frozenset(names), labels))
    return tuple(conditions)


def parse_store(kind: StoreKind, body: Mapping[str, Any]) -> StoreSpec:
    """Turn a store object into a :class:`StoreSpec`; :class:`InvalidSpec` names the bad field."""
    meta = body.get("metadata") or {}
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidSpec("spec", "is required")
    home = meta.get("namespace") if kind == "BotSecretStore" else None
    provider_block = _map(spec, "provider", "spec")
    kinds = [k for k in _PARSERS if provider_block.get(k) is not None]
    if len(kinds) != 1:
        raise InvalidSpec("spec.provider", "must set exactly one of aws, gcp, vault")
    conf = provider_block[kinds[0]]
    if not isinstance(conf, Mapping):
        raise InvalidSpec(f"spec.provider.{kinds[0]}", "must be an object")
    provider = _PARSERS[kinds[0]](conf, f"spec.provider.{kinds[0]}", home)
    allow_http = spec.get("insecureAllowPlainHTTP", False)
    if not isinstance(allow_http, bool):
        raise InvalidSpec("spec.insecureAllowPlainHTTP", "must be true or false")
    plain = plain_http_addresses(provider)
    if plain and not allow_http:
        raise InvalidSpec(f"spec.provider.{kinds[0]}.{plain[0]}",
                          "plain http:// sends credentials and values unencrypted; use https:// or set "
                          "spec.insecureAllowPlainHTTP: true")
    events = None
    if isinstance(provider, AwsSource | GcpSource):
        events = _change_events(conf, f"spec.provider.{kinds[0]}", provider, cluster=kind == "ClusterBotSecretStore",
                                allow_http=allow_http)
    return StoreSpec(
        kind=kind, name=str(meta.get("name", "")), namespace=home, provider=provider, allow_plain_http=allow_http,
        conditions=_conditions(spec) if kind == "ClusterBotSecretStore" else (), change_events=events,
    )
