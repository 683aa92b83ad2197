"""One sync of one BotSecret: fetch, assemble, decide, write. No kopf here.

Called from the handler layer with the object's body; answers a :class:`SyncResult` that the
handlers turn into status and events. Every message names keys, sources and remote names, never
values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import secrets
from .assemble import SECRET_SIZE_LIMIT, KeyOrigin, ProviderAnswers, assemble, plan_fetches
from .connect import ProviderPool
from .finding import find_refs, list_finds, listing_failure
from .fingerprint import data_hmac, namespace_key
from .providers.base import Fetched, ProviderError, RemoteRef, Throttled, Unavailable
from .resolve import ResolvedSource, StoreError, StoreLookup, resolve
from .scheduling import Retry
from .spec import BotSecretSpec, InvalidSpec, VaultSource, parse_spec, provider_kind
from .stores import plain_http_addresses
from .templating import TemplateFailed, render
from .values import SecretValue

__all__ = [
    "FORCE_SYNC_ANNOTATION", "SyncContext", "SyncResult", "fetch_answers", "force_requested", "fresh_read",
    "from_synced",
    "keys_synced", "sync",
]

FORCE_SYNC_ANNOTATION = "botsecret.dev/force-sync"

# Reasons an event outside the spec can cure soon: the provider or the apiserver answering again.
_TRANSIENT = frozenset({"ProviderError", "WriteFailed"})
# Reasons a Secret, ServiceAccount, store or remote secret created later can cure: in GitOps
# ordering the BotSecret often lands first. A store's own events wake its BotSecrets too; a change
# of a namespace's labels (which a cluster store may select on) wakes nothing, so retry anyway.
_DEPENDENCY = frozenset({"MissingKeys", "AccessDenied", "StoreNotFound", "StoreNotAllowed", "StoreInvalid"})


@dataclass(frozen=True)
class SyncContext:
    core: Any
    pool: ProviderPool
    stores: StoreLookup
    # The cluster key; every HMAC uses the key derived from it for the BotSecret's namespace.
    hmac_key: bytes = field(repr=False)


@dataclass(frozen=True)
class SyncResult:
    ready: bool
    reason: str
    message: str
    secret_name: str | None = None
    origins: tuple[KeyOrigin, ...] = ()
    data_hmac: str | None = None
    written: bool = False
    changed_keys: tuple[str, ...] = ()
    retry_after: float | None = None
    spec: BotSecretSpec | None = field(default=None, repr=False)
    data: Mapping[str, SecretValue] = field(default_factory=dict, repr=False)
    warnings: tuple[tuple[str, str], ...] = ()
    # A provider said we ask too often: the next try must come later than the refresh, not sooner.
    throttled: bool = False
    # Whether the providers were asked (status.syncedAt moves only then); not for CreatedOnce's
    # cycles that keep the Secret as it is.
    fetched: bool = True
    # What spec.dataFrom[].find entries matched (before any template), for status.found; None
    # when this cycle listed nothing (status keeps what it says).
    found: tuple[KeyOrigin, ...] | None = None

    @property
    def retry(self) -> Retry:
        if self.ready:
            return Retry.NO
        if self.throttled:
            return Retry.THROTTLED
        if self.reason in _TRANSIENT:
            return Retry.TRANSIENT
        if self.reason in _DEPENDENCY:
            return Retry.DEPENDENCY
        return Retry.NO

    @property
    def retryable(self) -> bool:
        return self.retry is not Retry.NO


def keys_synced(count: int, target: str) -> str:
    return f"{count} {'key' if count == 1 else 'keys'} synced to Secret {target!r}"


def fetch_answers(pool: ProviderPool, namespace: str, spec: BotSecretSpec,
                  resolved: Mapping[str, ResolvedSource | ProviderError],
                  extra: Mapping[str, Sequence[RemoteRef]] | None = None, *, fresh: bool = True) -> ProviderAnswers:
    """What each source's provider answers for its references (and ``extra``, what finds listed),
    asked with the credentials its store names; a source that cannot be used answers its error
    for each of its references.

    Unless ``fresh``, a value the same identity read less than half this BotSecret's refresh
    interval ago is taken as it is (see shared_fetch)."""
    answers: dict[str, Mapping[RemoteRef, Fetched | ProviderError]] = {}
    for source_name, refs in plan_fetches(spec, extra).items():
        source = resolved.get(source_name)
        try:
            if source is None:
                raise StoreError("StoreNotFound", f"source {source_name!r} is not in spec.sources")
            if isinstance(source, ProviderError):
                raise source
            field = f"{source.store.kind} {source.store.name!r}: spec.provider.{provider_kind(source.provider)}"
            answers[source_name] = pool.get(namespace, source.provider, field).fetch_shared(
                refs, max_age=spec.refresh_seconds / 2, fresh=fresh)
        except ProviderError as e:
            answers[source_name] = dict.fromkeys(refs, e)
        except Exception as e:  # noqa: BLE001 - a bug in one provider must not stop the others; its text may echo data
            error = Unavailable(f"source {source_name!r}: unexpected {type(e).__name__}")
            answers[source_name] = dict.fromkeys(refs, error)
    return answers


def _warnings(resolved: Mapping[str, ResolvedSource | ProviderError]) -> tuple[tuple[str, str], ...]:
    """What a store allows that weakens transport security, as (reason, message); posted as Warning
    events on writes."""
    found: list[tuple[str, str]] = []
    for name, source in sorted(resolved.items()):
        if isinstance(source, ProviderError):
            continue
        store = f"{source.store.kind} {source.store.name!r}"
        if isinstance(source.provider, VaultSource) and source.provider.insecure_skip_verify:
            found.append(("InsecureTLS", f"source {name!r}: TLS verification is off for {store} (insecureSkipVerify)"))
        plain = plain_http_addresses(source.provider)
        if plain:
            found.append(("InsecurePlainHTTP", f"source {name!r}: {store} sends requests over plain HTTP "
                                               f"({', '.join(plain)}; insecureAllowPlainHTTP)"))
    return tuple(found)


def _failure_message(answers: ProviderAnswers, failure: ProviderError) -> str:
    for source_name, per_ref in answers.items():
        if failure in per_ref.values():
            return f"source {source_name!r}: {failure.message}"
    return failure.message


def sync(ctx: SyncContext, body: Mapping[str, Any]) -> SyncResult:
    meta = body.get("metadata", {})
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    try:
        spec = parse_spec(body.get("spec") or {}, name=name)
    except InvalidSpec as e:
        return SyncResult(False, "InvalidSpec", str(e))
    target_name = spec.target.name
    if spec.refresh_policy == "CreatedOnce" and not force_requested(body):
        try:
            kept = _created_once(ctx, body, spec)
        except ApiException as e:
            return SyncResult(False, "WriteFailed", f"Secret {target_name!r}: HTTP {e.status} {e.reason}",
                              target_name, spec=spec)
        if kept is not None:
            return kept

    resolved = resolve(ctx.stores, namespace, spec.sources)
    listings = list_finds(ctx.pool, namespace, spec, resolved)
    listed_failure = listing_failure(spec, listings)
    if listed_failure is not None:
        # Nothing is read or written: the last good Secret stays, keys and all.
        error, shown = listed_failure
        return SyncResult(False, error.reason, shown, target_name, retry_after=error.retry_after, spec=spec,
                          throttled=isinstance(error, Throttled))
    answers = fetch_answers(ctx.pool, namespace, spec, resolved, find_refs(spec, listings), fresh=fresh_read(body))
    built = assemble(spec, answers, listings)
    if built.failure is not None:
        errors = [e for per_ref in answers.values() for e in per_ref.values() if isinstance(e, ProviderError)]
        retry_after = max((e.retry_after for e in errors if e.retry_after is not None), default=None)
        return SyncResult(False, built.failure.reason, _failure_message(answers, built.failure), target_name,
                          retry_after=retry_after, spec=spec, throttled=any(isinstance(e, Throttled) for e in errors))
    if built.missing_required:
        return SyncResult(False, "MissingKeys", "missing: " + built.explain(built.missing_required), target_name,
                          spec=spec)
    data, origins = dict(built.data), built.origins
    if spec.target.template is not None:
        try:
            data, origins = _templated(spec, data, origins)
        except TemplateFailed as e:
            # The last good Secret stays; only a spec edit can fix a template.
            return SyncResult(False, "TemplateError", str(e), target_name, spec=spec)
    size = sum(len(k.encode()) + v.size for k, v in data.items())
    if size > SECRET_SIZE_LIMIT:
        return SyncResult(False, "DataTooLarge",
                          f"the data is {size} bytes; a Secret holds at most {SECRET_SIZE_LIMIT}",
                          target_name, spec=spec)

    owner = secrets.Owner(name=name, namespace=namespace, uid=meta.get("uid", ""))
    try:
        live = secrets.read(ctx.core, namespace, target_name)
        secrets.check_ownership(live, owner, spec.target)
        before = secrets.live_data(live) if live is not None else {}
        written = secrets.needs_write(live, owner, spec.target, data)
        if written:
            secrets.apply(ctx.core, live, owner, spec.target, data)
    except secrets.TargetConflict as e:
        return SyncResult(False, "TargetConflict", str(e), target_name, spec=spec)
    except ApiException as e:
        return SyncResult(False, "WriteFailed", f"Secret {target_name!r}: HTTP {e.status} {e.reason}",
                          target_name, spec=spec)

    changed = tuple(sorted(k for k, v in data.items() if before.get(k) != v.reveal()))
    message = keys_synced(len(data), target_name)
    if built.missing:
        message += "; optional keys missing: " + built.explain(built.missing)
    return SyncResult(
        True, "Synced", message, target_name, origins=origins,
        data_hmac=data_hmac(namespace_key(ctx.hmac_key, namespace), data), written=written,
        changed_keys=changed, spec=spec, data=data, warnings=_warnings(resolved),
        found=tuple(o for o in built.origins if o.found_by is not None),
    )


def fresh_read(body: Mapping[str, Any]) -> bool:
    """Whether this sync must read every remote secret afresh: a force-sync asks for it, and a spec
    edit (a generation not yet observed) means the user wants what the providers hold now. A new
    BotSecret, a refresh or a retry may take what another BotSecret read moments before."""
    observed = (body.get("status") or {}).get("observedGeneration")
    generation = (body.get("metadata") or {}).get("generation")
    return force_requested(body) or (observed is not None and observed != generation)


def force_requested(body: Mapping[str, Any]) -> bool:
    """Whether the BotSecret carries a force-sync value that no cycle has acted on yet."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(FORCE_SYNC_ANNOTATION)
    return value is not None and value != (body.get("status") or {}).get("forceSyncHandled")


def _created_once(ctx: SyncContext, body: Mapping[str, Any], spec: BotSecretSpec) -> SyncResult | None:
    """refreshPolicy CreatedOnce: once the Secret holds what the last sync wrote (every key status
    lists), it is never written again and no provider is asked. ``None``: sync as usual (the first
    time, after the Secret or one of its keys was deleted)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    listed = [k for k in status.get("keys") or [] if k.get("key")]
    if not listed:
        return None
    live = secrets.read(ctx.core, meta.get("namespace", ""), spec.target.name)
    if live is None:
        return None
    labels = live.metadata.labels or {}
    if spec.target.creation_policy != "Merge" and labels.get(secrets.OWNER_LABEL) != meta.get("name"):
        return None  # not ours (any more): the usual path reports the conflict
    stored = secrets.live_data(live)
    if any(k["key"] not in stored for k in listed):
        return None
    data = {k["key"]: SecretValue(stored[k["key"]]) for k in listed}
    origins = tuple(KeyOrigin(k["key"], str(k.get("source", "")), str(k.get("remoteName", "")),
                              str(k.get("version", "")), template=bool(k.get("template"))) for k in listed)
    return SyncResult(
        True, "Synced", f"{keys_synced(len(data), spec.target.name)}; kept as created (refreshPolicy CreatedOnce)",
        spec.target.name, origins=origins, spec=spec, data=data, fetched=False,
        data_hmac=data_hmac(namespace_key(ctx.hmac_key, meta.get("namespace", "")), data))


def _templated(spec: BotSecretSpec, data: dict[str, SecretValue], origins: tuple[KeyOrigin, ...]
               ) -> tuple[dict[str, SecretValue], tuple[KeyOrigin, ...]]:
    assert spec.target.template is not None
    rendered = render(spec.target.template, data)
    kept = [o for o in origins if o.key in rendered and o.key not in spec.target.template.data]
    made = [KeyOrigin(k, "", "", "", template=True) for k in spec.target.template.data]
    return rendered, tuple(sorted([*kept, *made], key=lambda o: o.key))


def from_synced(ctx: SyncContext, body: Mapping[str, Any]) -> SyncResult | None:
    """The last successful sync, read back from the Secret instead of the providers.

    For the cycles that only follow a rollout or wait out a debounce: they need the data the
    workloads consume, not a fresh fetch. ``None`` unless the Secret still holds exactly what
    status says was synced (its keyed HMAC matches); the caller then runs a full sync.
    """
    meta, status = body.get("metadata", {}), body.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if not ready or ready.get("status") != "True" or not status.get("dataHMAC"):
        return None
    try:
        spec = parse_spec(body.get("spec") or {}, name=meta.get("name", ""))
    except InvalidSpec:
        return None
    try:
        live = secrets.read(ctx.core, meta.get("namespace", ""), spec.target.name)
    except ApiException:
        return None
    if live is None:
        return None
    keys = [k.get("key", "") for k in status.get("keys") or []]
    stored = secrets.live_data(live)
    data = {k: SecretValue(stored[k]) for k in keys if k in stored}
    key = namespace_key(ctx.hmac_key, meta.get("namespace", ""))
    if len(data) != len(keys) or data_hmac(key, data) != status["dataHMAC"]:
        return None
    return SyncResult(True, str(ready.get("reason", "Synced")), str(ready.get("message", "")), spec.target.name,
                      data_hmac=status["dataHMAC"], spec=spec, data=data)
