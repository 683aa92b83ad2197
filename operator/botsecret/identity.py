"""Who a BotSecret acts as: short-lived tokens of a ServiceAccount of its own namespace.

A token is minted with TokenRequest for one audience and handed to a provider as a plain
callable, so providers never see the Kubernetes client. The namespace is always the BotSecret's
own: nothing here takes a namespace from the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import metrics
from .providers.base import AccessDenied, Unavailable

__all__ = ["TOKEN_SECONDS", "token_source"]

# What the apiserver grants at most varies; an hour is the usual floor of --service-account-max-token-expiration.
TOKEN_SECONDS = 3600


def token_source(core: Any, namespace: str, service_account: str, audience: str,
                 field: str) -> Callable[[], str]:
    """A callable that mints a fresh token of ``namespace/service_account`` for ``audience``.

    The callers cache what they get in exchange (STS credentials, a Vault token) and call this
    again only to renew that, so tokens are minted rarely and never shared between identities.
    """

    def mint() -> str:
        request = {"spec": {"audiences": [audience], "expirationSeconds": TOKEN_SECONDS}}
        try:
            response = core.create_namespaced_service_account_token(service_account, namespace, request)
        except ApiException as e:
            if e.status == 404:
                raise AccessDenied(
                    f"{field}: ServiceAccount {service_account!r} not found in namespace {namespace!r}") from None
            if e.status == 403:
                raise AccessDenied(f"{field}: the operator may not request tokens for {service_account!r}") from None
            raise Unavailable(f"{field}: TokenRequest failed with HTTP {e.status}") from None
        metrics.TOKEN_REQUESTS.inc()
        return str(response.status.token)

    return mint
