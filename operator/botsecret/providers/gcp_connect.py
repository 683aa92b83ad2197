"""How a GCP store reaches a Google gRPC API, shared by Secret Manager (gcp) and Pub/Sub (gcp_events).

The store's ``endpoint`` rules hold for every API it talks to: unset, Google's own endpoint for
that API over TLS with the store's identity; ``http://host:port``, plaintext gRPC without
credentials (an emulator or a test server); ``https://host:port`` or ``host:port``, TLS to that
host with the store's identity.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials

from ..spec import GcpSource
from .base import AccessDenied, Unavailable
from .gcp_federation import GcpFederation, federated_credentials

__all__ = ["CHANNEL_OPTIONS", "SCOPES", "GoogleIdentity", "google_client", "host_port", "is_plaintext"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def is_plaintext(source: GcpSource) -> bool:
    return (source.endpoint or "").lower().startswith("http://")


def host_port(url: str, *, default_port: int) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise Unavailable(f"gcp: endpoint {url!r} names no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or default_port}"


class GoogleIdentity:
    """The store's identity as google-auth credentials: a service-account key, Workload Identity
    Federation, or Application Default Credentials. ``supplier`` is the federation's subject-token
    supplier once credentials were made (its last error names a refused ServiceAccount token)."""

    def __init__(self, *, credentials_json: bytes | None = None, federation: GcpFederation | None = None) -> None:
        self.credentials_json = credentials_json
        self.federation = federation
        self.supplier: Any = None

    def __repr__(self) -> str:
        return f"GoogleIdentity(key={self.credentials_json is not None}, federated={self.federation is not None})"

    def credentials(self) -> Any:
        from google.oauth2 import service_account

        if self.federation is not None:
            credentials, self.supplier = federated_credentials(self.federation, list(SCOPES))
            return credentials
        if self.credentials_json is None:
            import google.auth

            try:
                credentials, _project = google.auth.default(scopes=list(SCOPES))
            except auth_exc.DefaultCredentialsError as exc:
                raise AccessDenied("gcp: no credentialsSecretRef and no Application Default Credentials "
                                   "found") from exc
            return credentials
        try:
            info = json.loads(self.credentials_json)
            from_info = service_account.Credentials.from_service_account_info
            return from_info(info, scopes=list(SCOPES))  # type: ignore[no-untyped-call]
        except (ValueError, TypeError, KeyError) as exc:
            # The parse error could quote the key; name the problem only.
            raise AccessDenied("gcp: credentialsSecretRef does not hold a service-account key JSON "
                               f"({type(exc).__name__})") from None


def google_client(client_class: Any, transport_class: Any, source: GcpSource, identity: GoogleIdentity,
                  google_endpoint: str) -> Any:
    """A generated (GAPIC) client of one API for ``source``: ``google_endpoint`` is the API's own
    host, used when the store names no endpoint."""
    endpoint = source.endpoint
    if endpoint is not None and is_plaintext(source):
        # Plaintext means an emulator: no credentials to send, none to look up.
        channel = grpc.insecure_channel(host_port(endpoint, default_port=80), options=CHANNEL_OPTIONS)
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]  # google-auth lacks annotations
        return client_class(transport=transport_class(credentials=anonymous, channel=channel))
    if endpoint is not None:
        api_endpoint = host_port(endpoint if "://" in endpoint else f"https://{endpoint}", default_port=443)
    else:
        api_endpoint = google_endpoint
    return client_class(credentials=identity.credentials(), client_options=ClientOptions(api_endpoint=api_endpoint))
