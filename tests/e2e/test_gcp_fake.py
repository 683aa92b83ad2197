"""The Secret Manager fake answers the official client the way Google does."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any

import google_crc32c
import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud.secretmanager_v1 import SecretManagerServiceClient, types
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from google.oauth2 import service_account

from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.gcp_fixtures import GcpTls
from tests.harness.leaks import secret_value
from tests.harness.pki import CertificateAuthority

pytestmark = pytest.mark.smoke

PROJECT = "botsecret-smoke"
# The client's default retry for Access keeps retrying UNAVAILABLE for 60 s; tests want answers.
NO_RETRY: dict[str, Any] = {"retry": None, "timeout": 5}


@pytest.fixture
def client(gcp: GcpSecretManagerFake) -> Iterator[Any]:
    sm = gcp.client()
    yield sm
    sm.transport.close()


def _new_secret(client: Any, parent: str = f"projects/{PROJECT}") -> str:
    secret_id = f"smoke-{secrets.token_hex(4)}"
    secret: dict[str, Any] = {} if "/locations/" in parent else {"replication": {"automatic": {}}}
    created = client.create_secret(request={"parent": parent, "secret_id": secret_id, "secret": secret}, **NO_RETRY)
    assert created.name == f"{parent}/secrets/{secret_id}"
    return str(created.name)


def _add(client: Any, secret: str, data: bytes) -> str:
    version = client.add_secret_version(request={"parent": secret, "payload": {"data": data}}, **NO_RETRY)
    return str(version.name)


def test_reads_latest_and_a_numbered_version(client: Any) -> None:
    secret = _new_secret(client)
    first, second = secret_value("gcp_smoke_v1").encode(), secret_value("gcp_smoke_v2").encode()
    assert _add(client, secret, first) == f"{secret}/versions/1"
    assert _add(client, secret, second) == f"{secret}/versions/2"

    latest = client.access_secret_version(request={"name": f"{secret}/versions/latest"}, **NO_RETRY)
    assert latest.payload.data == second
    assert latest.name == f"{secret}/versions/2"  # resolved, not "latest"

    pinned = client.access_secret_version(request={"name": f"{secret}/versions/1"}, **NO_RETRY)
    assert (pinned.payload.data, pinned.name) == (first, f"{secret}/versions/1")


def test_regional_secret_reads_back(client: Any) -> None:
    secret = _new_secret(client, f"projects/{PROJECT}/locations/europe-west1")
    value = secret_value("gcp_smoke_regional").encode()
    _add(client, secret, value)
    got = client.access_secret_version(request={"name": f"{secret}/versions/latest"}, **NO_RETRY)
    assert got.payload.data == value
    assert got.name == f"{secret}/versions/1"


def test_disabled_version_fails_with_failed_precondition(client: Any) -> None:
    secret = _new_secret(client)
    _add(client, secret, secret_value("gcp_smoke_old").encode())
    newest = _add(client, secret, secret_value("gcp_smoke_disabled").encode())
    disabled = client.disable_secret_version(request={"name": newest}, **NO_RETRY)
    assert disabled.state == types.SecretVersion.State.DISABLED

    with pytest.raises(gexc.FailedPrecondition, match="DISABLED state"):
        client.access_secret_version(request={"name": newest}, **NO_RETRY)
    # "latest" is the newest version whatever its state; it does not fall back to version 1.
    with pytest.raises(gexc.FailedPrecondition):
        client.access_secret_version(request={"name": f"{secret}/versions/latest"}, **NO_RETRY)

    client.enable_secret_version(request={"name": newest}, **NO_RETRY)
    assert client.access_secret_version(request={"name": newest}, **NO_RETRY).name == newest

    destroyed = client.destroy_secret_version(request={"name": newest}, **NO_RETRY)
    assert destroyed.state == types.SecretVersion.State.DESTROYED
    with pytest.raises(gexc.FailedPrecondition, match="DESTROYED state"):
        client.access_secret_version(request={"name": newest}, **NO_RETRY)
    with pytest.raises(gexc.FailedPrecondition):
        client.enable_secret_version(request={"name": newest}, **NO_RETRY)


def test_missing_things_are_not_found_and_duplicates_already_exist(client: Any) -> None:
    with pytest.raises(gexc.NotFound):
        client.access_secret_version(request={"name": f"projects/{PROJECT}/secrets/nope/versions/latest"}, **NO_RETRY)
    secret = _new_secret(client)
    with pytest.raises(gexc.NotFound):  # no versions yet
        client.access_secret_version(request={"name": f"{secret}/versions/latest"}, **NO_RETRY)
    _add(client, secret, secret_value("gcp_smoke_one").encode())
    with pytest.raises(gexc.NotFound):
        client.get_secret_version(request={"name": f"{secret}/versions/7"}, **NO_RETRY)
    with pytest.raises(gexc.AlreadyExists):
        client.create_secret(
            request={"parent": f"projects/{PROJECT}", "secret_id": secret.rsplit("/", 1)[-1],
                     "secret": {"replication": {"automatic": {}}}},
            **NO_RETRY,
        )
    client.delete_secret(request={"name": secret}, **NO_RETRY)
    with pytest.raises(gexc.NotFound):
        client.get_secret(request={"name": secret}, **NO_RETRY)


def test_list_pagers_walk_every_page(client: Any) -> None:
    parent = f"projects/list-{secrets.token_hex(4)}"
    made = {_new_secret(client, parent) for _ in range(5)}
    pager = client.list_secrets(request={"parent": parent, "page_size": 2}, **NO_RETRY)
    pages = list(pager.pages)
    assert [len(p.secrets) for p in pages] == [2, 2, 1]
    assert {s.name for p in pages for s in p.secrets} == made

    secret = sorted(made)[0]
    for i in range(3):
        _add(client, secret, secret_value(f"gcp_smoke_list{i}").encode())
    versions = client.list_secret_versions(request={"parent": secret, "page_size": 2}, **NO_RETRY)
    # Newest first, across the page boundary.
    assert [v.name.rsplit("/", 1)[-1] for v in versions] == ["3", "2", "1"]


def test_list_filters_by_name_and_labels_and_refuses_what_it_does_not_understand(client: Any) -> None:
    parent = f"projects/filter-{secrets.token_hex(4)}"
    for secret_id, labels in (("bots-token", {"team": "bots"}), ("bots-key", {"team": "bots", "env": "prod"}),
                              ("other-token", {"team": "other"}), ("bots-decoy", {"team": "bots-team"})):
        client.create_secret(request={"parent": parent, "secret_id": secret_id,
                                      "secret": {"replication": {"automatic": {}}, "labels": labels}}, **NO_RETRY)

    def listed(text: str) -> set[str]:
        pager = client.list_secrets(request={"parent": parent, "filter": text}, **NO_RETRY)
        return {s.name.rsplit("/", 1)[-1] for s in pager}

    assert listed("") == {"bots-token", "bots-key", "other-token", "bots-decoy"}
    assert listed("name:bots-") == {"bots-token", "bots-key", "bots-decoy"}
    assert listed("name:bots- AND labels.team=bots") == {"bots-token", "bots-key"}
    assert listed("labels.team=bots labels.env=prod") == {"bots-key"}
    assert listed('labels.team="bots-team"') == {"bots-decoy"}
    assert listed("labels.team:bots") == {"bots-token", "bots-key", "bots-decoy"}
    assert listed("labels.env:*") == {"bots-key"}
    for refused in ("labels.team=bots OR labels.team=other", "NOT labels.team=bots", "(name:bots)",
                    "create_time>2020", "name=bots-token"):
        with pytest.raises(gexc.InvalidArgument):
            listed(refused)


def test_payload_checksums(client: Any) -> None:
    secret = _new_secret(client)
    value = secret_value("gcp_smoke_crc").encode()
    good = client.add_secret_version(
        request={"parent": secret, "payload": {"data": value, "data_crc32c": google_crc32c.value(value)}}, **NO_RETRY,
    )
    assert good.client_specified_payload_checksum
    got = client.access_secret_version(request={"name": good.name}, **NO_RETRY)
    assert "data_crc32c" in got.payload
    assert got.payload.data_crc32c == google_crc32c.value(value)

    with pytest.raises(gexc.InvalidArgument, match=r"(?i)checksum"):
        client.add_secret_version(
            request={"parent": secret, "payload": {"data": value, "data_crc32c": google_crc32c.value(value) ^ 1}},
            **NO_RETRY,
        )


def test_injected_failures_and_call_counts(gcp: GcpSecretManagerFake, client: Any) -> None:
    name = gcp.put(PROJECT, f"smoke-{secrets.token_hex(4)}", secret_value("gcp_smoke_inject").encode())
    before = gcp.calls["AccessSecretVersion"]
    gcp.fail_next(grpc.StatusCode.PERMISSION_DENIED, method="AccessSecretVersion")
    with pytest.raises(gexc.PermissionDenied):
        client.access_secret_version(request={"name": name}, **NO_RETRY)
    assert client.access_secret_version(request={"name": name}, **NO_RETRY).name == name

    gcp.outage = grpc.StatusCode.UNAVAILABLE
    try:
        with pytest.raises(gexc.ServiceUnavailable):
            client.get_secret_version(request={"name": name}, **NO_RETRY)
    finally:
        gcp.outage = None
    assert gcp.calls["AccessSecretVersion"] == before + 2


# -- TLS and service-account identity, as Google serves them ------------------------------------


def _tls_client(gcp_tls: GcpTls, key_json: bytes | None, *, self_signed_jwt: bool = True,
                trusted: bool = True) -> Any:
    credentials: Any = AnonymousCredentials()
    if key_json is not None:
        credentials = service_account.Credentials.from_service_account_info(
            json.loads(key_json), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    roots = gcp_tls.ca_path.read_bytes() if trusted else CertificateAuthority(gcp_tls.ca_path.parent / "other").cert.public_bytes(serialization.Encoding.PEM)
    transport = SecretManagerServiceGrpcTransport(
        host=gcp_tls.fake.target, credentials=credentials, ssl_channel_credentials=grpc.ssl_channel_credentials(roots),
        always_use_jwt_access=self_signed_jwt)
    return SecretManagerServiceClient(transport=transport)


def _tls_secret(gcp_tls: GcpTls) -> tuple[str, bytes]:
    value = secret_value("gcp_smoke_tls").encode()
    return gcp_tls.fake.put(PROJECT, f"smoke-{secrets.token_hex(4)}", value), value


@pytest.mark.parametrize("self_signed_jwt", [True, False], ids=["self-signed-jwt", "oauth-token"])
def test_tls_fake_serves_a_live_key_either_way(gcp_tls: GcpTls, self_signed_jwt: bool) -> None:
    name, value = _tls_secret(gcp_tls)
    key = gcp_tls.auth.issue_key(PROJECT)
    before = Counter(gcp_tls.auth.counts)
    client = _tls_client(gcp_tls, key, self_signed_jwt=self_signed_jwt)
    try:
        assert client.access_secret_version(request={"name": name}, **NO_RETRY).payload.data == value
    finally:
        client.transport.close()
    used = Counter(gcp_tls.auth.counts) - before
    # The official client signs its own JWT unless told otherwise; then it asks the token endpoint.
    assert used == (Counter(jwt=1) if self_signed_jwt else Counter(grant=1, token=1))


def test_tls_fake_refuses_no_credential_a_revoked_key_and_an_unknown_ca(gcp_tls: GcpTls) -> None:
    name, _ = _tls_secret(gcp_tls)
    anonymous = _tls_client(gcp_tls, None)
    revoked_key = gcp_tls.auth.issue_key(PROJECT, account="gone")
    gcp_tls.auth.revoke(revoked_key)
    revoked_jwt, revoked_oauth = (_tls_client(gcp_tls, revoked_key, self_signed_jwt=flag) for flag in (True, False))
    untrusting = _tls_client(gcp_tls, gcp_tls.auth.issue_key(PROJECT), trusted=False)
    before = Counter(gcp_tls.auth.counts)
    try:
        for client in (anonymous, revoked_jwt):
            with pytest.raises(gexc.Unauthenticated):
                client.access_secret_version(request={"name": name}, **NO_RETRY)
        # A failed token grant never reaches the API: gRPC reports the plugin's failure.
        with pytest.raises(gexc.GoogleAPICallError, match="invalid_grant"):
            revoked_oauth.access_secret_version(request={"name": name}, **NO_RETRY)
        with pytest.raises(gexc.ServiceUnavailable):
            untrusting.access_secret_version(request={"name": name}, **NO_RETRY)
    finally:
        for client in (anonymous, revoked_jwt, revoked_oauth, untrusting):
            client.transport.close()
    assert Counter(gcp_tls.auth.counts) - before == Counter(refused=2, **{"grant refused": 1})
