"""VaultProvider against a real OpenBao: KV v2 and v1, versions, policies, TLS, errors, no leaks."""

from __future__ import annotations

import json
import secrets
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hvac
import pytest

from botsecret.providers.base import AccessDenied, NotFound, RemoteRef, TlsError, Unavailable
from botsecret.providers.vault import VaultProvider
from botsecret.spec import VaultSource
from tests.harness import botsecrets as bs
from tests.harness import processes
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value
from tests.harness.operator_env import no_temp_dir, restarted_with, temp_file_fails
from tests.harness.operator_process import OperatorProcess
from tests.harness.pki import CertificateAuthority
from tests.harness.provider_checks import assert_no_leak, fetched
from tests.harness.vault import ROOT_TOKEN, OpenBao

pytestmark = pytest.mark.sync


def unique(label: str) -> str:
    return f"e2e/provider/{label}-{secrets.token_hex(4)}"


def canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def provider_for(address: str, *, token: str = ROOT_TOKEN, timeout: float = 5.0, **source: Any) -> VaultProvider:
    return VaultProvider(VaultSource(address=address, **source), token=token, timeout=timeout)


@pytest.fixture
def bao(vault: OpenBao) -> Any:
    return vault.client()


@pytest.fixture
def provider(vault: OpenBao) -> Iterator[VaultProvider]:
    p = provider_for(vault.address)
    yield p
    p.close()


def write_v2(bao: Any, path: str, data: Mapping[str, Any], mount: str = "secret") -> int:
    response = bao.secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)
    return int(response["data"]["version"])


def test_kv2_value_is_canonical_json_with_exact_strings(bao: Any, provider: VaultProvider) -> None:
    name = unique("kv2")
    data: dict[str, Any] = {"token": secret_value("vault_token") + "\n", "user": "bot", "nested": {"n": 1}}
    version = write_v2(bao, name, data)

    results = provider.fetch([RemoteRef(name)])

    got = fetched(results[RemoteRef(name)])
    assert got.value.reveal() == canonical(data)
    assert json.loads(got.value.reveal())["token"] == data["token"]
    assert got.version == str(version) == "1"
    assert_no_leak(results, data["token"])


def test_batch_with_one_missing_fails_only_that_one(bao: Any, provider: VaultProvider) -> None:
    stored = {unique(f"batch{i}"): {"v": secret_value(f"vault_batch{i}")} for i in range(3)}
    for name, data in stored.items():
        write_v2(bao, name, data)
    missing = unique("missing")
    refs = [RemoteRef(n) for n in stored] + [RemoteRef(missing)]

    results = provider.fetch(refs)

    assert set(results) == set(refs)
    for name, data in stored.items():
        assert fetched(results[RemoteRef(name)]).value.reveal() == canonical(data)
    error = results[RemoteRef(missing)]
    assert isinstance(error, NotFound)
    assert missing in error.message
    assert_no_leak(results, *(d["v"] for d in stored.values()))


def test_kv2_pinned_versions(bao: Any, provider: VaultProvider) -> None:
    name = unique("pinned")
    first, second = {"v": secret_value("vault_v1")}, {"v": secret_value("vault_v2")}
    write_v2(bao, name, first)
    write_v2(bao, name, second)
    expected = {
        RemoteRef(name): (second, "2"),
        RemoteRef(name, "1"): (first, "1"),
        RemoteRef(name, "2"): (second, "2"),
    }
    absent = [RemoteRef(name, "3"), RemoteRef(name, "0"), RemoteRef(name, "latest")]

    results = provider.fetch([*expected, *absent])

    for ref, (data, version) in expected.items():
        got = fetched(results[ref])
        assert (got.value.reveal(), got.version) == (canonical(data), version), ref
    for ref in absent:
        assert isinstance(results[ref], NotFound), (ref, results[ref])
    assert_no_leak(results, first["v"], second["v"])


def test_kv2_deleted_and_destroyed_versions_are_not_found(bao: Any, provider: VaultProvider) -> None:
    name = unique("deleted")
    first, second = {"v": secret_value("vault_del1")}, {"v": secret_value("vault_del2")}
    write_v2(bao, name, first)
    write_v2(bao, name, second)
    bao.secrets.kv.v2.delete_latest_version_of_secret(path=name)
    bao.secrets.kv.v2.destroy_secret_versions(path=name, versions=[1])
    refs = [RemoteRef(name), RemoteRef(name, "1"), RemoteRef(name, "2")]

    results = provider.fetch(refs)

    for ref in refs:
        assert isinstance(results[ref], NotFound), (ref, results[ref])
    assert_no_leak(results, first["v"], second["v"])
    # The condition must tell a deleted or destroyed version from a typo in the name.
    assert str(results[RemoteRef(name)]) == f"Vault secret 'secret/{name}' version 2 is deleted"
    assert str(results[RemoteRef(name, "2")]) == f"Vault secret 'secret/{name}' version 2 is deleted"
    assert str(results[RemoteRef(name, "1")]) == f"Vault secret 'secret/{name}' version 1 is destroyed"
    absent = RemoteRef(name, "9")
    assert str(provider.fetch([absent])[absent]) == f"Vault secret 'secret/{name}' version 9 not found"
    assert str(provider.fetch([RemoteRef(name + "-typo")])[RemoteRef(name + "-typo")]) == \
        f"Vault secret 'secret/{name}-typo' not found"


def test_kv1_mount(bao: Any, vault: OpenBao) -> None:
    mount = f"kv1-{secrets.token_hex(4)}"
    bao.sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    name, data = unique("kv1"), {"password": secret_value("vault_kv1") + "\n"}
    bao.secrets.kv.v1.create_or_update_secret(path=name, secret=data, mount_point=mount)
    p = provider_for(vault.address, mount=mount, kv_version=1)
    missing, pinned = RemoteRef(unique("absent")), RemoteRef(name, "1")
    try:
        results = p.fetch([RemoteRef(name), missing, pinned])
    finally:
        p.close()

    got = fetched(results[RemoteRef(name)])
    assert (got.value.reveal(), got.version) == (canonical(data), "")
    assert isinstance(results[missing], NotFound)
    assert isinstance(results[pinned], NotFound)
    assert "KV v1" in results[pinned].message  # type: ignore[union-attr]
    assert_no_leak(results, data["password"])


def test_policy_without_read_is_access_denied(bao: Any, vault: OpenBao) -> None:
    allowed, forbidden = unique("allowed"), unique("forbidden")
    allowed_data, forbidden_data = {"v": secret_value("vault_allowed")}, {"v": secret_value("vault_forbidden")}
    write_v2(bao, allowed, allowed_data)
    write_v2(bao, forbidden, forbidden_data)
    policy = f"reader-{secrets.token_hex(4)}"
    bao.sys.create_or_update_policy(name=policy, policy=f'path "secret/data/{allowed}" {{ capabilities = ["read"] }}')
    token = bao.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    p = provider_for(vault.address, token=token)
    stranger = provider_for(vault.address, token="not-a-token")
    try:
        results = p.fetch([RemoteRef(allowed), RemoteRef(forbidden), RemoteRef(forbidden, "1")])
        refused = stranger.fetch([RemoteRef(allowed)])
    finally:
        p.close()
        stranger.close()

    assert fetched(results[RemoteRef(allowed)]).value.reveal() == canonical(allowed_data)
    for ref in (RemoteRef(forbidden), RemoteRef(forbidden, "1")):
        assert isinstance(results[ref], AccessDenied), (ref, results[ref])
        assert forbidden in results[ref].message  # type: ignore[union-attr]
    assert isinstance(refused[RemoteRef(allowed)], AccessDenied)
    for text in (repr(p), repr(stranger), repr(results), repr(refused)):
        assert token not in text
    assert_no_leak(results, allowed_data["v"], forbidden_data["v"])


def test_namespace(bao: Any, vault: OpenBao) -> None:
    namespace = f"team-{secrets.token_hex(4)}"
    bao.sys.create_namespace(path=namespace)
    scoped = hvac.Client(url=vault.address, token=ROOT_TOKEN, namespace=namespace)
    scoped.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    name, data = unique("ns"), {"v": secret_value("vault_namespaced")}
    write_v2(scoped, name, data)
    inside = provider_for(vault.address, namespace=namespace)
    outside = provider_for(vault.address)
    try:
        assert fetched(inside.fetch([RemoteRef(name)])[RemoteRef(name)]).value.reveal() == canonical(data)
        assert isinstance(outside.fetch([RemoteRef(name)])[RemoteRef(name)], NotFound)
    finally:
        inside.close()
        outside.close()


def test_unreachable_server_is_unavailable_quickly() -> None:
    p = provider_for(f"http://127.0.0.1:{processes.free_port()}", timeout=2.0)  # nothing listens there
    try:
        start = time.monotonic()
        with pytest.raises(Unavailable):
            p.fetch([RemoteRef("a"), RemoteRef("b", "2")])
        assert time.monotonic() - start < 10
    finally:
        p.close()


@pytest.fixture
def tls_vault(vault_tls: OpenBao) -> tuple[str, Path]:
    """The HTTPS OpenBao dev server with its own CA: (address, CA file)."""
    return vault_tls.address, vault_tls.ca_path


def _ssl_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_tls_with_ca_bundle_and_no_temp_dir(tls_vault: tuple[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    address, ca = tls_vault
    name, data = unique("tls"), {"v": secret_value("vault_tls")}
    write_v2(hvac.Client(url=address, token=ROOT_TOKEN, verify=str(ca)), name, data)
    # As under the shipped Deployment's read-only root: no temporary file can be written.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "absent"))
    trusting = provider_for(address, ca_bundle=ca.read_text())
    untrusting = provider_for(address)  # the dev CA is in no system bundle
    insecure = provider_for(address, ca_bundle=CertificateAuthority(tmp_path / "other").cert_path.read_text(),
                            insecure_skip_verify=True)
    try:
        assert fetched(trusting.fetch([RemoteRef(name)])[RemoteRef(name)]).value.reveal() == canonical(data)
        with pytest.raises(TlsError, match="SSLError"):
            untrusting.fetch([RemoteRef(name)])
        assert fetched(insecure.fetch([RemoteRef(name)])[RemoteRef(name)]).value.reveal() == canonical(data)
    finally:
        for p in (trusting, untrusting, insecure):
            p.close()


def test_a_wrong_ca_is_refused_even_with_the_right_one_in_the_environment(
    tls_vault: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, ca = tls_vault
    name = unique("wrongca")
    write_v2(hvac.Client(url=address, token=ROOT_TOKEN, verify=str(ca)), name, {"v": secret_value("vault_wrong_ca")})
    # requests would trust this bundle for a client that names no CA; the source names its own.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    other_ca = CertificateAuthority(tmp_path / "other").cert_path.read_text()
    p = provider_for(address, ca_bundle=other_ca)
    try:
        with pytest.raises(TlsError, match="TLS handshake failed"):
            p.fetch([RemoteRef(name)])
    finally:
        p.close()


def test_a_ca_bundle_without_a_certificate_is_refused_by_field_name(tls_vault: tuple[str, Path]) -> None:
    address, _ = tls_vault
    planted = secret_value("vault_bad_ca")
    with pytest.raises(AccessDenied) as refused:
        provider_for(address, ca_bundle=f"-----BEGIN CERTIFICATE-----\n{planted}\n-----END CERTIFICATE-----\n")
    assert "caBundle" in refused.value.message
    assert_no_leak(refused.value, planted)


@pytest.mark.operator_process
def test_operator_with_no_writable_temp_dir_syncs_from_tls_vault(
    operator: OperatorProcess, kube: Kube, namespace: str, vault_tls: OpenBao, artifacts: Path,
) -> None:
    """The shipped Deployment has a read-only root and no writable volume: the CA of a source
    must reach the TLS connection without a file."""
    env = no_temp_dir(artifacts / "no-temp-dir")
    assert temp_file_fails(env), "the test world failed to take the temporary directory away"
    name, value = unique("rootro"), secret_value("vault_read_only_root")
    vault_tls.client().secrets.kv.v2.create_or_update_secret(path=name, secret={"v": value})
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "vault-ca"},
                                                   "stringData": {"ca.crt": vault_tls.ca_path.read_text()}})
    data = [{"key": "V", "remoteRef": {"name": name, "property": "v"}}]
    with restarted_with(operator, **env):
        bs.create(kube, namespace, "from-secret", {"sources": [bs.vault_source(
            kube, namespace, vault_tls.address, name="from-secret", caSecretRef={"name": "vault-ca"})], "data": data})
        bs.create(kube, namespace, "from-bundle", {"sources": [bs.vault_source(
            kube, namespace, vault_tls.address, name="from-bundle", caBundle=vault_tls.ca_path.read_text())],
            "data": data})
        for bot in ("from-secret", "from-bundle"):
            bs.wait_ready(kube, namespace, bot, reason="Synced", timeout=60)
            assert bs.secret_data(kube, namespace, bot) == {"V": value.encode()}
