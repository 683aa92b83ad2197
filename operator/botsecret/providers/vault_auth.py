"""Ways to get a Vault token: a static one, the Kubernetes auth method, AppRole.

A login answers the token and how many seconds it lives; the provider logs in again before that
runs out. Errors name the auth mount and role, never the credentials.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import hvac.exceptions as hvac_errors
import requests

from .. import metrics
from .base import AccessDenied, TlsError, Unavailable

__all__ = ["VaultLogin", "approle_login", "kubernetes_login", "static_token"]


class VaultLogin(Protocol):
    renewable: bool

    def __call__(self, client: Any) -> tuple[str, float]:
        """Log in with ``client``; answer the token and its lifetime in seconds."""
        ...


class _Static:
    renewable = False

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "static_token(<hidden>)"

    def __call__(self, client: Any) -> tuple[str, float]:
        return self._token, math.inf


def static_token(token: str) -> VaultLogin:
    return _Static(token)


class _MethodLogin:
    renewable = True

    def __init__(self, describe: str, attempt: Callable[[Any], Any]) -> None:
        self._describe = describe
        self._attempt = attempt

    def __repr__(self) -> str:
        return f"VaultLogin({self._describe})"

    def __call__(self, client: Any) -> tuple[str, float]:
        try:
            response = self._attempt(client)
        except (hvac_errors.Forbidden, hvac_errors.Unauthorized, hvac_errors.InvalidRequest):
            raise AccessDenied(f"Vault refused the login ({self._describe})") from None
        except hvac_errors.VaultError as exc:
            raise Unavailable(f"Vault login failed ({self._describe}; {type(exc).__name__})") from None
        except requests.exceptions.SSLError:
            raise TlsError(f"Vault login: TLS handshake failed ({self._describe}; SSLError: server certificate "
                           "not trusted, or the server does not speak TLS)") from None
        except requests.RequestException as exc:
            raise Unavailable(f"Vault unreachable for login ({self._describe}; {type(exc).__name__})") from None
        metrics.PROVIDER_LOGINS.labels("vault").inc()
        auth = response.get("auth") or {}
        lease = float(auth.get("lease_duration") or 0)
        return str(auth["client_token"]), lease if lease > 0 else math.inf


def kubernetes_login(role: str, mount: str, jwt: Callable[[], str]) -> VaultLogin:
    """The Kubernetes auth method with a freshly minted ServiceAccount token."""
    return _MethodLogin(f"kubernetes auth at {mount!r}, role {role!r}",
                        lambda client: client.auth.kubernetes.login(role, jwt(), mount_point=mount))


def approle_login(role_id: str, secret_id: str, mount: str) -> VaultLogin:
    return _MethodLogin(f"approle auth at {mount!r}",
                        lambda client: client.auth.approle.login(role_id, secret_id, mount_point=mount))
