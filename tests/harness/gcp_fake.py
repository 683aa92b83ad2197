"""An in-process Google Secret Manager: the real gRPC API, served from memory.

Google publishes no Secret Manager emulator, so this serves
``google.cloud.secretmanager.v1.SecretManagerService`` with the message classes shipped in
``google-cloud-secret-manager``. The official client talks to it over an insecure channel exactly
as it talks to Google, so a test that passes here exercises the real client code paths: request
encoding, pagers, error mapping.

Semantics follow the real API where tests can observe them: versions are numbered from 1,
``latest`` is the most recently created version whatever its state (accessing it while it is
disabled fails), accessing a disabled or destroyed version is FAILED_PRECONDITION, payloads carry
``data_crc32c``, and a checksum supplied on AddSecretVersion is verified.

Failure injection: set :attr:`GcpSecretManagerFake.outage` to a status code to fail every RPC
while it is set, :meth:`GcpSecretManagerFake.fail_next` to fail the next few,
:meth:`GcpSecretManagerFake.throttle` to answer every RPC on one project's resources as Google's
quota system does (RESOURCE_EXHAUSTED with an ErrorInfo ``RATE_LIMIT_EXCEEDED`` and a
``google.rpc.RetryInfo`` delay, in the ``grpc-status-details-bin`` trailer),
:attr:`GcpSecretManagerFake.latency` to make every RPC slow, and
:attr:`GcpSecretManagerFake.corrupt_checksums` to send payloads whose ``data_crc32c`` is wrong.
:attr:`GcpSecretManagerFake.calls` counts RPCs by method name; :meth:`GcpSecretManagerFake.arrivals`
lists them with their time and the resource they name.

Transport and identity: by default plaintext gRPC without credentials, as an emulator is
reached. Given a server certificate (``tls``) it serves TLS only; given a :class:`GoogleAuth`
(``auth``) every RPC must carry ``authorization: Bearer <token>`` metadata that Google would
accept (an access token from its token endpoint or a self-signed JWT of a live service-account
key), or it is answered UNAUTHENTICATED, as Google answers.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NoReturn

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import SecretManagerServiceClient, types
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from google.protobuf import any_pb2, duration_pb2, empty_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from .gcp_auth import GoogleAuth
from .pubsub_fake import PubsubFake

__all__ = ["SERVICE", "Arrival", "GcpSecretManagerFake"]

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

_PARENT = r"projects/(?P<project>[^/]+)(?:/locations/(?P<location>[^/]+))?"
_PARENT_RE = re.compile(rf"^{_PARENT}$")
_SECRET_RE = re.compile(rf"^(?P<secret>{_PARENT}/secrets/(?P<secret_id>[^/]+))$")
_VERSION_RE = re.compile(rf"^(?P<secret>{_PARENT}/secrets/(?P<secret_id>[^/]+))/versions/(?P<version>[^/]+)$")
_SECRET_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")

State = types.SecretVersion.State
_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_NOT_FOUND = grpc.StatusCode.NOT_FOUND
_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() when the RPC reached the fake
    method: str
    resource: str  # the request's name (or parent)
    throttled: bool


@dataclass
class _Version:
    number: int
    data: bytes | None
    state: Any
    create_time: timestamp_pb2.Timestamp
    destroy_time: timestamp_pb2.Timestamp | None = None
    client_checksum: bool = False


@dataclass
class _Secret:
    message: types.Secret
    versions: list[_Version] = field(default_factory=list)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # abort raises; this keeps type checkers honest


class GcpSecretManagerFake:
    """Stateful, thread-safe Secret Manager on 127.0.0.1 with a free port."""

    def __init__(self, *, workers: int = 16, tls: tuple[bytes, bytes] | None = None,
                 auth: GoogleAuth | None = None) -> None:
        """``tls``: the server's (certificate chain, private key) in PEM."""
        self.port = 0
        self.tls = tls
        self.auth = auth
        self.calls: Counter[str] = Counter()
        # The filter of every ListSecrets request, in order ("" for none).
        self.list_filters: list[str] = []
        self.outage: grpc.StatusCode | None = None
        self.latency: float = 0.0
        # Makes AccessSecretVersion send a wrong data_crc32c, as a corrupting proxy would.
        self.corrupt_checksums = False
        self._workers = workers
        self._lock = threading.RLock()
        self._secrets: dict[str, _Secret] = {}
        self._failures: list[tuple[grpc.StatusCode, str | None]] = []
        self._throttled: dict[str, float] = {}  # project -> RetryInfo delay in seconds
        self._arrivals: list[Arrival] = []
        self._server: grpc.Server | None = None
        # Pub/Sub's Subscriber on the same port: a store's endpoint serves every API it reads.
        self.pubsub = PubsubFake(auth)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint a GCP source names: ``http://`` means plaintext to the provider."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """The gRPC target, for ``grpc.insecure_channel`` (or a secure one with ``tls``)."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        pool = futures.ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="gcp-fake")
        server = grpc.server(pool)
        server.add_generic_rpc_handlers((self._handler(), self.pubsub.handler()))
        if self.tls:
            chain, key = self.tls
            self.port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, chain)]))
        else:
            self.port = server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("gcp fake: could not bind 127.0.0.1")
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None

    def client(self) -> SecretManagerServiceClient:
        """The official sync client, reaching this fake over an insecure channel (no ``tls``)."""
        channel = grpc.insecure_channel(self.target)
        return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))

    # -- test controls -----------------------------------------------------------------------

    def fail_next(self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, count: int = 1,
                  *, method: str | None = None) -> None:
        """Fail the next ``count`` RPCs (of ``method`` only, when given) with ``code``."""
        with self._lock:
            self._failures.extend([(code, method)] * count)

    def throttle(self, project: str, retry_delay: float | None) -> None:
        """Answer every RPC on ``projects/<project>/`` with Google's per-project quota error and a
        RetryInfo of ``retry_delay`` seconds; ``None`` lifts it."""
        with self._lock:
            if retry_delay is None:
                self._throttled.pop(project, None)
            else:
                self._throttled[project] = retry_delay

    def arrivals(self, *, resource_prefix: str = "", method: str | None = None) -> list[Arrival]:
        with self._lock:
            return [a for a in self._arrivals
                    if a.resource.startswith(resource_prefix) and (method is None or a.method == method)]

    def reset_failures(self) -> None:
        """Forget injected failures (throttled projects too), keeping the secrets."""
        with self._lock:
            self._failures.clear()
            self._throttled.clear()
            self.outage = None

    def reset(self) -> None:
        """Forget every secret, injected failure and counter."""
        with self._lock:
            self._secrets.clear()
            self._failures.clear()
            self.calls.clear()
            self._throttled.clear()
            self._arrivals.clear()
            self.list_filters.clear()
            self.outage = None
            self.latency = 0.0
            self.corrupt_checksums = False

    def put(self, project: str, secret_id: str, data: bytes, *, location: str | None = None,
            labels: dict[str, str] | None = None) -> str:
        """Seed a value without going through gRPC; creates the secret if needed (with ``labels``).

        Returns the new version's full name.
        """
        parent = f"projects/{project}" + (f"/locations/{location}" if location else "")
        name = f"{parent}/secrets/{secret_id}"
        with self._lock:
            if name not in self._secrets:
                replication = None if location else types.Replication(automatic=types.Replication.Automatic())
                message = types.Secret(name=name, replication=replication, create_time=_now(), labels=labels or {})
                self._secrets[name] = _Secret(message)
            return self._add_version(self._secrets[name], data, client_checksum=False).name

    def set_state(self, version_name: str, state: str) -> None:
        """Set a version to ``ENABLED``, ``DISABLED`` or ``DESTROYED`` without going through gRPC."""
        with self._lock:
            _, version = self._lookup_version_or_raise(version_name)
            version.state = getattr(State, state)
            if version.state == State.DESTROYED:
                version.data, version.destroy_time = None, _now()

    # -- wiring ------------------------------------------------------------------------------

    def _handler(self) -> grpc.GenericRpcHandler:
        def unary(method: str, fn: Callable[[Any, grpc.ServicerContext], Any], request: Any,
                  serialize: Callable[[Any], bytes]) -> grpc.RpcMethodHandler:
            def call(req: Any, context: grpc.ServicerContext) -> Any:
                self._before(method, context, str(getattr(req, "name", "") or getattr(req, "parent", "")))
                return fn(req, context)

            return grpc.unary_unary_rpc_method_handler(
                call, request_deserializer=request.deserialize, response_serializer=serialize,
            )

        empty = empty_pb2.Empty.SerializeToString
        secret, version = types.Secret.serialize, types.SecretVersion.serialize
        methods = {
            "CreateSecret": (self._create_secret, types.CreateSecretRequest, secret),
            "GetSecret": (self._get_secret, types.GetSecretRequest, secret),
            "ListSecrets": (self._list_secrets, types.ListSecretsRequest,
                            types.ListSecretsResponse.serialize),
            "DeleteSecret": (self._delete_secret, types.DeleteSecretRequest, empty),
            "AddSecretVersion": (self._add_secret_version, types.AddSecretVersionRequest, version),
            "GetSecretVersion": (self._get_secret_version, types.GetSecretVersionRequest, version),
            "ListSecretVersions": (self._list_secret_versions, types.ListSecretVersionsRequest,
                                   types.ListSecretVersionsResponse.serialize),
            "AccessSecretVersion": (self._access_secret_version, types.AccessSecretVersionRequest,
                                    types.AccessSecretVersionResponse.serialize),
            "DisableSecretVersion": (self._disable, types.DisableSecretVersionRequest, version),
            "EnableSecretVersion": (self._enable, types.EnableSecretVersionRequest, version),
            "DestroySecretVersion": (self._destroy, types.DestroySecretVersionRequest, version),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE, {name: unary(name, fn, req, ser) for name, (fn, req, ser) in methods.items()},
        )

    def _before(self, method: str, context: grpc.ServicerContext, resource: str) -> None:
        if self.auth is not None:
            authorization = dict(context.invocation_metadata()).get("authorization")
            if not self.auth.accepts(str(authorization) if authorization is not None else None):
                with self._lock:
                    self.calls["unauthenticated"] += 1
                _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                       "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                       "login cookie or other valid authentication credential.")
        with self._lock:
            self.calls[method] += 1
            outage, latency = self.outage, self.latency
            project = resource.split("/")[1] if resource.startswith("projects/") else ""
            retry_delay = self._throttled.get(project)
            self._arrivals.append(Arrival(time.monotonic(), method, resource, retry_delay is not None))
            injected = None
            for i, (_code, only) in enumerate(self._failures):
                if only is None or only == method:
                    injected = self._failures.pop(i)[0]
                    break
        # Sleep outside the lock so a slow call does not stall the others.
        if latency:
            time.sleep(latency)
        if retry_delay is not None:
            context.abort_with_status(rpc_status.to_status(_quota_exceeded(project, retry_delay)))
        if outage is not None:
            _abort(context, outage, f"injected outage ({outage.name})")
        if injected is not None:
            _abort(context, injected, f"injected failure ({injected.name})")

    # -- lookups (callers hold the lock) -----------------------------------------------------

    def _lookup_secret(self, name: str, context: grpc.ServicerContext) -> _Secret:
        if not _SECRET_RE.match(name):
            _abort(context, _INVALID, f"Invalid resource field value in the request: {name}")
        secret = self._secrets.get(name)
        if secret is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found.")
        return secret

    def _resolve(self, secret: _Secret, alias: str) -> _Version | None:
        if alias == "latest":
            return secret.versions[-1] if secret.versions else None
        number = secret.message.version_aliases.get(alias) if not alias.isdigit() else int(alias)
        if number is None:
            return None
        return next((v for v in secret.versions if v.number == number), None)

    def _lookup_version(self, name: str, context: grpc.ServicerContext) -> tuple[_Secret, _Version]:
        match = _VERSION_RE.match(name)
        if not match:
            _abort(context, _INVALID, f"Invalid resource field value in the request: {name}")
        secret = self._secrets.get(match["secret"])
        if secret is None or (match["version"] == "latest" and not secret.versions):
            _abort(context, _NOT_FOUND, f"Secret [{match['secret']}] not found or has no versions.")
        version = self._resolve(secret, match["version"])
        if version is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, version

    def _lookup_version_or_raise(self, name: str) -> tuple[_Secret, _Version]:
        match = _VERSION_RE.match(name)
        secret = self._secrets.get(match["secret"]) if match else None
        version = self._resolve(secret, match["version"]) if secret and match else None
        if secret is None or version is None:
            raise KeyError(name)
        return secret, version

    def _add_version(self, secret: _Secret, data: bytes, *, client_checksum: bool) -> types.SecretVersion:
        number = (secret.versions[-1].number if secret.versions else 0) + 1
        version = _Version(number, data, State.ENABLED, _now(), client_checksum=client_checksum)
        secret.versions.append(version)
        return self._version_message(secret, version)

    @staticmethod
    def _version_message(secret: _Secret, version: _Version) -> types.SecretVersion:
        return types.SecretVersion(
            name=f"{secret.message.name}/versions/{version.number}",
            create_time=version.create_time,
            destroy_time=version.destroy_time,
            state=version.state,
            etag=f'"{version.number}-{int(version.state)}"',
            client_specified_payload_checksum=version.client_checksum,
        )

    # -- RPCs --------------------------------------------------------------------------------

    def _create_secret(self, request: types.CreateSecretRequest,
                       context: grpc.ServicerContext) -> types.Secret:
        parent = _PARENT_RE.match(request.parent)
        if not parent:
            _abort(context, _INVALID, f"Invalid resource field value in the request: "
                   f"{request.parent}")
        if not _SECRET_ID_RE.match(request.secret_id):
            _abort(context, _INVALID, "Invalid secret_id: must match [a-zA-Z0-9_-]{1,255}.")
        regional = parent["location"] is not None
        has_replication = "replication" in request.secret
        # Global secrets must say how to replicate; regional ones live in their location only.
        if not regional and not has_replication:
            _abort(context, _INVALID, "Secret.replication must be specified.")
        if regional and has_replication:
            _abort(context, _INVALID, "Regional secrets must not set Secret.replication.")
        name = f"{request.parent}/secrets/{request.secret_id}"
        with self._lock:
            if name in self._secrets:
                _abort(context, grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            message = types.Secret(request.secret)
            message.name, message.create_time, message.etag = name, _now(), '"1"'
            self._secrets[name] = _Secret(message)
            return types.Secret(message)

    def _get_secret(self, request: types.GetSecretRequest, context: grpc.ServicerContext) -> types.Secret:
        with self._lock:
            return types.Secret(self._lookup_secret(request.name, context).message)

    def _list_secrets(self, request: types.ListSecretsRequest,
                      context: grpc.ServicerContext) -> types.ListSecretsResponse:
        if not _PARENT_RE.match(request.parent):
            _abort(context, _INVALID, f"Invalid resource field value in the request: "
                   f"{request.parent}")
        prefix = f"{request.parent}/secrets/"
        try:
            selected = _list_filter(request.filter)
        except ValueError as e:
            _abort(context, _INVALID, f"Invalid filter: {e}")
        with self._lock:
            found = [types.Secret(s.message) for name, s in self._secrets.items()
                     if name.startswith(prefix) and selected(s.message)]
        self.list_filters.append(request.filter)
        page, token = _page(found, request.page_size, request.page_token, context)
        return types.ListSecretsResponse(secrets=page, next_page_token=token, total_size=len(found))

    def _delete_secret(self, request: types.DeleteSecretRequest,
                       context: grpc.ServicerContext) -> empty_pb2.Empty:
        with self._lock:
            secret = self._lookup_secret(request.name, context)
            if request.etag and request.etag != secret.message.etag:
                _abort(context, grpc.StatusCode.ABORTED, "The etag provided does not match the current etag.")
            del self._secrets[request.name]
        return empty_pb2.Empty()

    def _add_secret_version(self, request: types.AddSecretVersionRequest,
                            context: grpc.ServicerContext) -> types.SecretVersion:
        data = bytes(request.payload.data)
        supplied = "data_crc32c" in request.payload
        if supplied and request.payload.data_crc32c != google_crc32c.value(data):
            _abort(context, _INVALID, "Checksum mismatch: data_crc32c does not match data.")
        if len(data) > 64 * 1024:
            _abort(context, _INVALID, "Secret payload data must be at most 65536 bytes.")
        with self._lock:
            secret = self._lookup_secret(request.parent, context)
            return self._add_version(secret, data, client_checksum=supplied)

    def _get_secret_version(self, request: types.GetSecretVersionRequest,
                            context: grpc.ServicerContext) -> types.SecretVersion:
        with self._lock:
            return self._version_message(*self._lookup_version(request.name, context))

    def _list_secret_versions(self, request: types.ListSecretVersionsRequest,
                              context: grpc.ServicerContext) -> types.ListSecretVersionsResponse:
        with self._lock:
            secret = self._lookup_secret(request.parent, context)
            # The real API lists newest first.
            found = [self._version_message(secret, v) for v in reversed(secret.versions)]
        page, token = _page(found, request.page_size, request.page_token, context)
        return types.ListSecretVersionsResponse(versions=page, next_page_token=token, total_size=len(found))

    def _access_secret_version(self, request: types.AccessSecretVersionRequest,
                               context: grpc.ServicerContext) -> types.AccessSecretVersionResponse:
        with self._lock:
            secret, version = self._lookup_version(request.name, context)
            resolved = f"{secret.message.name}/versions/{version.number}"
            if version.state != State.ENABLED or version.data is None:
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                       f"Secret Version [{resolved}] is in {version.state.name} state.")
            data = version.data
        checksum = google_crc32c.value(data) ^ (1 if self.corrupt_checksums else 0)
        return types.AccessSecretVersionResponse(
            name=resolved, payload=types.SecretPayload(data=data, data_crc32c=checksum),
        )

    def _change_state(self, name: str, context: grpc.ServicerContext, state: Any) -> types.SecretVersion:
        with self._lock:
            secret, version = self._lookup_version(name, context)
            if version.state == State.DESTROYED and state != State.DESTROYED:
                resolved = f"{secret.message.name}/versions/{version.number}"
                _abort(context, _PRECONDITION, f"Secret Version [{resolved}] is in DESTROYED state.")
            version.state = state
            if state == State.DESTROYED and version.data is not None:
                version.data, version.destroy_time = None, _now()
            return self._version_message(secret, version)

    def _disable(self, request: types.DisableSecretVersionRequest,
                 context: grpc.ServicerContext) -> types.SecretVersion:
        return self._change_state(request.name, context, State.DISABLED)

    def _enable(self, request: types.EnableSecretVersionRequest,
                context: grpc.ServicerContext) -> types.SecretVersion:
        return self._change_state(request.name, context, State.ENABLED)

    def _destroy(self, request: types.DestroySecretVersionRequest,
                 context: grpc.ServicerContext) -> types.SecretVersion:
        return self._change_state(request.name, context, State.DESTROYED)


def _quota_exceeded(project: str, retry_delay: float) -> status_pb2.Status:
    """What Google answers a project over its Secret Manager quota: the text, ErrorInfo and
    RetryInfo of a real 429 (google.rpc.Status of code RESOURCE_EXHAUSTED)."""
    metric, limit = "secretmanager.googleapis.com/access_requests", "AccessRequestsPerMinutePerProject"
    info, retry = any_pb2.Any(), any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(
        reason="RATE_LIMIT_EXCEEDED", domain="googleapis.com",
        metadata={"service": "secretmanager.googleapis.com", "consumer": f"projects/{project}",
                  "quota_metric": metric, "quota_limit": limit, "quota_location": "global"}))
    seconds = int(retry_delay)
    retry.Pack(error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=seconds, nanos=int((retry_delay - seconds) * 1e9))))
    return status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, details=[info, retry],
        message=f"Quota exceeded for quota metric '{metric}' and limit '{limit}' of service "
                f"'secretmanager.googleapis.com' for consumer 'projects/{project}'.")


# One term of the filter syntax ListSecrets documents, as far as this fake understands it:
# ``name:<text>`` (the resource name contains it), ``labels.<key>=<value>``, ``labels.<key>:<value>``
# and ``labels.<key>:*`` (the label is present); values bare or in double quotes. Terms are joined
# by AND (or a space, which means AND too). Anything else (OR, NOT, parentheses, other fields) is
# refused, so a filter the operator sends that this fake cannot judge fails loudly instead of
# matching everything.
_TERM = re.compile(r'^(?P<field>name|labels\.[a-z0-9_-]+)(?P<op>[:=])(?P<value>"[^"]*"|[^\s"()]+)$')


def _list_filter(text: str) -> Callable[[types.Secret], bool]:
    terms: list[tuple[str, str, str]] = []
    for word in [w for w in re.split(r"\s+AND\s+|\s+", text.strip()) if w]:
        term = _TERM.match(word)
        if not term:
            raise ValueError(f"unsupported term {word!r}")
        value = term["value"][1:-1] if term["value"].startswith('"') else term["value"]
        if term["field"] == "name" and term["op"] != ":":
            raise ValueError("name supports ':' only")
        terms.append((term["field"], term["op"], value))

    def selected(secret: types.Secret) -> bool:
        for field_name, op, value in terms:
            if field_name == "name":
                if value not in secret.name:
                    return False
                continue
            label = field_name.split(".", 1)[1]
            if label not in secret.labels:
                return False
            actual = secret.labels[label]
            if (op == "=" and actual != value) or (op == ":" and value != "*" and value not in actual):
                return False
        return True

    return selected


def _page(items: list[Any], page_size: int, page_token: str,
          context: grpc.ServicerContext) -> tuple[list[Any], str]:
    """One page of ``items``; the token is the offset of the next page, opaque to clients."""
    if page_size < 0:
        _abort(context, _INVALID, "page_size must not be negative.")
    size = min(page_size or 25000, 25000)
    try:
        start = int(page_token) if page_token else 0
    except ValueError:
        _abort(context, _INVALID, "Invalid page_token.")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")
