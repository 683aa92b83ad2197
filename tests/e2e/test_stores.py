"""End to end: stores are the trust boundary. A BotSecret names a store; only what an admin wrote
into a store decides which identity is used and where credentials go. The apiserver's audit log,
a recording sink on loopback and the providers themselves are the witnesses."""

from __future__ import annotations

import base64
import concurrent.futures
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.test_tenancy import k8s_auth, operator_requests, teams  # noqa: F401 - fixtures
from tests.harness import botsecrets as bs
from tests.harness import stores as st
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane, write_kubeconfig
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.leaks import secret_value
from tests.harness.operator_process import OPERATOR_NAMESPACE
from tests.harness.processes import free_port
from tests.harness.recording_proxy import RecordingProxy
from tests.harness.sink import Sink
from tests.harness.vault import ROOT_TOKEN, OpenBao, bind_role
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.tenancy


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.start()
    yield server
    server.stop()


def _vault_token_store(kube: Kube, namespace: str, name: str, address: str, token: str = ROOT_TOKEN) -> None:
    bs.credentials_secret(kube, namespace, f"{name}-token", {"token": token})
    st.create_store(kube, namespace, name, {"vault": {"address": address,
                                                      "credentialsSecretRef": {"name": f"{name}-token"}}})


def _store_ready(kube: Kube, namespace: str | None, name: str, status: str = "True",
                 reason: str | None = None) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = st.get_store(kube, namespace, name)
        ready = bs.ready(body)
        if ready and ready["status"] == status and (reason is None or ready["reason"] == reason):
            return ready
        return None
    return wait_for(check, what=f"store {name} Ready={status} {reason}")


def _sources(name: str, kind: str = "BotSecretStore") -> list[dict[str, Any]]:
    return [{"name": "s", "storeRef": {"kind": kind, "name": name}}]


@pytest.mark.control_plane
def test_unusable_stores_are_reported_and_nothing_is_minted_or_read(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, k8s_auth: str,  # noqa: F811
    teams: tuple[str, str],  # noqa: F811
) -> None:
    team_a, team_b = teams
    _vault_token_store(kube, team_a, "vault-a", vault.address)
    cluster_store = f"only-a-{secrets.token_hex(3)}"
    st.create_cluster_store(kube, cluster_store, {"vault": {
        "address": vault.address, "serviceAccountName": "bot",
        "auth": {"kubernetes": {"role": f"{team_a}-bot", "mount": k8s_auth}}}},
        conditions=[{"namespaces": [team_a]}])
    try:
        _store_ready(kube, team_a, "vault-a")
        started = time.time()
        data = [{"key": "V", "remoteRef": {"name": f"{team_a}/bot", "property": "v"}}]
        # storeRef has no namespace field: the apiserver prunes it, the store is looked up in team-b.
        bs.create(kube, team_b, "other-ns", {"sources": [{"name": "s", "storeRef": {
            "name": "vault-a", "namespace": team_a}}], "data": data})
        bs.create(kube, team_b, "excluded", {"sources": _sources(cluster_store, "ClusterBotSecretStore"),
                                             "data": data})
        bs.create(kube, team_b, "missing", {"sources": _sources("nope"), "data": data})

        other = bs.ready(bs.wait_ready(kube, team_b, "other-ns", status="False", reason="StoreNotFound"))
        assert f"BotSecretStore 'vault-a' not found in namespace {team_b!r}" in other["message"]
        excluded = bs.ready(bs.wait_ready(kube, team_b, "excluded", status="False", reason="StoreNotAllowed"))
        assert f"ClusterBotSecretStore {cluster_store!r} does not admit namespace {team_b!r}" in excluded["message"]
        missing = bs.ready(bs.wait_ready(kube, team_b, "missing", status="False", reason="StoreNotFound"))
        assert "BotSecretStore 'nope'" in missing["message"]
        for name in ("other-ns", "excluded", "missing"):
            assert bs.secret_data(kube, team_b, name) is None

        assert operator_requests(cluster, since=started, resource="serviceaccounts", subresource="token") == []
        assert operator_requests(cluster, since=started, namespace=team_b, resource="secrets") == []
        reads_in_a = operator_requests(cluster, since=started, namespace=team_a, resource="secrets")
        # At most the store's own credential poll; never for a BotSecret of team-b.
        assert {e["objectRef"]["name"] for e in reads_in_a} <= {"vault-a-token"}
    finally:
        st.delete_cluster_store(kube, cluster_store)


def _tenant(kube: Kube, cluster: ControlPlane, namespace: str) -> Kube:
    """A person bound to the built-in edit role in ``namespace`` (which aggregates botsecret-edit)."""
    assert cluster.ca is not None
    user = f"alice-{secrets.token_hex(3)}"
    cert, key = cluster.ca.issue(user, cn=user)
    kube.rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "alice-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    path = write_kubeconfig(cluster.workdir / f"{user}.kubeconfig", server=cluster.server, ca=cluster.ca_path,
                            user=user, cert=cert, key=key)
    tenant = kube_for(path)

    def may_create_botsecrets() -> bool:
        from kubernetes import client
        review = client.AuthorizationV1Api(kube.api).create_subject_access_review({"spec": {
            "user": user, "resourceAttributes": {"verb": "create", "group": "botsecret.dev",
                                                 "resource": "botsecrets", "namespace": namespace}}})
        return bool(review.status.allowed)
    wait_for(may_create_botsecrets, what="the edit role to aggregate botsecret-edit")
    return tenant


def _refused(call: Any) -> ApiException:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value


@pytest.mark.control_plane
def test_a_tenant_with_botsecret_rights_cannot_mint_tokens_or_send_credentials(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, sink: Sink,
    teams: tuple[str, str],  # noqa: F811
) -> None:
    team_a, team_b = teams
    # What an admin set up: a token Secret, a store that uses it, a cluster store for team-b only.
    _vault_token_store(kube, team_a, "legit", vault.address)
    value = secret_value("tenant_legit")
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{team_a}/legit", secret={"v": value})
    admin_store = f"team-b-only-{secrets.token_hex(3)}"
    st.create_cluster_store(kube, admin_store, {"vault": {"address": vault.address, "credentialsSecretRef": {
        "name": "legit-token", "namespace": team_a}}}, conditions=[{"namespaces": [team_b]}])
    tenant = _tenant(kube, cluster, team_a)
    started = time.time()
    group, version = "botsecret.dev", "v1alpha1"
    data = [{"key": "V", "remoteRef": {"name": f"{team_a}/legit", "property": "v"}}]

    def botsecret(name: str, sources: list[dict[str, Any]]) -> dict[str, Any]:
        return {"apiVersion": f"{group}/{version}", "kind": "BotSecret", "metadata": {"name": name},
                "spec": {"sources": sources, "data": data}}

    try:
        inline_attempts = {
            "mint": {"name": "s", "vault": {"address": sink.address, "serviceAccountName": "bot",
                                            "auth": {"kubernetes": {"role": "x"}}}},
            "send": {"name": "s", "aws": {"region": "us-east-1", "endpoint": sink.address,
                                          "credentialsSecretRef": {"name": "legit-token"}}},
            "both": {"name": "s", "storeRef": {"name": "legit"}, "vault": {"address": sink.address}},
        }
        for name, source in inline_attempts.items():
            refused = _refused(lambda n=name, s=source: tenant.custom.create_namespaced_custom_object(
                group, version, team_a, "botsecrets", botsecret(n, [s])))
            assert refused.status == 422 and "inline provider settings" in str(refused.body), name

        store = st.store_body("BotSecretStore", "mine", {"vault": {"address": sink.address,
                                                                   "credentialsSecretRef": {"name": "legit-token"}}})
        assert _refused(lambda: tenant.custom.create_namespaced_custom_object(
            group, version, team_a, "botsecretstores", store)).status == 403
        assert _refused(lambda: tenant.custom.patch_namespaced_custom_object(
            group, version, team_a, "botsecretstores", "legit", {"spec": {"provider": {"vault": {
                "address": sink.address}}}}, _content_type="application/merge-patch+json")).status == 403
        cluster_body = st.store_body("ClusterBotSecretStore", "mine", {"vault": {"address": sink.address}},
                                     conditions=[{"namespaceSelector": {}}])
        assert _refused(lambda: tenant.custom.create_cluster_custom_object(
            group, version, "clusterbotsecretstores", cluster_body)).status == 403

        # Through the fields a BotSecret does have: a store admitted elsewhere, and the legit one.
        tenant.custom.create_namespaced_custom_object(group, version, team_a, "botsecrets", botsecret(
            "borrow", _sources(admin_store, "ClusterBotSecretStore")))
        tenant.custom.create_namespaced_custom_object(group, version, team_a, "botsecrets",
                                                      botsecret("legit", _sources("legit")))
        bs.wait_ready(kube, team_a, "borrow", status="False", reason="StoreNotAllowed")
        bs.wait_secret(kube, team_a, "legit", {"V": value.encode()})
    finally:
        st.delete_cluster_store(kube, admin_store)
    assert sink.requests == [], "nothing reached the address the tenant chose"
    assert operator_requests(cluster, since=started, namespace=team_a, resource="serviceaccounts",
                             subresource="token") == []


def _annotation_hmacs(kube: Kube, namespace: str, name: str) -> list[str]:
    annotations = kube.apps.read_namespaced_deployment(name, namespace).spec.template.metadata.annotations or {}
    return [v for k, v in annotations.items() if k.startswith("botsecret.dev") or "botsecret" in k]


def test_the_same_data_in_two_namespaces_has_different_fingerprints(
    operator: Any, kube: Kube, aws: MotoServer, teams: tuple[str, str],  # noqa: F811
) -> None:
    shared = f"shared/{secrets.token_hex(3)}"
    sm = aws.client()
    sm.create_secret(Name=shared, SecretString=secret_value("same_v1"))
    for team in teams:
        wl.deployment(kube, team, "app", **wl.uses_all("bot"))
        bs.create(kube, team, "bot", {
            "sources": [bs.aws_source(kube, team, aws.endpoint)],
            "data": [{"key": "K", "remoteRef": {"name": shared}}],
            "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": "0s"}})
        bs.wait_ready(kube, team, "bot")
    sm.put_secret_value(SecretId=shared, SecretString=secret_value("same_v2"))
    for team in teams:
        bs.force_sync(kube, team, "bot")
    for team in teams:
        wait_for(lambda team=team: wl.replicasets(kube, team, "app") == 2, what=f"the restart in {team}")
    status = [bs.get(kube, team, "bot")["status"] for team in teams]
    assert status[0]["dataHMAC"] != status[1]["dataHMAC"]
    assert status[0]["hmacKeyId"] != status[1]["hmacKeyId"]
    marks = [_annotation_hmacs(kube, team, "app") for team in teams]
    assert marks[0] and marks[1] and set(marks[0]).isdisjoint(marks[1])


@pytest.mark.operator_process
@pytest.mark.operator_metrics
def test_switching_to_namespace_keys_restarts_nothing(
    operator: Any, kube: Kube, aws: MotoServer, namespace: str,
) -> None:
    from botsecret.fingerprint import data_hmac, namespace_key
    from botsecret.rollout import key_id
    from botsecret.runtime import HMAC_KEY_SECRET
    from botsecret.values import SecretValue

    count = 20
    sm = aws.client()
    source = bs.aws_source(kube, namespace, aws.endpoint)
    values = {}
    for i in range(count):
        values[i] = secret_value(f"switch{i}")
        sm.create_secret(Name=f"{namespace}/s{i}", SecretString=values[i])
        wl.deployment(kube, namespace, f"app{i}", **wl.uses_all(f"bot{i}"))
        bs.create(kube, namespace, f"bot{i}", {
            "sources": [source], "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/s{i}"}}],
            "rollout": {"targets": [{"kind": "Deployment", "name": f"app{i}"}], "debounce": "0s"}})
    for i in range(count):
        wait_for(lambda i=i: (bs.get(kube, namespace, f"bot{i}").get("status") or {}).get("rollout"),
                 what=f"bot{i}'s baseline")
        wait_for(lambda i=i: wl.replicasets(kube, namespace, f"app{i}") == 1, what=f"app{i}'s ReplicaSet")
    replicasets = sum(wl.replicasets(kube, namespace, f"app{i}") for i in range(count))

    # What the operator before per-namespace keys left in status: HMACs under the cluster key.
    cluster_key = base64.b64decode(kube.core.read_namespaced_secret(HMAC_KEY_SECRET, OPERATOR_NAMESPACE).data["key"])
    operator.stop()
    for i in range(count):
        body = bs.get(kube, namespace, f"bot{i}")
        old = data_hmac(cluster_key, {"K": SecretValue(values[i].encode())})
        rollout = [{**entry, "dataHMAC": old} for entry in body["status"]["rollout"]]
        kube.custom.patch_namespaced_custom_object_status(
            "botsecret.dev", "v1alpha1", namespace, "botsecrets", f"bot{i}",
            {"status": {"dataHMAC": old, "hmacKeyId": key_id(cluster_key), "rollout": rollout}},
            _content_type="application/merge-patch+json")
    operator.start()
    restarts_before = operator.metric("botsecret_restarts_total", kind="Deployment")
    new_id = key_id(namespace_key(cluster_key, namespace))
    for i in range(count):
        bs.force_sync(kube, namespace, f"bot{i}")
    for i in range(count):
        wait_for(lambda i=i: bs.get(kube, namespace, f"bot{i}")["status"].get("hmacKeyId") == new_id
                 and bs.condition(bs.get(kube, namespace, f"bot{i}"), "RolloutComplete") is not None,
                 what=f"bot{i} on the namespace key")
    assert sum(wl.replicasets(kube, namespace, f"app{i}") for i in range(count)) == replicasets == count
    assert operator.metric("botsecret_restarts_total", kind="Deployment") == restarts_before


def test_a_store_edit_resyncs_its_botsecrets_within_seconds(
    operator: Any, kube: Kube, aws: MotoServer, namespace: str,
) -> None:
    sm = aws.client()
    sm.create_secret(Name=f"{namespace}/k", SecretString=secret_value("edit_v1"))
    bs.credentials_secret(kube, namespace, "aws-keys", {"accessKeyId": "a", "secretAccessKey": "b"})
    st.create_store(kube, namespace, "aws", {"aws": {"region": "us-east-1", "endpoint": aws.endpoint,
                                                     "credentialsSecretRef": {"name": "aws-keys"}}})
    for name in ("one", "two"):
        bs.create(kube, namespace, name, {"sources": _sources("aws"), "refreshInterval": "1h",
                                          "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
        bs.wait_ready(kube, namespace, name)
    rotated = secret_value("edit_v2")
    sm.put_secret_value(SecretId=f"{namespace}/k", SecretString=rotated)
    proxy = RecordingProxy(aws.endpoint)
    proxy.start()
    try:
        edited = time.monotonic()
        st.create_store(kube, namespace, "aws", {"aws": {"region": "us-east-1", "endpoint": proxy.endpoint,
                                                         "credentialsSecretRef": {"name": "aws-keys"}}})
        for name in ("one", "two"):
            bs.wait_secret(kube, namespace, name, {"K": rotated.encode()}, timeout=20)
        print(f"store edit -> both BotSecrets re-synced in {time.monotonic() - edited:.1f} s")
        assert proxy.requests, "the re-sync went to the store's new address"
    finally:
        proxy.stop()


@pytest.mark.control_plane
def test_a_rotated_store_credential_resyncs_within_a_minute_without_watching_secrets(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, namespace: str,
) -> None:
    path = f"{namespace}/rotating"
    vault.client().secrets.kv.v2.create_or_update_secret(path=path, secret={"v": secret_value("cred_v1")})
    _vault_token_store(kube, namespace, "vault", vault.address)
    bs.create(kube, namespace, "bot", {"sources": _sources("vault"), "refreshInterval": "1h",
                                       "data": [{"key": "V", "remoteRef": {"name": path, "property": "v"}}]})
    bs.wait_ready(kube, namespace, "bot")
    started = time.time()
    rotated = secret_value("cred_v2")
    vault.client().secrets.kv.v2.create_or_update_secret(path=path, secret={"v": rotated})
    new_token = vault.client().auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    kube.core.patch_namespaced_secret("vault-token", namespace, {"stringData": {"token": new_token}})
    changed = time.monotonic()
    bs.wait_secret(kube, namespace, "bot", {"V": rotated.encode()}, timeout=60)
    print(f"credentials Secret changed -> BotSecret re-synced in {time.monotonic() - changed:.1f} s")
    watched = [e for e in operator_requests(cluster, since=started, resource="secrets")
               if e["verb"] in ("list", "watch")]
    assert watched == []


def test_plain_http_needs_the_stores_explicit_consent(
    operator: Any, kube: Kube, vault: OpenBao, namespace: str,
) -> None:
    bs.credentials_secret(kube, namespace, "vault-token", {"token": ROOT_TOKEN})
    provider = {"vault": {"address": vault.address, "credentialsSecretRef": {"name": "vault-token"}}}
    refused = _refused(lambda: st.create_store(kube, namespace, "plain", provider, allow_plain_http=False))
    assert refused.status == 422 and "insecureAllowPlainHTTP" in str(refused.body)

    st.create_store(kube, namespace, "plain", provider, allow_plain_http=True)
    path = f"{namespace}/plain"
    value = secret_value("plain")
    vault.client().secrets.kv.v2.create_or_update_secret(path=path, secret={"v": value})
    bs.create(kube, namespace, "bot", {"sources": _sources("plain"),
                                       "data": [{"key": "V", "remoteRef": {"name": path, "property": "v"}}]})
    bs.wait_secret(kube, namespace, "bot", {"V": value.encode()})
    warning = wait_for(lambda: kube.core.list_namespaced_event(
        namespace, field_selector="reason=InsecurePlainHTTP").items)
    assert warning[0].type == "Warning" and "plain HTTP" in warning[0].message


def test_a_store_reports_whether_it_can_authenticate(
    operator: Any, kube: Kube, vault: OpenBao, aws: MotoServer, namespace: str,
) -> None:
    _vault_token_store(kube, namespace, "good", vault.address)
    assert "logged in" in _store_ready(kube, namespace, "good", reason="Valid")["message"]
    _vault_token_store(kube, namespace, "bad-token", vault.address, token="not-a-token")
    _store_ready(kube, namespace, "bad-token", status="False", reason="AccessDenied")
    st.create_store(kube, namespace, "no-secret", {"aws": {"region": "us-east-1", "endpoint": aws.endpoint,
                                                           "credentialsSecretRef": {"name": "absent"}}})
    message = _store_ready(kube, namespace, "no-secret", status="False", reason="AccessDenied")["message"]
    assert "Secret 'absent' not found" in message

    # The broken token is fixed in its Secret: the store turns Ready without an edit of its own.
    kube.core.patch_namespaced_secret("bad-token-token", namespace, {"stringData": {"token": ROOT_TOKEN}})
    _store_ready(kube, namespace, "bad-token", reason="Valid")


@pytest.mark.control_plane
def test_a_cluster_store_acts_as_each_namespaces_own_service_account(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, k8s_auth: str,  # noqa: F811
    teams: tuple[str, str],  # noqa: F811
) -> None:
    role = f"bots-{secrets.token_hex(3)}"
    admin = vault.client()
    admin.sys.create_or_update_policy(role, f'path "secret/data/{role}/*" {{ capabilities = ["read"] }}')
    admin.auth.kubernetes.create_role(role, bound_service_account_names=["bot"],
                                      bound_service_account_namespaces=list(teams), audience="vault",
                                      policies=[role], mount_point=k8s_auth)
    name = f"shared-{secrets.token_hex(3)}"
    st.create_cluster_store(kube, name, {"vault": {"address": vault.address, "serviceAccountName": "bot",
                                                   "auth": {"kubernetes": {"role": role, "mount": k8s_auth}}}},
                            conditions=[{"namespaces": list(teams)}])
    try:
        assert "each namespace" in _store_ready(kube, None, name, reason="ValidationUnknown")["message"]
        started = time.time()
        for team in teams:
            value = secret_value(f"cluster_{team[:6]}")
            admin.secrets.kv.v2.create_or_update_secret(path=f"{role}/{team}", secret={"v": value})
            bs.create(kube, team, "bot", {"sources": _sources(name, "ClusterBotSecretStore"),
                                          "data": [{"key": "V", "remoteRef": {"name": f"{role}/{team}",
                                                                              "property": "v"}}]})
            bs.wait_secret(kube, team, "bot", {"V": value.encode()})
        minted = operator_requests(cluster, since=started, resource="serviceaccounts", subresource="token")
        assert sorted((e["objectRef"]["namespace"], e["objectRef"]["name"]) for e in minted) == sorted(
            (team, "bot") for team in teams)
    finally:
        st.delete_cluster_store(kube, name)


@pytest.mark.operator_metrics
@pytest.mark.control_plane
def test_botsecrets_starting_together_share_one_login(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, k8s_auth: str, namespace: str,  # noqa: F811
) -> None:
    """Many BotSecrets of one new store at once (as in a GitOps apply) build one client: one
    TokenRequest and one Vault login for them and the store's own check, not one each."""
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    bind_role(vault, k8s_auth, f"{namespace}-bot", namespace, "bot", namespace)
    value = secret_value("shared_login")
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/bot", secret={"v": value})
    logins_before = operator.metric("botsecret_provider_logins_total", provider="vault")
    count = 12
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: bs.create(kube, namespace, f"bot{i}", {"sources": _sources("vault"), "data": [
            {"key": "V", "remoteRef": {"name": f"{namespace}/bot", "property": "v"}}]}), range(count)))
        st.create_store(kube, namespace, "vault", {"vault": {
            "address": vault.address, "serviceAccountName": "bot",
            "auth": {"kubernetes": {"role": f"{namespace}-bot", "mount": k8s_auth}}}})
        list(pool.map(lambda i: bs.wait_secret(kube, namespace, f"bot{i}", {"V": value.encode()}, timeout=60),
                      range(count)))
    _store_ready(kube, namespace, "vault", reason="Valid")
    minted = len(operator_requests(cluster, since=0, namespace=namespace, resource="serviceaccounts",
                                   subresource="token"))
    logins = operator.metric("botsecret_provider_logins_total", provider="vault") - logins_before
    print(f"{count} BotSecrets and the check of one store: {minted} TokenRequests, {logins:.0f} Vault logins")
    assert minted == 1
    assert logins == 1


def test_a_dead_store_address_is_only_retried(
    operator: Any, kube: Kube, aws: MotoServer, namespace: str,
) -> None:
    """A store pointing nowhere keeps the BotSecret unready with the store named; fixing the store
    brings it back without touching the BotSecret."""
    bs.credentials_secret(kube, namespace, "aws-keys", {"accessKeyId": "a", "secretAccessKey": "b"})
    dead = f"http://127.0.0.1:{free_port()}"
    st.create_store(kube, namespace, "aws", {"aws": {"region": "us-east-1", "endpoint": dead, "stsEndpoint": dead,
                                                     "credentialsSecretRef": {"name": "aws-keys"}}})
    value = secret_value("dead_store")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    bs.create(kube, namespace, "bot", {"sources": _sources("aws"), "refreshInterval": "1h",
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    message = bs.ready(bs.wait_ready(kube, namespace, "bot", status="False", reason="ProviderError"))["message"]
    assert "unreachable" in message
    _store_ready(kube, namespace, "aws", status="False", reason="ProviderError")
    st.create_store(kube, namespace, "aws", {"aws": {"region": "us-east-1", "endpoint": aws.endpoint,
                                                     "stsEndpoint": aws.endpoint,
                                                     "credentialsSecretRef": {"name": "aws-keys"}}})
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()}, timeout=20)
    _store_ready(kube, namespace, "aws", reason="Valid")
