"""The Secret Manager fake answers the official client the way Google does."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud.secretmanager_v1 import types

from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.leaks import secret_value

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
