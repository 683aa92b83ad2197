"""Google's side of Workload Identity Federation, on loopback: an STS token exchange and the IAM
credentials API.

The STS endpoint (``POST /v1/token``, RFC 8693 token exchange as Google serves it) takes a
Kubernetes ServiceAccount token as the subject token and checks it the way a workload identity
pool provider trusting the cluster would: a real TokenReview against the test apiserver, for the
pool's audience, and a grant for that exact ``system:serviceaccount:NAMESPACE:NAME``. The IAM
endpoint (``POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken``) takes the STS token
and issues a token for EMAIL only if that principal may impersonate it. :meth:`accepts` is what
the Secret Manager fake asks of every RPC's bearer token; it records each one it saw.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Federation"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_IMPERSONATE = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):generateAccessToken$")


class Federation:
    def __init__(self, authn: Any, audience: str) -> None:
        self._authn = authn  # AuthenticationV1Api of an admin client: TokenReview
        self.audience = audience
        self.granted: set[str] = set()  # principals the pool maps to a Google identity
        self.impersonation: dict[str, set[str]] = {}  # email -> principals allowed to impersonate it
        self.counts: Counter[str] = Counter()
        self.seen_bearers: list[str] = []  # every bearer token Secret Manager was shown
        self.subject_tokens: list[str] = []  # every subject token STS was shown
        self._sts_tokens: dict[str, str] = {}  # STS token -> principal
        self._google_tokens: dict[str, str] = {}  # token Secret Manager accepts -> who
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.endpoint}/v1/token"

    def start(self) -> None:
        federation = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/v1/token":
                    status, answer = federation._exchange(urllib.parse.parse_qs(body.decode()))
                elif match := _IMPERSONATE.match(self.path):
                    status, answer = federation._impersonate(match["email"], self.headers.get("Authorization"))
                else:
                    status, answer = 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what Secret Manager asks ----------------------------------------------------------------

    def accepts(self, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            self.seen_bearers.append(token)
            ok = token in self._google_tokens
            self.counts["accepted" if ok else "refused"] += 1
        return ok

    def issued(self) -> set[str]:
        with self._lock:
            return set(self._google_tokens)

    # -- the endpoints ---------------------------------------------------------------------------

    def _exchange(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        subject = (form.get("subject_token") or [""])[0]
        with self._lock:
            self.subject_tokens.append(subject)
        if (form.get("grant_type") or [""])[0] != TOKEN_EXCHANGE or (form.get("audience") or [""])[0] != self.audience:
            return self._refuse("sts-refused", 400, "invalid_request", "wrong grant type or audience")
        review = self._authn.create_token_review({"spec": {"token": subject, "audiences": [self.audience]}})
        user = review.status.user.username if review.status.authenticated and review.status.user else None
        if user is None or user not in self.granted:
            return self._refuse("sts-refused", 400, "invalid_grant", "the subject is not mapped by the pool")
        token = "sts-" + secrets.token_hex(16)
        with self._lock:
            self._sts_tokens[token] = user
            self._google_tokens[token] = user  # a federated token Google services accept directly
            self.counts["sts"] += 1
        return 200, {"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                     "token_type": "Bearer", "expires_in": 3600}

    def _impersonate(self, email: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            principal = self._sts_tokens.get(token)
        if principal is None:
            return self._refuse("iam-refused", 401, "UNAUTHENTICATED", "not a federated token")
        if principal not in self.impersonation.get(email, set()):
            return self._refuse("iam-refused", 403, "PERMISSION_DENIED", "iam.serviceAccounts.getAccessToken denied")
        issued = "iam-" + secrets.token_hex(16)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        with self._lock:
            self._google_tokens[issued] = email
            self.counts["iam"] += 1
        return 200, {"accessToken": issued, "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _refuse(self, counter: str, status: int, code: str, why: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.counts[counter] += 1
        if status == 400:
            return status, {"error": code, "error_description": why}
        return status, {"error": {"code": status, "status": code, "message": why}}
