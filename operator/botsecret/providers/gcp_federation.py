"""Google credentials from a Kubernetes ServiceAccount token: Workload Identity Federation.

google-auth's identity-pool credentials exchange a subject token at Google's STS (and, when a
Google service account is named, trade the result at the IAM credentials API for that account's
token). The subject token comes from a programmatic supplier that mints it with TokenRequest when
google-auth asks, so no token or credential configuration is ever written to a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.auth import exceptions as auth_exc
from google.auth import identity_pool

from .base import ProviderError

__all__ = ["JWT_TOKEN_TYPE", "GcpFederation", "federated_credentials"]

JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
GOOGLE_STS = "https://sts.googleapis.com/v1/token"
GOOGLE_IAM_CREDENTIALS = "https://iamcredentials.googleapis.com"


@dataclass(frozen=True)
class GcpFederation:
    """What a store's ``workloadIdentity`` says, with a callable that mints the subject token."""

    audience: str
    token: Callable[[], str] = field(repr=False)
    service_account_email: str | None = None
    sts_endpoint: str | None = None
    iam_endpoint: str | None = None

    @property
    def token_url(self) -> str:
        return self.sts_endpoint or GOOGLE_STS

    @property
    def impersonation_url(self) -> str | None:
        if self.service_account_email is None:
            return None
        base = (self.iam_endpoint or GOOGLE_IAM_CREDENTIALS).rstrip("/")
        return f"{base}/v1/projects/-/serviceAccounts/{self.service_account_email}:generateAccessToken"


class _Supplier(identity_pool.SubjectTokenSupplier):
    """Mints the ServiceAccount token when google-auth exchanges it (about once an hour).

    A refusal (no such ServiceAccount, no right to mint) is kept so that the provider can report
    it by name; google-auth only sees a RefreshError that says nothing of the cause.
    """

    def __init__(self, mint: Callable[[], str]) -> None:
        self._mint = mint
        self.last_error: ProviderError | None = None

    def get_subject_token(self, context: Any, request: Any) -> str:
        try:
            token = self._mint()
        except ProviderError as e:
            self.last_error = e
            raise auth_exc.RefreshError(  # type: ignore[no-untyped-call]
                "the ServiceAccount token could not be minted") from None
        self.last_error = None
        return token


def federated_credentials(federation: GcpFederation, scopes: list[str]) -> tuple[Any, _Supplier]:
    """Identity-pool credentials for ``federation`` and their subject-token supplier."""
    supplier = _Supplier(federation.token)
    credentials = identity_pool.Credentials(  # type: ignore[no-untyped-call]
        audience=federation.audience, subject_token_type=JWT_TOKEN_TYPE, token_url=federation.token_url,
        subject_token_supplier=supplier, service_account_impersonation_url=federation.impersonation_url,
        scopes=scopes,
    )
    return credentials, supplier
