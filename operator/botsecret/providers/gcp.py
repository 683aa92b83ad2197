"""Google Secret Manager, read through the official client over gRPC.

Endpoint convention (``spec.sources[].gcp.endpoint``):

- unset: Google's endpoint over TLS (the regional ``secretmanager.{location}.rep.googleapis.com``
  when ``location`` is set), authenticated with the service-account key from
  ``credentialsSecretRef`` or, without one, Application Default Credentials;
- ``http://host:port``: plaintext gRPC without credentials, for emulators and tests;
- ``https://host:port`` or ``host:port``: TLS to that host with the same credentials as above.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import google_crc32c
import grpc
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from ..remote import FindQuery
from ..spec import GcpSource
from ..values import SecretValue
from .base import AccessDenied, Fetched, NotFound, ProviderError, RemoteRef, Throttled, TlsError, Unavailable
from .gcp_connect import GoogleIdentity, google_client
from .gcp_federation import GcpFederation

__all__ = ["GcpProvider"]

DEFAULT_ENDPOINT = "secretmanager.googleapis.com"

# The client's gRPC interceptor logs every response, payload included (base64 in the record's
# structured "response" field), whenever this logger is enabled for DEBUG. An operator run with
# debug logging must still never write a value, so the logger is capped at INFO.
_PAYLOAD_LOGGER = "google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc"

_SECRET_ID = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
_FULL_NAME = re.compile(
    r"^(?P<secret>projects/[^/]+(?:/locations/[^/]+)?/secrets/[a-zA-Z0-9_-]{1,255})(?:/versions/(?P<version>[^/]+))?$"
)
# ``latest``, a version number or a version alias.
_VERSION = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")

# Definite answers from Google: repeating the call will not change them.
_NOT_FOUND = (gexc.NotFound,)
_DENIED = (gexc.PermissionDenied, gexc.Unauthenticated)
# No answer at all: the next reference in the batch would fare no better.
_STORE_DOWN = (gexc.ServiceUnavailable, gexc.DeadlineExceeded)
# A failing token refresh surfaces as UNAVAILABLE with the OAuth error in the message; these
# OAuth errors mean the key itself is bad, not that Google is down.
_BAD_KEY_MARKERS = ("invalid_grant", "invalid_client", "unauthorized_client")
# grpc says a failed handshake only in the text of its UNAVAILABLE ("Ssl handshake failed
# (TSI_PROTOCOL_FAILURE): ... CERTIFICATE_VERIFY_FAILED"); matched, never repeated.
_TLS_MARKERS = ("Ssl handshake failed", "CERTIFICATE_VERIFY_FAILED", "TSI_PROTOCOL_FAILURE", "WRONG_VERSION_NUMBER")


class GcpProvider:
    """One Secret Manager project (and optional location), read as one identity."""

    def __init__(
        self, source: GcpSource, *, credentials_json: bytes | None = None, timeout: float = 10.0,
        federation: GcpFederation | None = None,
    ) -> None:
        self._source = source
        self._identity = GoogleIdentity(credentials_json=credentials_json, federation=federation)
        self._federation = federation
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        if not refs:
            return {}
        try:
            client = self._get_client()
        except ProviderError as exc:
            return dict.fromkeys(refs, exc)
        results: dict[RemoteRef, Fetched | ProviderError] = {}
        down: Unavailable | None = None
        for ref in refs:
            if ref in results:
                continue
            if down is not None:
                # The store just failed to answer for another reference; asking again per
                # reference would make a batch take len(refs) * timeout to fail.
                results[ref] = Unavailable(f"{_shown(ref)}: not read, Secret Manager did not answer "
                                           "for an earlier reference in this batch")
                continue
            result, store_down = self._fetch_one(client, ref)
            if store_down and isinstance(result, Unavailable):
                down = result
            results[ref] = result
        return results

    def check(self) -> str:
        """Prove the identity works: list one secret of the project."""
        client = self._get_client()
        shown = f"gcp project {self._source.project!r}"
        try:
            client.list_secrets(request={"parent": self._parent(), "page_size": 1}, timeout=self._timeout, retry=None)
        except gexc.GoogleAPICallError as exc:
            raise self._failed(exc, shown) from None
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, grpc.RpcError, OSError) as exc:
            raise self._failed(exc, shown) from None
        return "listed secrets"

    def list_matching(self, query: FindQuery) -> list[str]:
        """Ids of the secrets that match ``query`` (at most one more than its ``max_matches``),
        listed with ListSecrets' ``filter`` (``name:`` for the prefix, ``labels.k=v`` per label,
        joined by AND) and checked again here: ``name:`` matches anywhere in the name."""
        if query.prefix is not None and not _SECRET_ID.match(query.prefix):
            return []  # no secret id can start with it
        client = self._get_client()
        shown = f"gcp project {self._source.project!r}: listing secrets ({list_filter(query) or 'no filter'})"
        request: dict[str, Any] = {"parent": self._parent(), "page_size": LIST_PAGE_SIZE}
        if list_filter(query):
            request["filter"] = list_filter(query)
        names: list[str] = []
        try:
            for secret in client.list_secrets(request=request, timeout=self._timeout, retry=None):
                secret_id = str(secret.name).rsplit("/", 1)[-1]
                if query.matches(secret_id, dict(secret.labels)):
                    names.append(secret_id)
                    if len(names) > query.max_matches:
                        break
        except gexc.GoogleAPICallError as exc:
            raise self._failed(exc, shown) from None
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, grpc.RpcError, OSError) as exc:
            raise self._failed(exc, shown) from None
        return names

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.transport.close()

    # -- one reference -----------------------------------------------------------------------

    def _fetch_one(self, client: Any, ref: RemoteRef) -> tuple[Fetched | ProviderError, bool]:
        """The answer for ``ref``, and whether it says the store itself is not answering."""
        try:
            name = self.version_name(ref)
        except ValueError as exc:
            return NotFound(str(exc)), False
        shown = _shown(ref)
        try:
            response = client.access_secret_version(request={"name": name}, timeout=self._timeout, retry=None)
        except gexc.GoogleAPICallError as exc:
            return self._failed(exc, shown), isinstance(exc, _STORE_DOWN)
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, grpc.RpcError, OSError) as exc:
            # Raised before or around the RPC (token refresh, DNS, sockets); their messages can
            # quote server responses, so only the type is shown.
            return self._failed(exc, shown), True
        return _checked(response, shown), False

    def _failed(self, exc: Exception, shown: str) -> ProviderError:
        """The classified error of a failed call, by its cause when the credentials are federated."""
        if isinstance(exc, gexc.GoogleAPICallError):
            error = _classify(exc, shown)
        else:
            error = Unavailable(f"{shown}: {type(exc).__name__} talking to Secret Manager")
        return _federation_error(self, error, shown, str(exc))

    def version_name(self, ref: RemoteRef) -> str:
        """The full version resource name ``ref`` denotes in this source."""
        full = _FULL_NAME.match(ref.name)
        if full:
            secret, named_version = full["secret"], full["version"]
            if named_version is not None and ref.version is not None and named_version != ref.version:
                raise ValueError(f"gcp secret {ref.name!r}: names version {named_version} but the reference "
                                 f"pins version {ref.version}")
            version = ref.version or named_version or "latest"
        elif _SECRET_ID.match(ref.name):
            secret, version = f"{self._parent()}/secrets/{ref.name}", ref.version or "latest"
        else:
            raise ValueError(f"gcp secret {ref.name!r}: not a secret id ([a-zA-Z0-9_-]{{1,255}}) "
                             "nor a projects/.../secrets/... name")
        if not _VERSION.match(version):
            raise ValueError(f"gcp secret {ref.name!r}: {version!r} is not a version number, alias or latest")
        return f"{secret}/versions/{version}"

    def _parent(self) -> str:
        if self._source.location:
            return f"projects/{self._source.project}/locations/{self._source.location}"
        return f"projects/{self._source.project}"

    # -- client ------------------------------------------------------------------------------

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        # Imported here: the client library is heavy and only GCP sources need it.
        from google.cloud.secretmanager_v1 import SecretManagerServiceClient
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        logging.getLogger(_PAYLOAD_LOGGER).setLevel(logging.INFO)
        return google_client(SecretManagerServiceClient, SecretManagerServiceGrpcTransport, self._source,
                             self._identity, self._google_endpoint())

    def _google_endpoint(self) -> str:
        if self._source.location:
            return f"secretmanager.{self._source.location}.rep.googleapis.com"
        return DEFAULT_ENDPOINT


LIST_PAGE_SIZE = 250
# A label value Google accepts unquoted in a filter; anything else is quoted.
_PLAIN_LABEL_VALUE = re.compile(r"^[a-z0-9_-]+$")


def list_filter(query: FindQuery) -> str:
    """The ListSecrets filter for what ``query`` selects, in Google's filter syntax."""
    terms = []
    if query.prefix is not None:
        terms.append(f"name:{query.prefix}")
    for key, value in sorted(query.tags.items()):
        shown = value if _PLAIN_LABEL_VALUE.match(value) else json.dumps(value)
        terms.append(f"labels.{key}={shown}")
    return " AND ".join(terms)


def _shown(ref: RemoteRef) -> str:
    return f"gcp secret {ref.name!r} version {ref.version or 'latest'}"


# What google-auth's errors say when Google's STS or the IAM credentials API refused the exchange.
_FEDERATION_REFUSED = ("Unable to acquire impersonated credentials", "access_denied", "unauthorized_client",
                       "invalid_grant", "invalid_request", "PERMISSION_DENIED")


def _federation_error(provider: GcpProvider, error: ProviderError, shown: str, text: str) -> ProviderError:
    """A failed federated call by its cause: the ServiceAccount token (by name), or a refused exchange."""
    if provider._federation is None or not isinstance(error, Unavailable | AccessDenied):
        return error
    supplier = provider._identity.supplier
    if supplier is not None and supplier.last_error is not None:
        cause: ProviderError = supplier.last_error
        return type(cause)(f"{shown}: {cause.message}")
    if any(marker in text for marker in _FEDERATION_REFUSED):
        who = provider._federation.service_account_email
        target = f" or impersonation of {who!r}" if who else ""
        return AccessDenied(f"{shown}: Google refused the ServiceAccount token (Workload Identity Federation "
                            f"exchange{target} not granted)")
    return error


def _classify(exc: Any, shown: str) -> ProviderError:
    """Map a failed call to the provider error classes, by status code, never by echoing the message."""
    code = getattr(exc, "grpc_status_code", None)
    code_name = code.name if code is not None else type(exc).__name__
    if isinstance(exc, _NOT_FOUND):
        return NotFound(f"{shown}: not found")
    if isinstance(exc, _DENIED):
        return AccessDenied(f"{shown}: access denied ({code_name})")
    if isinstance(exc, gexc.FailedPrecondition):
        # Secret Manager answers FAILED_PRECONDITION for a version that is disabled or destroyed:
        # the value is definitely not readable until someone enables a version.
        state = "destroyed" if "DESTROYED" in str(exc.message) else "disabled"
        return NotFound(f"{shown} is {state}")
    if isinstance(exc, gexc.TooManyRequests):
        return Throttled(f"{shown}: throttled, Secret Manager answered {code_name}", retry_after=_retry_delay(exc))
    message = str(getattr(exc, "message", ""))
    if isinstance(exc, gexc.ServiceUnavailable) and any(m in message for m in _TLS_MARKERS):
        return TlsError(f"{shown}: TLS handshake failed (server certificate not trusted, or the server does not "
                        "speak TLS)")
    if isinstance(exc, gexc.ServiceUnavailable) and any(m in message for m in _BAD_KEY_MARKERS):
        return AccessDenied(f"{shown}: Google refused the service-account key (token refresh failed)")
    return Unavailable(f"{shown}: Secret Manager answered {code_name}")


def _retry_delay(exc: Any) -> float | None:
    """Google's google.rpc.RetryInfo among the error details, when it sent one: its Retry-After."""
    for detail in getattr(exc, "details", None) or ():
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "seconds"):
            return float(delay.seconds) + float(delay.nanos) / 1e9
    return None


def _checked(response: Any, shown: str) -> Fetched | ProviderError:
    """The fetched value, once its checksum (when Google sent one) matches."""
    payload = response.payload
    data = bytes(payload.data)
    if "data_crc32c" in payload and int(payload.data_crc32c) != google_crc32c.value(data):
        return Unavailable(f"{shown}: payload checksum mismatch (data_crc32c), corrupted in transit")
    version = str(response.name).rsplit("/", 1)[-1]
    return Fetched(value=SecretValue(data), version=version)
