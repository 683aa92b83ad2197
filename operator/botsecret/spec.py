"""The BotSecret spec as typed, immutable values, parsed from the custom resource.

The apiserver validates most of this through the CRD schema and CEL rules; parsing checks again
because an operator must not trust that every object went through the current schema. Every
error names the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .remote import RemoteRef

if TYPE_CHECKING:
    from .find_spec import FindItem

__all__ = [
    "APPS_V1",
    "BUILTIN_WORKLOAD_KINDS",
    "STORE_KINDS",
    "AwsSource",
    "BotSecretSpec",
    "DataFromItem",
    "DataItem",
    "GcpFederationSettings",
    "GcpSource",
    "InvalidSpec",
    "RolloutPolicy",
    "RolloutTarget",
    "SecretRef",
    "Source",
    "StoreKind",
    "StoreRef",
    "Target",
    "TargetTemplate",
    "VaultSource",
    "object_name",
    "parse_duration",
    "parse_spec",
    "provider_kind",
    "valid_secret_key",
]

GROUP = "botsecret.dev"
DEFAULT_REFRESH_SECONDS = 3600.0
MIN_REFRESH_SECONDS = 5.0
MAX_REFRESH_SECONDS = 7 * 24 * 3600.0
# The union of AWS names and ARNs, Google ids and full names, and Vault paths; each provider
# checks its own rules when it reads.
REMOTE_NAME = re.compile(r"[A-Za-z0-9_+=.@:/-]{1,2048}")
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600.0  # as a Deployment's default progressDeadlineSeconds
MIN_PROGRESS_DEADLINE_SECONDS = 1.0
SECRET_KEY_PATTERN = re.compile(r"[-._a-zA-Z0-9]{1,253}")
# Secret types the cluster fills in itself; a BotSecret must never write one.
FORBIDDEN_TARGET_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})

CreationPolicy = Literal["Owner", "Orphan", "Merge"]
DeletionPolicy = Literal["Retain", "Delete"]
MergePolicy = Literal["Replace", "Merge"]
RefreshPolicy = Literal["Periodic", "OnChange", "CreatedOnce"]
REFRESH_POLICIES = ("Periodic", "OnChange", "CreatedOnce")
RolloutStrategy = Literal["InPlace", "Versioned"]
FailurePolicy = Literal["Rollback", "Hold"]
DEFAULT_KEEP_VERSIONS = 3
# A rollback needs the version before the one rolled out.
MIN_KEEP_VERSIONS = 2
MAX_KEEP_VERSIONS = 20
MAX_RESTARTS_LIMIT = 1000
MAX_TEMPLATE_KEYS = 64
MAX_TEMPLATE_LENGTH = 64 * 1024


def valid_secret_key(key: str) -> bool:
    """What the apiserver accepts as a key of a Secret's data."""
    return bool(SECRET_KEY_PATTERN.fullmatch(key)) and key not in (".", "..") and not key.startswith("..")


class InvalidSpec(ValueError):
    """The spec cannot be acted on. ``field`` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SecretRef:
    """A Secret a store names for its credentials or CA. ``namespace`` is always set: the store's own
    namespace for a BotSecretStore, the one its spec names for a ClusterBotSecretStore."""

    namespace: str
    name: str
    key: str | None = None


@dataclass(frozen=True)
class AwsSource:
    region: str
    # SecretsManager or ParameterStore (Systems Manager parameters).
    service: str = "SecretsManager"
    endpoint: str | None = None
    credentials_secret: SecretRef | None = None
    service_account_name: str | None = None
    role_arn: str | None = None
    audience: str = "sts.amazonaws.com"
    sts_endpoint: str | None = None


@dataclass(frozen=True)
class GcpSource:
    project: str
    location: str | None = None
    endpoint: str | None = None
    credentials_secret: SecretRef | None = None
    # Workload Identity Federation: a token of this ServiceAccount is exchanged at Google's STS.
    service_account_name: str | None = None
    federation: GcpFederationSettings | None = None


@dataclass(frozen=True)
class GcpFederationSettings:
    """``workloadIdentity`` of a GCP store: the pool provider's audience, the audience of the
    ServiceAccount token (the audience by default), an optional Google service account to
    impersonate, and endpoints instead of Google's (tests, private access)."""

    audience: str
    token_audience: str
    service_account_email: str | None = None
    sts_endpoint: str | None = None
    iam_endpoint: str | None = None


@dataclass(frozen=True)
class VaultSource:
    address: str
    mount: str = "secret"
    kv_version: int = 2
    namespace: str | None = None
    ca_bundle: str | None = None
    credentials_secret: SecretRef | None = None
    service_account_name: str | None = None
    auth_role: str | None = None
    auth_mount: str = "kubernetes"
    audience: str = "vault"
    approle_mount: str = "approle"
    ca_secret: SecretRef | None = None
    insecure_skip_verify: bool = False


ProviderConfig = AwsSource | GcpSource | VaultSource


def provider_kind(provider: ProviderConfig) -> str:
    return {AwsSource: "aws", GcpSource: "gcp", VaultSource: "vault"}[type(provider)]


STORE_KINDS = ("BotSecretStore", "ClusterBotSecretStore")
StoreKind = Literal["BotSecretStore", "ClusterBotSecretStore"]


@dataclass(frozen=True)
class StoreRef:
    """A store a BotSecret names. A BotSecretStore is looked up in the BotSecret's own namespace."""

    kind: StoreKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class Source:
    """A named use of a store. The provider settings and the identity live in the store, which
    admins write; a BotSecret only chooses a store by name."""

    name: str
    store: StoreRef


@dataclass(frozen=True)
class DataItem:
    key: str
    source: str
    remote: RemoteRef
    property: str | None = None


@dataclass(frozen=True)
class DataFromItem:
    source: str
    remote: RemoteRef
    # Position in spec.dataFrom, which also holds find entries (kept apart in BotSecretSpec.finds).
    index: int | None = None


@dataclass(frozen=True)
class TargetTemplate:
    """``spec.target.template``: Secret keys rendered from the fetched values. Its type, labels and
    annotations are folded into :class:`Target` when parsing."""

    data: Mapping[str, str]
    # Replace: the Secret holds only the rendered keys (ESO's default); Merge: the fetched keys too.
    merge_policy: MergePolicy = "Replace"


@dataclass(frozen=True)
class Target:
    name: str
    type: str = "Opaque"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    creation_policy: CreationPolicy = "Owner"
    deletion_policy: DeletionPolicy = "Delete"
    template: TargetTemplate | None = None


# Workload kinds restarted without an apiVersion: the apps/v1 ones.
APPS_V1 = "apps/v1"
BUILTIN_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# A kind name and an apiVersion of a named API group (the core group's kinds have no pod template
# to restart: Pods are restarted through what owns them).
WORKLOAD_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")
WORKLOAD_API_VERSION = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?")


@dataclass(frozen=True)
class RolloutTarget:
    """One entry of spec.rollout.targets: a workload of any kind whose pods the operator restarts."""

    kind: str
    name: str | None = None
    match_labels: Mapping[str, str] | None = None
    api_version: str = APPS_V1


@dataclass(frozen=True)
class RolloutPolicy:
    """``spec.rollout.strategy`` and what goes with it. ``InPlace`` writes new data into the target
    Secret and restarts; ``Versioned`` gives each data version an immutable Secret of its own and
    moves the pod templates' references, so a failed rollout can be rolled back."""

    strategy: RolloutStrategy = "InPlace"
    failure_policy: FailurePolicy = "Rollback"
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    # Restarts of one container of a new version's pods that make the rollout failed; None: not judged.
    max_restarts: int | None = None

    @property
    def versioned(self) -> bool:
        return self.strategy == "Versioned"


@dataclass(frozen=True)
class BotSecretSpec:
    sources: tuple[Source, ...]
    data: tuple[DataItem, ...]
    data_from: tuple[DataFromItem, ...]
    target: Target
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    required: tuple[str, ...] | None = None
    rollout_targets: tuple[RolloutTarget, ...] = ()
    debounce_seconds: float = 10.0
    # How long a restart's rollout may take before it counts as failed; None: a Deployment's own
    # progressDeadlineSeconds, DEFAULT_PROGRESS_DEADLINE_SECONDS for other kinds.
    progress_deadline_seconds: float | None = None
    refresh_policy: RefreshPolicy = "Periodic"
    rollout_policy: RolloutPolicy = RolloutPolicy()
    finds: tuple[FindItem, ...] = ()

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str, field_path: str) -> float:
    """Parse a Go-style duration such as ``1h``, ``90s`` or ``1h30m`` into seconds."""
    if not isinstance(text, str) or not text:
        raise InvalidSpec(field_path, "must be a duration such as 30s, 5m or 1h")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        number, unit = float(match.group(1)), match.group(2)
        total += number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
        pos = match.end()
    if pos != len(text):
        raise InvalidSpec(field_path, f"{text!r} is not a duration such as 30s, 5m or 1h")
    return total


def _str(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidSpec(f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidSpec(f"{path}.{key}", "must be a non-empty string")
    return value


def _map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key) or {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{path}.{key}", "must be an object")
    return value


def _list(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise InvalidSpec(f"{path}.{key}", "must be a list")
    return value


# A DNS-1123 subdomain: what names of Secrets, workloads and stores must be.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def object_name(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    """A field that names a Kubernetes object: a DNS-1123 subdomain of at most 253 characters."""
    value = _str(obj, key, path, required=required)
    if value is not None and (len(value) > 253 or not DNS_SUBDOMAIN.fullmatch(value)):
        raise InvalidSpec(f"{path}.{key}", f"{value!r} is not a valid object name (lower case letters, digits, "
                                           "'-' and '.', at most 253 characters)")
    return value


def _parse_source(raw: Any, index: int) -> Source:
    path = f"spec.sources[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, "must be an object")
    name = _str(raw, "name", path, required=True) or ""
    inline = [k for k in ("aws", "gcp", "vault") if k in raw]
    if inline:
        raise InvalidSpec(f"{path}.{inline[0]}", "inline provider settings were removed; name a BotSecretStore "
                                                 "or ClusterBotSecretStore in storeRef")
    ref = raw.get("storeRef")
    if not isinstance(ref, Mapping):
        raise InvalidSpec(f"{path}.storeRef", "is required: the store to read from")
    kind = ref.get("kind", "BotSecretStore")
    if kind not in STORE_KINDS:
        raise InvalidSpec(f"{path}.storeRef.kind", "must be BotSecretStore or ClusterBotSecretStore")
    store_name = object_name(ref, "name", f"{path}.storeRef", required=True) or ""
    return Source(name=name, store=StoreRef(kind=kind, name=store_name))


def _parse_remote_ref(raw: Mapping[str, Any], path: str) -> tuple[RemoteRef, str | None]:
    ref = raw.get("remoteRef")
    if not isinstance(ref, Mapping):
        raise InvalidSpec(f"{path}.remoteRef", "is required")
    rpath = f"{path}.remoteRef"
    name = _str(ref, "name", rpath, required=True) or ""
    segments = name.removeprefix("/").split("/")  # Parameter Store hierarchies start with '/'
    if not REMOTE_NAME.fullmatch(name) or any(part in ("", ".", "..") for part in segments):
        raise InvalidSpec(f"{rpath}.name", f"{name!r} is not a remote secret name (letters, digits and _+=.@:/-, "
                                           "no empty, '.' or '..' path segment after an optional leading '/')")
    version = ref.get("version")
    if version is not None:
        version = str(version)
    return RemoteRef(name=name, version=version), _str(ref, "property", rpath)


def _resolve_source(raw: Mapping[str, Any], path: str, names: list[str]) -> str:
    source = _str(raw, "source", path)
    if source is None:
        if len(names) != 1:
            raise InvalidSpec(f"{path}.source", "is required when spec.sources has more than one entry")
        return names[0]
    if source not in names:
        raise InvalidSpec(f"{path}.source", f"names no entry of spec.sources ({source!r})")
    return source


def _parse_target(raw: Mapping[str, Any], default_name: str) -> Target:
    path = "spec.target"
    creation = raw.get("creationPolicy", "Owner")
    if creation not in ("Owner", "Orphan", "Merge"):
        raise InvalidSpec(f"{path}.creationPolicy", "must be Owner, Orphan or Merge")
    deletion = raw.get("deletionPolicy", "Delete" if creation == "Owner" else "Retain")
    if deletion not in ("Retain", "Delete"):
        raise InvalidSpec(f"{path}.deletionPolicy", "must be Retain or Delete")
    secret_type = _str(raw, "type", path) or "Opaque"
    if secret_type in FORBIDDEN_TARGET_TYPES:
        raise InvalidSpec(f"{path}.type", f"{secret_type} Secrets are filled in by the cluster itself")
    labels = {str(k): str(v) for k, v in _map(raw, "labels", path).items()}
    annotations = {str(k): str(v) for k, v in _map(raw, "annotations", path).items()}
    template = None
    if raw.get("template") is not None:
        template, template_type = _parse_template(raw["template"], f"{path}.template")
        if template_type is not None:
            # The schema defaults target.type to Opaque, so only another explicit type conflicts.
            if secret_type not in ("Opaque", template_type):
                raise InvalidSpec(f"{path}.template.type", f"is {template_type} but {path}.type is {secret_type}; "
                                                           "set one of them")
            secret_type = template_type
        tpl = _map(raw, "template", path)
        labels.update({str(k): str(v) for k, v in _map(tpl, "labels", f"{path}.template").items()})
        annotations.update({str(k): str(v) for k, v in _map(tpl, "annotations", f"{path}.template").items()})
    return Target(
        name=object_name(raw, "name", path) or default_name,
        type=secret_type,
        labels=labels,
        annotations=annotations,
        creation_policy=creation,
        deletion_policy=deletion,
        template=template,
    )


def _parse_template(raw: Any, path: str) -> tuple[TargetTemplate, str | None]:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, "must be an object")
    merge = raw.get("mergePolicy", "Replace")
    if merge not in ("Replace", "Merge"):
        raise InvalidSpec(f"{path}.mergePolicy", "must be Replace or Merge")
    secret_type = _str(raw, "type", path)
    if secret_type in FORBIDDEN_TARGET_TYPES:
        raise InvalidSpec(f"{path}.type", f"{secret_type} Secrets are filled in by the cluster itself")
    data = _map(raw, "data", path)
    if not data:
        raise InvalidSpec(f"{path}.data", "must name at least one key to render")
    if len(data) > MAX_TEMPLATE_KEYS:
        raise InvalidSpec(f"{path}.data", f"at most {MAX_TEMPLATE_KEYS} keys")
    rendered: dict[str, str] = {}
    for key, text in data.items():
        if not isinstance(key, str) or not valid_secret_key(key):
            raise InvalidSpec(f"{path}.data", f"{key!r} is not a valid Secret key")
        if not isinstance(text, str):
            raise InvalidSpec(f"{path}.data[{key}]", "must be a string (the template text)")
        if len(text) > MAX_TEMPLATE_LENGTH:
            raise InvalidSpec(f"{path}.data[{key}]", f"at most {MAX_TEMPLATE_LENGTH} characters")
        rendered[key] = text
    return TargetTemplate(data=rendered, merge_policy=merge), secret_type


def _bounded_int(raw: Mapping[str, Any], key: str, path: str, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSpec(f"{path}.{key}", f"must be a whole number from {low} to {high}")
    return value


def _parse_rollout_policy(raw: Mapping[str, Any]) -> RolloutPolicy:
    path = "spec.rollout"
    strategy = raw.get("strategy", "InPlace")
    if strategy not in ("InPlace", "Versioned"):
        raise InvalidSpec(f"{path}.strategy", "must be InPlace or Versioned")
    failure = raw.get("failurePolicy", "Rollback")
    if failure not in ("Rollback", "Hold"):
        raise InvalidSpec(f"{path}.failurePolicy", "must be Rollback or Hold")
    keep = _bounded_int(raw, "keepVersions", path, MIN_KEEP_VERSIONS, MAX_KEEP_VERSIONS)
    return RolloutPolicy(strategy=strategy, failure_policy=failure,
                         keep_versions=DEFAULT_KEEP_VERSIONS if keep is None else keep,
                         max_restarts=_bounded_int(raw, "maxRestarts", path, 1, MAX_RESTARTS_LIMIT))


def _parse_target_kind(item: Mapping[str, Any], path: str) -> tuple[str, str]:
    """A rollout target's kind and apiVersion: apps/v1 for the built-in kinds, required otherwise."""
    kind = item.get("kind")
    if not isinstance(kind, str) or not WORKLOAD_KIND.fullmatch(kind):
        raise InvalidSpec(f"{path}.kind", "must be a kind name such as Deployment, StatefulSet, DaemonSet or Rollout")
    api_version = item.get("apiVersion")
    if api_version is None:
        if kind not in BUILTIN_WORKLOAD_KINDS:
            raise InvalidSpec(f"{path}.apiVersion", "is required for kinds other than Deployment, StatefulSet and "
                                                    "DaemonSet (argoproj.io/v1alpha1 for an Argo Rollout)")
        return kind, APPS_V1
    if not isinstance(api_version, str) or not WORKLOAD_API_VERSION.fullmatch(api_version):
        raise InvalidSpec(f"{path}.apiVersion", "must be group/version, such as argoproj.io/v1alpha1")
    if kind in BUILTIN_WORKLOAD_KINDS and api_version != APPS_V1:
        raise InvalidSpec(f"{path}.apiVersion", f"must be apps/v1 for kind {kind}")
    return kind, api_version


def _parse_rollout(raw: Mapping[str, Any]) -> tuple[tuple[RolloutTarget, ...], float, float | None]:
    path = "spec.rollout"
    targets: list[RolloutTarget] = []
    for i, item in enumerate(_list(raw, "targets", path)):
        tpath = f"{path}.targets[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSpec(tpath, "must be an object")
        kind, api_version = _parse_target_kind(item, tpath)
        name = _str(item, "name", tpath)
        selector = item.get("selector")
        match_labels = None
        if selector is not None and not isinstance(selector, Mapping):
            raise InvalidSpec(f"{tpath}.selector", "must be an object with matchLabels")
        if selector is not None:
            match_labels = {str(k): str(v) for k, v in _map(selector, "matchLabels", f"{tpath}.selector").items()}
        if (name is None) == (match_labels is None):
            raise InvalidSpec(tpath, "must set exactly one of name, selector")
        targets.append(RolloutTarget(kind=kind, name=name, match_labels=match_labels, api_version=api_version))
    debounce = parse_duration(raw["debounce"], f"{path}.debounce") if "debounce" in raw else 10.0
    deadline = None
    if raw.get("progressDeadline") is not None:
        deadline = parse_duration(raw["progressDeadline"], f"{path}.progressDeadline")
        if deadline < MIN_PROGRESS_DEADLINE_SECONDS:
            raise InvalidSpec(f"{path}.progressDeadline", "must be at least 1s")
    return tuple(targets), debounce, deadline


def parse_spec(spec: Mapping[str, Any], *, name: str) -> BotSecretSpec:
    """Turn ``body['spec']`` of BotSecret ``name`` into a :class:`BotSecretSpec`."""
    sources = tuple(_parse_source(raw, i) for i, raw in enumerate(_list(spec, "sources", "spec")))
    if not sources:
        raise InvalidSpec("spec.sources", "must name at least one source")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise InvalidSpec("spec.sources", "source names must be unique")

    data: list[DataItem] = []
    for i, raw in enumerate(_list(spec, "data", "spec")):
        path = f"spec.data[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidSpec(path, "must be an object")
        key = _str(raw, "key", path, required=True) or ""
        if not valid_secret_key(key):
            raise InvalidSpec(f"{path}.key", f"{key!r} is not a valid Secret key")
        remote, prop = _parse_remote_ref(raw, path)
        data.append(DataItem(key=key, source=_resolve_source(raw, path, names), remote=remote, property=prop))
    keys = [d.key for d in data]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise InvalidSpec("spec.data", f"keys must be unique, repeated: {', '.join(duplicates)}")

    data_from: list[DataFromItem] = []
    finds: list[FindItem] = []
    for i, raw in enumerate(_list(spec, "dataFrom", "spec")):
        path = f"spec.dataFrom[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidSpec(path, "must be an object")
        source = _resolve_source(raw, path, names)
        if raw.get("find") is not None:
            # find_spec builds on this module's helpers, so it is imported when first needed.
            from .find_spec import FindItem, parse_find, parse_rewrites

            if raw.get("remoteRef") is not None:
                raise InvalidSpec(path, "set remoteRef or find, not both")
            finds.append(FindItem(index=i, source=source, query=parse_find(raw["find"], f"{path}.find"),
                                  rewrite=parse_rewrites(raw, path)))
            continue
        if raw.get("rewrite"):
            raise InvalidSpec(f"{path}.rewrite", "applies to find entries only")
        remote, _ = _parse_remote_ref(raw, path)
        data_from.append(DataFromItem(source=source, remote=remote, index=i))
    if not data and not data_from and not finds:
        raise InvalidSpec("spec.data", "spec.data or spec.dataFrom must name at least one remote secret")

    refresh = DEFAULT_REFRESH_SECONDS
    if spec.get("refreshInterval") is not None:
        refresh = parse_duration(spec["refreshInterval"], "spec.refreshInterval")
        if not MIN_REFRESH_SECONDS <= refresh <= MAX_REFRESH_SECONDS:
            raise InvalidSpec("spec.refreshInterval", "must be between 5s and 168h")

    required_raw = spec.get("required")
    required: tuple[str, ...] | None = None
    if required_raw is not None:
        if not isinstance(required_raw, list) or not all(isinstance(k, str) for k in required_raw):
            raise InvalidSpec("spec.required", "must be a list of key names")
        required = tuple(required_raw)

    refresh_policy = spec.get("refreshPolicy", "Periodic")
    if refresh_policy not in REFRESH_POLICIES:
        raise InvalidSpec("spec.refreshPolicy", "must be Periodic, OnChange or CreatedOnce")

    rollout_targets, debounce, progress_deadline = _parse_rollout(_map(spec, "rollout", "spec"))
    rollout_policy = _parse_rollout_policy(_map(spec, "rollout", "spec"))
    return BotSecretSpec(
        sources=sources,
        data=tuple(data),
        data_from=tuple(data_from),
        target=_parse_target(_map(spec, "target", "spec"), name),
        refresh_seconds=refresh,
        required=required,
        rollout_targets=rollout_targets,
        debounce_seconds=debounce,
        progress_deadline_seconds=progress_deadline,
        refresh_policy=refresh_policy,
        rollout_policy=rollout_policy,
        finds=tuple(finds),
    )

