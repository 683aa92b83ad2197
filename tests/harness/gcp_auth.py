"""Google's side of service-account authentication, on loopback.

A service-account key JSON carries an RSA private key and a ``token_uri``. Google accepts two
bearer credentials made from it, and so does this fake:

- an OAuth access token, from the JWT-bearer grant at the token endpoint (a JWT signed with the
  key, ``aud`` = Google's token endpoint), which :class:`GoogleAuth` serves over HTTP;
- a self-signed JWT sent as the bearer itself (``scope`` or ``aud`` claim), which the official
  client libraries prefer for service-account keys (``always_use_jwt_access``).

Both are checked against the public half of every key issued and not revoked: the signature
(RS256), the key id, issuer, subject, audience or scope, and expiry.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["GoogleAuth"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SECRET_MANAGER_AUDIENCE = "https://secretmanager.googleapis.com/"
# A grant's assertion names Google's token endpoint as audience, wherever the key's token_uri points.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
TOKEN_LIFETIME = 3600
CLOCK_SKEW = 300


@dataclass
class _Key:
    email: str
    public: rsa.RSAPublicKey
    revoked: bool = False


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GoogleAuth:
    """Service-account keys, a token endpoint, and the check the API applies to a bearer token."""

    def __init__(self) -> None:
        self.port = 0
        # "grant", "grant refused", "jwt", "token", "refused": what was asked and answered.
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # access token -> (email, expiry)
        self._server: ThreadingHTTPServer | None = None

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> None:
        auth = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                status, body = auth._grant(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output is no place for request lines

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="gcp-token-endpoint", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- keys ---------------------------------------------------------------------------------

    def issue_key(self, project: str, account: str = "bot") -> bytes:
        """A new service-account key JSON whose ``token_uri`` is this endpoint."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id, email = secrets.token_hex(20), f"{account}@{project}.iam.gserviceaccount.com"
        with self._lock:
            self._keys[key_id] = _Key(email, private.public_key())
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return json.dumps({
            "type": "service_account", "project_id": project, "private_key_id": key_id, "private_key": pem,
            "client_email": email, "client_id": str(secrets.randbelow(10**20)), "token_uri": self.token_uri,
        }).encode()

    def revoke(self, key_json: bytes) -> None:
        """Delete the key at "Google": no grant and no self-signed JWT made with it works from now on
        (access tokens already granted live out their hour, as at Google)."""
        key_id = json.loads(key_json)["private_key_id"]
        with self._lock:
            self._keys[key_id].revoked = True

    # -- checks -------------------------------------------------------------------------------

    def accepts(self, authorization: str | None) -> bool:
        """Whether the API would accept this ``authorization`` metadata value."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme != "Bearer" or not credential:
            return self._count("refused", False)
        with self._lock:
            issued = self._tokens.get(credential)
        if issued is not None:
            return self._count("token" if issued[1] > time.time() else "refused", issued[1] > time.time())
        claims = self._verified(credential)
        ok = claims is not None and (claims.get("aud") == SECRET_MANAGER_AUDIENCE
                                     or CLOUD_PLATFORM in str(claims.get("scope", "")).split())
        return self._count("jwt" if ok else "refused", ok)

    def _grant(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            self._count("grant refused", False)
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        claims = self._verified(form["assertion"][0])
        if claims is None or claims.get("aud") not in (TOKEN_AUDIENCE, self.token_uri) or not claims.get("scope"):
            self._count("grant refused", False)
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens[token] = (str(claims["iss"]), time.time() + TOKEN_LIFETIME)
        self._count("grant", True)
        return 200, {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}

    def _verified(self, jwt: str) -> dict[str, Any] | None:
        """The claims of a JWT signed by a live key of the account it names, else None."""
        try:
            header_b64, payload_b64, signature_b64 = jwt.split(".")
            header, claims = json.loads(_b64decode(header_b64)), json.loads(_b64decode(payload_b64))
            with self._lock:
                key = self._keys.get(str(header.get("kid")))
            if header.get("alg") != "RS256" or key is None or key.revoked:
                return None
            key.public.verify(_b64decode(signature_b64), f"{header_b64}.{payload_b64}".encode(),
                              padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature, AttributeError):
            return None
        issued_at, expires = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        fresh = issued_at - CLOCK_SKEW <= time.time() < expires + CLOCK_SKEW
        if not fresh or claims.get("iss") != key.email or claims.get("sub", key.email) != key.email:
            return None
        return dict(claims)

    def _count(self, what: str, result: bool) -> bool:
        with self._lock:
            self.counts[what] += 1
        return result
