"""GcpProvider against the in-process Secret Manager: values, versions and error classes."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from botsecret.providers.base import (
    AccessDenied,
    Fetched,
    NotFound,
    ProviderError,
    RemoteRef,
    Throttled,
    Unavailable,
)
from botsecret.providers.gcp import GcpProvider
from botsecret.spec import GcpSource
from tests.harness import botsecrets as bs
from tests.harness import leaks
from tests.harness.cluster_fixtures import Kube
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.gcp_fixtures import GcpTls
from tests.harness.operator_env import restarted_with
from tests.harness.operator_process import OperatorProcess

pytestmark = pytest.mark.sync

PROJECT = "botsecret-provider"
TIMEOUT = 1.0

MakeProvider = Callable[..., GcpProvider]


@pytest.fixture
def make_provider(gcp: GcpSecretManagerFake) -> Iterator[MakeProvider]:
    made: list[GcpProvider] = []

    def make(*, location: str | None = None, endpoint: str | None = None, timeout: float = TIMEOUT) -> GcpProvider:
        source = GcpSource(project=PROJECT, location=location, endpoint=endpoint or gcp.endpoint)
        provider = GcpProvider(source, timeout=timeout)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture(autouse=True)
def _healthy(gcp: GcpSecretManagerFake) -> Iterator[None]:
    yield
    gcp.outage, gcp.latency, gcp.corrupt_checksums = None, 0.0, False


def _seed(gcp: GcpSecretManagerFake, label: str, count: int = 1, *, location: str | None = None,
          project: str = PROJECT) -> tuple[str, list[bytes]]:
    secret_id = f"{label}-{secrets.token_hex(4)}"
    values = [leaks.secret_value(f"{label}{i + 1}").encode() for i in range(count)]
    for value in values:
        gcp.put(project, secret_id, value, location=location)
    return secret_id, values


def _clean(error: Fetched | ProviderError) -> ProviderError:
    """The error, after proving no test value shows in its message or repr."""
    assert isinstance(error, ProviderError), f"expected an error, got {error!r}"
    text = f"{error} {error!r} {error.message}"
    assert not [v for v in leaks.ISSUED if v in text], "a secret value leaked into an error message"
    return error


def _fetched(result: Fetched | ProviderError) -> Fetched:
    assert isinstance(result, Fetched), f"expected a value, got {result!r}"
    return result


def test_latest_and_pinned_versions(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    secret_id, (v1, v2, v3) = _seed(gcp, "gcpver", 3)
    latest, pinned = RemoteRef(secret_id), RemoteRef(secret_id, "1")
    got = make_provider().fetch([latest, pinned, RemoteRef(secret_id, "latest")])

    assert (_fetched(got[latest]).value.reveal(), _fetched(got[latest]).version) == (v3, "3")
    assert (_fetched(got[pinned]).value.reveal(), _fetched(got[pinned]).version) == (v1, "1")
    assert _fetched(got[RemoteRef(secret_id, "latest")]).version == "3"
    assert v2 not in {f.value.reveal() for f in got.values() if isinstance(f, Fetched)}


def test_full_names_and_regional_sources(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    other_id, (other,) = _seed(gcp, "gcpother", project="another-project")
    regional_id, (regional,) = _seed(gcp, "gcpregion", location="europe-west4")
    full = RemoteRef(f"projects/another-project/secrets/{other_id}")
    full_pinned = RemoteRef(f"projects/another-project/secrets/{other_id}/versions/1")

    got = make_provider().fetch([full, full_pinned])
    assert _fetched(got[full]).value.reveal() == other
    assert _fetched(got[full_pinned]).version == "1"

    by_id = RemoteRef(regional_id)
    assert _fetched(make_provider(location="europe-west4").fetch([by_id])[by_id]).value.reveal() == regional
    # The same id under the global parent is a different, absent secret.
    assert isinstance(_clean(make_provider().fetch([by_id])[by_id]), NotFound)


def test_missing_secret_version_and_bad_names_are_not_found(gcp: GcpSecretManagerFake,
                                                            make_provider: MakeProvider) -> None:
    secret_id, _ = _seed(gcp, "gcpmiss")
    missing, no_version, bad = RemoteRef("gcp-does-not-exist"), RemoteRef(secret_id, "9"), RemoteRef("a/b c")
    before = gcp.calls["AccessSecretVersion"]
    got = make_provider().fetch([missing, no_version, bad])

    assert isinstance(_clean(got[missing]), NotFound)
    assert "gcp-does-not-exist" in str(got[missing])
    assert isinstance(_clean(got[no_version]), NotFound)
    assert isinstance(_clean(got[bad]), NotFound)
    # A name that cannot be a secret is refused before it reaches Google.
    assert gcp.calls["AccessSecretVersion"] == before + 2


def test_disabled_and_destroyed_versions_are_not_found(gcp: GcpSecretManagerFake,
                                                       make_provider: MakeProvider) -> None:
    secret_id, _ = _seed(gcp, "gcpoff", 3)
    gcp.set_state(f"projects/{PROJECT}/secrets/{secret_id}/versions/1", "DISABLED")
    gcp.set_state(f"projects/{PROJECT}/secrets/{secret_id}/versions/2", "DESTROYED")
    provider = make_provider()
    one, two, latest = RemoteRef(secret_id, "1"), RemoteRef(secret_id, "2"), RemoteRef(secret_id)
    got = provider.fetch([one, two, latest])

    assert isinstance(_clean(got[one]), NotFound)
    assert str(got[one]) == f"gcp secret {secret_id!r} version 1 is disabled"
    assert isinstance(_clean(got[two]), NotFound)
    assert str(got[two]) == f"gcp secret {secret_id!r} version 2 is destroyed"
    assert _fetched(got[latest]).version == "3"

    # Disabling the newest version does not make "latest" fall back to an older one.
    gcp.set_state(f"projects/{PROJECT}/secrets/{secret_id}/versions/3", "DISABLED")
    error = _clean(provider.fetch([latest])[latest])
    assert isinstance(error, NotFound)
    assert error.message == f"gcp secret {secret_id!r} version latest is disabled"


def test_denied_is_access_denied_and_throttling_is_unavailable(gcp: GcpSecretManagerFake,
                                                               make_provider: MakeProvider) -> None:
    secret_id, (value,) = _seed(gcp, "gcpdeny")
    provider = make_provider()
    for code, expected in [(grpc.StatusCode.PERMISSION_DENIED, AccessDenied),
                           (grpc.StatusCode.UNAUTHENTICATED, AccessDenied),
                           (grpc.StatusCode.RESOURCE_EXHAUSTED, Throttled),
                           (grpc.StatusCode.INTERNAL, Unavailable)]:
        gcp.fail_next(code, method="AccessSecretVersion")
        ref = RemoteRef(secret_id)
        error = _clean(provider.fetch([ref])[ref])
        assert type(error) is expected, f"{code.name} -> {error!r}"
    # Throttling is an answer from a live store: the rest of the batch is still read.
    gcp.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, method="AccessSecretVersion")
    first, second = RemoteRef(secret_id, "latest"), RemoteRef(secret_id, "1")
    got = provider.fetch([first, second])
    assert isinstance(got[first], Unavailable)
    assert _fetched(got[second]).value.reveal() == value


def test_outage_is_unavailable_fast_and_recovers(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    secret_id, (value,) = _seed(gcp, "gcpdown")
    refs = [RemoteRef(secret_id), RemoteRef(secret_id, "1"), RemoteRef("gcp-other")]
    provider = make_provider()
    before = gcp.calls["AccessSecretVersion"]
    gcp.outage = grpc.StatusCode.UNAVAILABLE
    started = time.monotonic()
    got = provider.fetch(refs)
    elapsed = time.monotonic() - started

    assert all(isinstance(_clean(got[r]), Unavailable) for r in refs)
    assert elapsed < 3, f"outage took {elapsed:.1f} s to report"
    # One failed call settles the batch; the client library's own retries are off.
    assert gcp.calls["AccessSecretVersion"] == before + 1

    gcp.outage = None
    assert _fetched(provider.fetch(refs[:1])[refs[0]]).value.reveal() == value


def test_slow_store_times_out_as_unavailable(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    secret_id, _ = _seed(gcp, "gcpslow")
    refs = [RemoteRef(secret_id), RemoteRef(secret_id, "1")]
    gcp.latency = 3.0
    started = time.monotonic()
    got = make_provider(timeout=0.5).fetch(refs)
    elapsed = time.monotonic() - started
    assert all(isinstance(_clean(got[r]), Unavailable) for r in refs)
    assert "DEADLINE_EXCEEDED" in str(got[refs[0]])
    assert elapsed < 2, f"a 0.5 s timeout took {elapsed:.1f} s"


def test_stopped_server_is_unavailable() -> None:
    fake = GcpSecretManagerFake()
    fake.start()
    value = leaks.secret_value("gcpstopped").encode()
    fake.put(PROJECT, "gcp-stopped", value)
    provider = GcpProvider(GcpSource(project=PROJECT, endpoint=fake.endpoint), timeout=TIMEOUT)
    try:
        ref = RemoteRef("gcp-stopped")
        assert _fetched(provider.fetch([ref])[ref]).value.reveal() == value
        fake.stop()
        started = time.monotonic()
        error = _clean(provider.fetch([ref])[ref])
        assert isinstance(error, Unavailable)
        assert time.monotonic() - started < 3
    finally:
        provider.close()
        fake.stop()


def test_checksum_mismatch_is_unavailable(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    secret_id, _ = _seed(gcp, "gcpcrc")
    gcp.corrupt_checksums = True
    ref = RemoteRef(secret_id)
    error = _clean(make_provider().fetch([ref])[ref])
    assert isinstance(error, Unavailable)
    assert "checksum" in error.message


def test_close_then_fetch_reconnects(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    secret_id, (value,) = _seed(gcp, "gcpclose")
    provider, ref = make_provider(), RemoteRef(secret_id)
    assert _fetched(provider.fetch([ref])[ref]).value.reveal() == value
    provider.close()
    assert _fetched(provider.fetch([ref])[ref]).value.reveal() == value


def test_debug_logging_never_records_payloads(gcp: GcpSecretManagerFake, make_provider: MakeProvider) -> None:
    secret_id, (value,) = _seed(gcp, "gcplog")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    google_logger, handler = logging.getLogger("google"), Keep(level=logging.DEBUG)
    old_level = google_logger.level
    google_logger.addHandler(handler)
    google_logger.setLevel(logging.DEBUG)
    try:
        ref = RemoteRef(secret_id)
        assert _fetched(make_provider().fetch([ref])[ref]).value.reveal() == value
    finally:
        google_logger.removeHandler(handler)
        google_logger.setLevel(old_level)
    dumped = " ".join(f"{r.getMessage()} {vars(r)}" for r in records)
    assert value.decode() not in dumped
    assert base64.b64encode(value).decode() not in dumped


def _service_account_json(private_key_pem: str) -> bytes:
    return json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
        "private_key": private_key_pem, "client_email": f"bot@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "http://127.0.0.1:9/token",
    }).encode()


def test_unusable_key_is_access_denied_without_quoting_it(gcp: GcpSecretManagerFake) -> None:
    # A key whose PEM is garbage: the parse error must not carry the text of the key.
    planted = leaks.secret_value("gcpkey")
    bad = _service_account_json(f"-----BEGIN PRIVATE KEY-----\n{planted}\n-----END PRIVATE KEY-----\n")
    for credentials in (bad, planted.encode(), b"{}"):
        provider = GcpProvider(GcpSource(project=PROJECT, endpoint="127.0.0.1:1"), credentials_json=credentials)
        ref = RemoteRef("anything")
        error = _clean(provider.fetch([ref])[ref])
        provider.close()
        assert isinstance(error, AccessDenied), f"{error!r}"
        assert planted not in str(error.__cause__ or "")


def test_tls_to_a_plaintext_server_is_unavailable_within_the_timeout(gcp: GcpSecretManagerFake) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    secret_id, _ = _seed(gcp, "gcptls")
    provider = GcpProvider(GcpSource(project=PROJECT, endpoint=f"127.0.0.1:{gcp.port}"),
                           credentials_json=_service_account_json(pem), timeout=TIMEOUT)
    ref = RemoteRef(secret_id)
    before = gcp.calls["AccessSecretVersion"]
    started = time.monotonic()
    try:
        error = _clean(provider.fetch([ref])[ref])
    finally:
        provider.close()
    assert isinstance(error, Unavailable), f"{error!r}"
    assert time.monotonic() - started < TIMEOUT + 2
    assert gcp.calls["AccessSecretVersion"] == before  # the handshake never reached the service


# -- through the operator: a service-account key, over TLS --------------------------------------


@pytest.fixture(scope="module")
def tls_operator(operator: OperatorProcess, gcp_tls: GcpTls) -> Iterator[OperatorProcess]:
    # gRPC takes its default roots from this file when it is set: the operator trusts the fake's
    # CA the way it trusts Google's, with no setting in the BotSecret.
    with restarted_with(operator, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(gcp_tls.ca_path)) as running:
        yield running


def _key_source(kube: Kube, namespace: str, gcp_tls: GcpTls, key_json: bytes) -> dict[str, object]:
    # The private key is a credential: the leak scan at the end searches for it too.
    leaks.ISSUED.append(json.loads(key_json)["private_key"])
    ref = bs.credentials_secret(kube, namespace, "gcp-key", {"credentials.json": key_json.decode()})
    return bs.gcp_source(gcp_tls.endpoint, project=PROJECT, credentialsSecretRef=ref)


@pytest.mark.operator_process
def test_operator_syncs_with_a_service_account_key_over_tls(
    tls_operator: OperatorProcess, kube: Kube, namespace: str, gcp_tls: GcpTls,
) -> None:
    secret_id, value = f"{namespace}-tls", leaks.secret_value("gcp_tls_key").encode()
    gcp_tls.fake.put(PROJECT, secret_id, value)
    source = _key_source(kube, namespace, gcp_tls, gcp_tls.auth.issue_key(PROJECT))
    before, calls = Counter(gcp_tls.auth.counts), gcp_tls.fake.calls["AccessSecretVersion"]

    bs.create(kube, namespace, "bot", {"sources": [source], "data": [{"key": "K", "remoteRef": {"name": secret_id}}]})

    bs.wait_ready(kube, namespace, "bot", reason="Synced", timeout=60)
    assert bs.secret_data(kube, namespace, "bot") == {"K": value}
    used = Counter(gcp_tls.auth.counts) - before
    # The key's credential (a self-signed JWT, or a token from its token_uri) was checked and accepted.
    assert used["jwt"] + used["token"] >= 1 and used["refused"] == 0, used
    assert gcp_tls.fake.calls["AccessSecretVersion"] > calls


@pytest.mark.operator_process
def test_operator_with_a_revoked_key_is_access_denied(
    tls_operator: OperatorProcess, kube: Kube, namespace: str, gcp_tls: GcpTls,
) -> None:
    secret_id, value = f"{namespace}-revoked", leaks.secret_value("gcp_tls_revoked").encode()
    gcp_tls.fake.put(PROJECT, secret_id, value)
    key = gcp_tls.auth.issue_key(PROJECT, account="revoked")
    gcp_tls.auth.revoke(key)
    source = _key_source(kube, namespace, gcp_tls, key)
    refused = gcp_tls.fake.calls["unauthenticated"]

    bs.create(kube, namespace, "bot", {"sources": [source], "data": [{"key": "K", "remoteRef": {"name": secret_id}}]})

    body = bs.wait_ready(kube, namespace, "bot", status="False", reason="AccessDenied", timeout=60)
    message = bs.ready(body)["message"]  # type: ignore[index]
    assert secret_id in message and value.decode() not in message
    assert json.loads(key)["private_key_id"] not in message
    assert bs.secret_data(kube, namespace, "bot") is None
    assert gcp_tls.fake.calls["unauthenticated"] > refused
