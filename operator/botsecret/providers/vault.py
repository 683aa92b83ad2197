"""Vault (and OpenBao) KV secrets behind the :class:`~botsecret.providers.base.Provider` interface.

A KV v2 value is the secret's whole data map as canonical JSON; the generic layer picks a
``property`` out of it. KV v1 keeps no versions, so its version id is empty.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import hvac
import hvac.exceptions as hvac_errors
import requests
import requests.adapters

from ..remote import FindQuery
from ..spec import VaultSource
from ..values import SecretValue
from .base import AccessDenied, Fetched, NotFound, ProviderError, RemoteRef, Throttled, TlsError, Unavailable
from .vault_auth import VaultLogin, static_token

__all__ = ["VaultProvider"]

# Named in "unreachable" messages: the address is what the reader of the condition must check.
ADDRESS_FIELD = "spec.provider.vault.address"
RATE_LIMIT_RETRY_AFTER = 5.0
# A recursive listing visits at most this many folders: a find must not walk a whole mount.
MAX_LIST_FOLDERS = 500


class VaultProvider:
    """One KV mount of one Vault server, read with one token."""

    def __init__(self, source: VaultSource, *, token: str | None = None, login: VaultLogin | None = None,
                 ca_pem: str | None = None, timeout: float = 10.0) -> None:
        if (token is None) == (login is None):
            raise ValueError("VaultProvider takes exactly one of token and login")
        self._source = source
        self._login = login or static_token(token or "")
        self._token_valid_until = 0.0
        self._login_lock = threading.Lock()
        pem = ca_pem or source.ca_bundle
        session = requests.Session()
        session.verify = not source.insecure_skip_verify  # hvac lets a session's own setting win
        if pem and not source.insecure_skip_verify:
            # The CA stays in memory: the shipped Deployment has a read-only root filesystem and
            # no writable volume, so there is nowhere to write the file requests would want.
            field = "caSecretRef" if ca_pem else "caBundle"
            adapter = _TrustedCaAdapter(_ca_context(pem, f"Vault at {source.address}: {field}"))
            session.mount("https://", adapter)
        self._client: Any = hvac.Client(
            url=source.address, verify=session.verify, timeout=timeout, namespace=source.namespace,
            session=session,
        )

    def _ensure_token(self) -> None:
        # Many BotSecrets share one client; the first to find no token logs in, the others wait for it.
        with self._login_lock:
            if time.monotonic() < self._token_valid_until:
                return
            token, lifetime = self._login(self._client)  # raises classified errors itself
            self._client.token = token
            # Log in again when 80 % of the lease has passed, not when reads start failing.
            self._token_valid_until = time.monotonic() + lifetime * 0.8

    def __repr__(self) -> str:
        return f"VaultProvider(address={self._source.address!r}, mount={self._source.mount!r})"

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        self._ensure_token()
        results = {ref: self._fetch_one(ref) for ref in dict.fromkeys(refs)}
        if self._login.renewable and any(isinstance(r, AccessDenied) for r in results.values()):
            self._token_valid_until = 0.0  # perhaps revoked: log in afresh next time
        return results

    def check(self) -> str:
        """Prove the login works: log in, then look the token up."""
        self._ensure_token()
        try:
            self._client.auth.token.lookup_self()
        except (hvac_errors.Forbidden, hvac_errors.Unauthorized):
            self._token_valid_until = 0.0
            raise AccessDenied(f"Vault at {self._source.address} refused the token") from None
        except hvac_errors.VaultError as exc:
            raise Unavailable(f"Vault at {self._source.address} failed the token lookup "
                              f"({type(exc).__name__})") from None
        except requests.exceptions.SSLError:
            raise _tls_failed(self._source.address, "the token lookup") from None
        except requests.RequestException as exc:
            raise Unavailable(f"Vault at {self._source.address} ({ADDRESS_FIELD}) unreachable "
                              f"({type(exc).__name__})") from None
        return "logged in"

    def close(self) -> None:
        self._client.adapter.close()

    def list_matching(self, query: FindQuery) -> list[str]:
        """Paths under the mount that match ``query`` (at most one more than its ``max_matches``),
        by a recursive LIST from the folder of the prefix. KV has no tags (KV v2's
        custom_metadata is not what AWS and Google call tags), so a query with tags is refused."""
        if query.tags:
            raise NotFound("Vault KV secrets carry no tags to select by")
        self._ensure_token()
        prefix = query.prefix or ""
        start = prefix[:prefix.rfind("/") + 1]
        names: list[str] = []
        folders, visited = [start], 0
        what = f"{self._source.mount}/{prefix}*"
        while folders and len(names) <= query.max_matches:
            folder = folders.pop(0)
            visited += 1
            if visited > MAX_LIST_FOLDERS:
                raise Unavailable(f"Vault listing {what!r}: more than {MAX_LIST_FOLDERS} folders; narrow find.path")
            for entry in self._list(folder, what):
                path = folder + entry
                if entry.endswith("/"):
                    if path.startswith(prefix) or prefix.startswith(path):
                        folders.append(path)
                elif query.matches(path):
                    names.append(path)
        return names

    def _list(self, folder: str, what: str) -> list[str]:
        try:
            if self._source.kv_version == 1:
                response = self._client.secrets.kv.v1.list_secrets(path=folder, mount_point=self._source.mount)
            else:
                response = self._client.secrets.kv.v2.list_secrets(path=folder, mount_point=self._source.mount)
        except hvac_errors.InvalidPath:
            return []  # an empty or missing folder
        except (hvac_errors.VaultDown, hvac_errors.VaultNotInitialized) as exc:
            raise Unavailable(f"Vault at {self._source.address} is {_state(exc)} listing {what!r}") from None
        except requests.exceptions.SSLError:
            raise _tls_failed(self._source.address, f"listing {what!r}") from None
        except requests.RequestException as exc:
            raise Unavailable(f"Vault at {self._source.address} ({ADDRESS_FIELD}) unreachable listing {what!r} "
                              f"({type(exc).__name__})") from None
        except hvac_errors.VaultError as exc:
            raise _classify(exc, f"(listing {what!r})") from None
        keys = _mapping(_mapping(response).get("data")).get("keys")
        return sorted(str(k) for k in keys) if isinstance(keys, list) else []

    def _fetch_one(self, ref: RemoteRef) -> Fetched | ProviderError:
        what = self._describe(ref)
        try:
            if self._source.kv_version == 1:
                return self._read_v1(ref, what)
            return self._read_v2(ref, what)
        except (hvac_errors.VaultDown, hvac_errors.VaultNotInitialized) as exc:
            # Sealed or uninitialised: every other path would answer the same.
            raise Unavailable(f"Vault at {self._source.address} is {_state(exc)} reading {what}") from None
        except requests.exceptions.SSLError:
            raise _tls_failed(self._source.address, f"reading {what}") from None
        except requests.RequestException as exc:
            raise Unavailable(
                f"Vault at {self._source.address} ({ADDRESS_FIELD}) unreachable reading {what} "
                f"({type(exc).__name__})"
            ) from None
        except hvac_errors.VaultError as exc:
            return _classify(exc, what)

    def _read_v2(self, ref: RemoteRef, what: str) -> Fetched | ProviderError:
        version = _kv2_version(ref.version)
        if ref.version is not None and version is None:
            return NotFound(f"Vault secret {what}: a KV v2 version is a positive integer")
        try:
            response = self._client.secrets.kv.v2.read_secret_version(
                path=ref.name, mount_point=self._source.mount, version=version, raise_on_deleted_version=True,
            )
        except hvac_errors.InvalidPath as exc:
            # The 404 of a deleted or destroyed version still carries that version's metadata.
            return NotFound(_gone(self._where(ref), ref, _mapping(_mapping(exc.json).get("data")).get("metadata")))
        body = _mapping(response.get("data") if isinstance(response, Mapping) else None)
        if body.get("data") is None:
            return NotFound(_gone(self._where(ref), ref, body.get("metadata")))
        version_id = _mapping(body.get("metadata")).get("version", "")
        return Fetched(value=_encode(_mapping(body["data"])), version=str(version_id))

    def _read_v1(self, ref: RemoteRef, what: str) -> Fetched | ProviderError:
        if ref.version is not None:
            return NotFound(f"Vault secret {what}: KV v1 mounts keep no versions")
        response = self._client.secrets.kv.v1.read_secret(path=ref.name, mount_point=self._source.mount)
        body = response.get("data") if isinstance(response, Mapping) else None
        if body is None:
            return NotFound(f"Vault secret {what} not found")
        return Fetched(value=_encode(_mapping(body)), version="")

    def _where(self, ref: RemoteRef) -> str:
        where = f"{self._source.mount}/{ref.name}"
        return f"{self._source.namespace}/{where}" if self._source.namespace else where

    def _describe(self, ref: RemoteRef) -> str:
        text = repr(self._where(ref))
        return text if ref.version is None else f"{text} version {_shown_version(ref.version)}"


def _encode(data: Mapping[str, Any]) -> SecretValue:
    return SecretValue(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _kv2_version(version: str | None) -> int | None:
    if version is None or not version.isdigit() or int(version) < 1:
        return None
    return int(version)


def _shown_version(version: str) -> str:
    return version if version.isdigit() else repr(version)


def _gone(where: str, ref: RemoteRef, metadata: object) -> str:
    """Why a KV v2 read found no data: a deleted or destroyed version, or no such secret or version."""
    meta = _mapping(metadata)
    version = meta.get("version")
    shown = f"Vault secret {where!r}"
    if isinstance(version, int) and version > 0:
        shown += f" version {version}"
        if meta.get("destroyed") is True:
            return f"{shown} is destroyed"
        if meta.get("deletion_time"):
            return f"{shown} is deleted"
    elif ref.version is not None:
        shown += f" version {_shown_version(ref.version)}"
    return f"{shown} not found"


def _classify(exc: hvac_errors.VaultError, what: str) -> ProviderError:
    """Map an hvac error to our own message; hvac's text can quote the response body."""
    if isinstance(exc, hvac_errors.InvalidPath):
        return NotFound(f"Vault secret {what} not found or deleted")
    if isinstance(exc, hvac_errors.Forbidden | hvac_errors.Unauthorized):
        return AccessDenied(f"Vault denied reading secret {what}")
    if isinstance(exc, hvac_errors.RateLimitExceeded):
        return Throttled(f"Vault rate-limited reading secret {what}", retry_after=RATE_LIMIT_RETRY_AFTER)
    return Unavailable(f"Vault failed reading secret {what} ({type(exc).__name__})")


def _state(exc: hvac_errors.VaultError) -> str:
    return "not initialised" if isinstance(exc, hvac_errors.VaultNotInitialized) else "sealed or down"


def _tls_failed(address: str, doing: str) -> TlsError:
    # The SSL error's text names the certificate, not data; it is still not repeated.
    return TlsError(f"Vault at {address}: TLS handshake failed {doing} (SSLError: server certificate not "
                    "trusted, or the server does not speak TLS)")


def _ca_context(pem: str, what: str) -> ssl.SSLContext:
    """A verifying TLS context that trusts exactly the certificates in ``pem``."""
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        # The parser's text could quote the bundle; name the field only.
        raise AccessDenied(f"{what} holds no usable PEM certificate ({type(exc).__name__})") from None


class _TrustedCaAdapter(requests.adapters.HTTPAdapter):
    """HTTPS through one in-memory TLS context; requests itself takes a CA only as a file path."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, ssl_context=self._context, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        # requests points each pool at certifi's bundle (or REQUESTS_CA_BUNDLE); urllib3 would
        # load it into our context, and the source's CA would no longer be the only one trusted.
        conn.ca_certs = conn.ca_cert_dir = None
