"""Who a BotSecret acts as: short-lived tokens of a ServiceAccount of its own namespace.

A token is minted with TokenRequest for one audience and handed to a provider as a plain
callable, so providers never see the Kubernetes client. The namespace is always the BotSecret's
own: nothing here takes a namespace from the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import metrics
from .providers.base import AccessDenied, Unavailable

__all__ = ["TOKEN_SECONDS", "token_source"]

# What the apiserver grants at most varies; an hour is the usual floor of --service-account-max-token-expiration.
TOKEN_SECONDS = 3600


def _refuse_api_audience(core: Any, token: str, audience: str, field: str) -> None:
    """Refuse to hand out a token the Kubernetes API itself would accept.

    The spec chooses the audience and where the token goes (a Vault address, an STS endpoint).
    A token for the apiserver's own audience would give whoever receives it the ServiceAccount's
    rights in the cluster; a token for another audience is worthless to the apiserver.
    """
    authn: Any = client.AuthenticationV1Api(core.api_client)
    review = authn.create_token_review({"spec": {"token": token}})
    if review.status.authenticated:
        raise AccessDenied(f"{field}: audience {audience!r} is accepted by the Kubernetes API itself; "
                           "choose an audience of the provider, such as 'vault' or 'sts.amazonaws.com'")


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
        token = str(response.status.token)
        _refuse_api_audience(core, token, audience, field)
        return token

    return mint
