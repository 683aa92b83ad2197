"""End to end: each BotSecret acts with its own namespace's identity and touches only its own
namespace. The apiserver's audit log and OpenBao and STS themselves are the witnesses."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.leak_scan import capture
from tests.harness.leaks import secret_value
from tests.harness.operator_process import AMBIENT_NAMESPACE, OPERATOR_NAMESPACE
from tests.harness.recording_proxy import RecordingProxy
from tests.harness.vault import OpenBao, bind_role, enable_kubernetes_auth
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.tenancy

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:botsecret-operator"
ROLE_ARN = "arn:aws:iam::123456789012:role/bot-reader"


def _namespace(kube: Kube, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": name}})
    kube.core.create_namespaced_service_account(name, {"metadata": {"name": "bot"}})
    return name


@pytest.fixture
def teams(kube: Kube) -> Iterator[tuple[str, str]]:
    team_a, team_b = _namespace(kube, "team-a"), _namespace(kube, "team-b")
    yield team_a, team_b
    for name in (team_a, team_b):
        capture(kube, name)
        kube.core.delete_namespace(name)


@pytest.fixture(scope="module")
def k8s_auth(vault: OpenBao, kube: Kube, cluster: ControlPlane) -> str:
    mount = f"k8s-{secrets.token_hex(3)}"
    reviewer_ns = _namespace(kube, "openbao")
    enable_kubernetes_auth(vault, kube, cluster.server, cluster.ca_path.read_text(), reviewer_ns, mount)
    return mount


@pytest.fixture
def sts_proxy(aws: MotoServer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(aws.endpoint)
    proxy.start()
    yield proxy
    proxy.stop()


def operator_requests(cluster: ControlPlane, *, since: float, namespace: str | None = None,
                      resource: str | None = None, subresource: str | None = None) -> list[dict[str, Any]]:
    """What the operator asked of the apiserver since ``since`` (epoch seconds), by the audit log."""
    found = []
    for event in cluster.audit_events():
        if event.get("user", {}).get("username") != OPERATOR_USER or event.get("stage") != "ResponseComplete":
            continue
        ref = event.get("objectRef") or {}
        stamp = event.get("requestReceivedTimestamp", "")
        if time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone < since - 1:
            continue
        if namespace is not None and ref.get("namespace") != namespace:
            continue
        if resource is not None and ref.get("resource") != resource:
            continue
        if subresource is not None and ref.get("subresource") != subresource:
            continue
        found.append(event)
    return found


def vault_source(vault: OpenBao, mount: str, role: str) -> dict[str, Any]:
    return {"name": "vault", "vault": {"address": vault.address, "serviceAccountName": "bot",
                                       "auth": {"kubernetes": {"role": role, "mount": mount}}}}


def aws_web_identity_source(aws: MotoServer, proxy: RecordingProxy) -> dict[str, Any]:
    return {"name": "aws", "aws": {"region": "us-east-1", "endpoint": aws.endpoint, "stsEndpoint": proxy.endpoint,
                                   "serviceAccountName": "bot", "roleArn": ROLE_ARN}}


@pytest.mark.control_plane
def test_vault_kubernetes_login_with_the_botsecrets_own_service_account(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, k8s_auth: str, teams: tuple[str, str],
) -> None:
    team_a, _ = teams
    bind_role(vault, k8s_auth, f"{team_a}-bot", team_a, "bot", team_a)
    value = secret_value("k8s_auth")
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{team_a}/bot", secret={"token": value})
    started = time.time()
    bs.create(kube, team_a, "bot", {
        "sources": [vault_source(vault, k8s_auth, f"{team_a}-bot")],
        "data": [{"key": "TOKEN", "remoteRef": {"name": f"{team_a}/bot", "property": "token"}}],
    })
    bs.wait_secret(kube, team_a, "bot", {"TOKEN": value.encode()})
    minted = operator_requests(cluster, since=started, namespace=team_a, resource="serviceaccounts",
                               subresource="token")
    assert [e["objectRef"]["name"] for e in minted] == ["bot"]
    assert minted[0]["verb"] == "create" and minted[0]["responseStatus"]["code"] == 201


def test_aws_web_identity_uses_a_token_of_the_service_account_with_the_audience(
    operator: Any, kube: Kube, aws: MotoServer, sts_proxy: RecordingProxy, teams: tuple[str, str],
) -> None:
    team_a, _ = teams
    value = secret_value("irsa")
    aws.client().create_secret(Name=f"{team_a}/bot", SecretString=value)
    bs.create(kube, team_a, "bot", {
        "sources": [aws_web_identity_source(aws, sts_proxy)],
        "data": [{"key": "KEY", "remoteRef": {"name": f"{team_a}/bot"}}],
    })
    bs.wait_secret(kube, team_a, "bot", {"KEY": value.encode()})

    calls = sts_proxy.calls("AssumeRoleWithWebIdentity")
    assert len(calls) == 1
    assert calls[0]["RoleArn"] == [ROLE_ARN]
    token = calls[0]["WebIdentityToken"][0]
    review = kube.authn.create_token_review({"spec": {"token": token, "audiences": ["sts.amazonaws.com"]}})
    assert review.status.authenticated
    assert review.status.user.username == f"system:serviceaccount:{team_a}:bot"
    assert not kube.authn.create_token_review({"spec": {"token": token, "audiences": ["vault"]}}).status.authenticated


def test_team_b_cannot_use_a_vault_role_bound_to_team_a(
    operator: Any, kube: Kube, vault: OpenBao, k8s_auth: str, teams: tuple[str, str],
) -> None:
    team_a, team_b = teams
    bind_role(vault, k8s_auth, f"{team_a}-bot", team_a, "bot", team_a)
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{team_a}/bot", secret={"token": secret_value("a")})
    bs.create(kube, team_b, "thief", {
        "sources": [vault_source(vault, k8s_auth, f"{team_a}-bot")],
        "data": [{"key": "TOKEN", "remoteRef": {"name": f"{team_a}/bot", "property": "token"}}],
    })
    body = bs.wait_ready(kube, team_b, "thief", status="False", reason="AccessDenied")
    assert "refused the login" in bs.ready(body)["message"]
    assert bs.secret_data(kube, team_b, "thief") is None


@pytest.mark.control_plane
def test_team_b_cannot_read_a_credentials_secret_of_team_a(
    operator: Any, kube: Kube, cluster: ControlPlane, aws: MotoServer, teams: tuple[str, str],
) -> None:
    team_a, team_b = teams
    bs.credentials_secret(kube, team_a, "aws-credentials", {"accessKeyId": "a", "secretAccessKey": "a"})
    aws.client().create_secret(Name=f"{team_b}/k", SecretString=secret_value("creds"))
    started = time.time()
    bs.create(kube, team_b, "thief", {
        "sources": [{"name": "aws", "aws": {"region": "us-east-1", "endpoint": aws.endpoint,
                                            "credentialsSecretRef": {"name": "aws-credentials"}}}],
        "data": [{"key": "K", "remoteRef": {"name": f"{team_b}/k"}}],
    })
    body = bs.wait_ready(kube, team_b, "thief", status="False", reason="AccessDenied")
    assert f"not found in namespace {team_b!r}" in bs.ready(body)["message"]
    assert bs.secret_data(kube, team_b, "thief") is None
    assert operator_requests(cluster, since=started, namespace=team_a) == []


@pytest.mark.control_plane
def test_team_b_cannot_restart_a_deployment_of_team_a(
    operator: Any, kube: Kube, cluster: ControlPlane, aws: MotoServer, teams: tuple[str, str],
) -> None:
    team_a, team_b = teams
    wl.deployment(kube, team_a, "app", **wl.uses_all("bot"))
    wait_for(lambda: wl.replicasets(kube, team_a, "app") == 1)
    sm = aws.client()
    sm.create_secret(Name=f"{team_b}/k", SecretString=secret_value("restart1"))
    started = time.time()
    bs.create(kube, team_b, "bot", {
        "sources": [bs.aws_source(kube, team_b, aws.endpoint)],
        "data": [{"key": "K", "remoteRef": {"name": f"{team_b}/k"}}],
        "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": "0s"},
    })
    bs.wait_ready(kube, team_b, "bot")
    sm.put_secret_value(SecretId=f"{team_b}/k", SecretString=secret_value("restart2"))
    bs.force_sync(kube, team_b, "bot")
    condition = wait_for(lambda: next((c for c in bs.get(kube, team_b, "bot")["status"].get("conditions", [])
                                       if c["type"] == "RolloutComplete" and "not found" in c["message"]), None))
    assert "Deployment/app" in condition["message"]
    time.sleep(2)
    assert wl.replicasets(kube, team_a, "app") == 1
    assert wl.template_annotation(kube, team_a, "Deployment", "app") is None
    assert operator_requests(cluster, since=started, namespace=team_a) == []


def test_team_b_cannot_overwrite_an_unmanaged_secret(operator: Any, kube: Kube, aws: MotoServer,
                                                     teams: tuple[str, str]) -> None:
    _, team_b = teams
    aws.client().create_secret(Name=f"{team_b}/k", SecretString=secret_value("overwrite"))
    kube.core.create_namespaced_secret(team_b, {"metadata": {"name": "db"}, "stringData": {"password": "theirs"}})
    bs.create(kube, team_b, "bot", {
        "sources": [bs.aws_source(kube, team_b, aws.endpoint)],
        "data": [{"key": "password", "remoteRef": {"name": f"{team_b}/k"}}],
        "target": {"name": "db"},
    })
    body = bs.wait_ready(kube, team_b, "bot", status="False", reason="TargetConflict")
    message = bs.ready(body)["message"]
    assert "not managed by botsecret-operator" in message and "creationPolicy: Merge" in message
    assert bs.secret_data(kube, team_b, "db") == {"password": b"theirs"}


def test_team_b_cannot_target_a_service_account_token_secret(operator: Any, kube: Kube, aws: MotoServer,
                                                             teams: tuple[str, str]) -> None:
    _, team_b = teams
    aws.client().create_secret(Name=f"{team_b}/k", SecretString=secret_value("satoken"))
    source = bs.aws_source(kube, team_b, aws.endpoint)
    with pytest.raises(ApiException) as refused:
        bs.create(kube, team_b, "typed", {"sources": [source], "data": [{"key": "token", "remoteRef": {"name": f"{team_b}/k"}}],
                                          "target": {"type": "kubernetes.io/service-account-token"}})
    assert refused.value.status == 422 and "spec.target.type" in str(refused.value.body)

    kube.core.create_namespaced_secret(team_b, {
        "metadata": {"name": "bot-token", "annotations": {"kubernetes.io/service-account.name": "bot"}},
        "type": "kubernetes.io/service-account-token",
    })
    wait_for(lambda: (kube.core.read_namespaced_secret("bot-token", team_b).data or {}).get("token"))
    before = bs.secret_data(kube, team_b, "bot-token")
    bs.create(kube, team_b, "merger", {"sources": [source], "data": [{"key": "extra", "remoteRef": {"name": f"{team_b}/k"}}],
                                       "target": {"name": "bot-token", "creationPolicy": "Merge"}})
    body = bs.wait_ready(kube, team_b, "merger", status="False", reason="TargetConflict")
    assert "fills in itself" in bs.ready(body)["message"]
    assert bs.secret_data(kube, team_b, "bot-token") == before


@pytest.mark.operator_process
def test_ambient_credentials_only_in_an_allow_listed_namespace(operator: Any, kube: Kube, aws: MotoServer,
                                                              teams: tuple[str, str]) -> None:
    _, team_b = teams
    value = secret_value("ambient")
    aws.client().create_secret(Name=f"ambient/{team_b}", SecretString=value)
    spec = {"sources": [{"name": "aws", "aws": {"region": "us-east-1", "endpoint": aws.endpoint}}],
            "data": [{"key": "K", "remoteRef": {"name": f"ambient/{team_b}"}}]}
    bs.create(kube, team_b, "ambient", spec)
    body = bs.wait_ready(kube, team_b, "ambient", status="False", reason="AccessDenied")
    assert "ambient" in bs.ready(body)["message"] and team_b in bs.ready(body)["message"]
    assert bs.secret_data(kube, team_b, "ambient") is None

    try:
        kube.core.create_namespace({"metadata": {"name": AMBIENT_NAMESPACE}})
    except ApiException as e:
        if e.status != 409:
            raise
    try:
        bs.create(kube, AMBIENT_NAMESPACE, "ambient", spec)
        bs.wait_secret(kube, AMBIENT_NAMESPACE, "ambient", {"K": value.encode()})
    finally:
        kube.core.delete_namespace(AMBIENT_NAMESPACE)
        wait_for(lambda: _gone(kube, AMBIENT_NAMESPACE), timeout=60)


def _gone(kube: Kube, namespace: str) -> bool:
    try:
        kube.core.read_namespace(namespace)
    except ApiException as e:
        return e.status == 404
    return False


@pytest.mark.operator_metrics
@pytest.mark.control_plane
def test_tokens_and_logins_are_reused_across_a_hundred_syncs(
    operator: Any, kube: Kube, cluster: ControlPlane, aws: MotoServer, vault: OpenBao, k8s_auth: str,
    sts_proxy: RecordingProxy, teams: tuple[str, str],
) -> None:
    team_a, _ = teams
    bind_role(vault, k8s_auth, f"{team_a}-bot", team_a, "bot", team_a)
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{team_a}/bot", secret={"v": secret_value("reuse_v")})
    aws.client().create_secret(Name=f"{team_a}/bot", SecretString=secret_value("reuse_a"))
    logins_before = operator.metric("botsecret_provider_logins_total", provider="vault")
    started = time.time()
    bs.create(kube, team_a, "bot", {
        "sources": [vault_source(vault, k8s_auth, f"{team_a}-bot"), aws_web_identity_source(aws, sts_proxy)],
        "data": [{"key": "V", "source": "vault", "remoteRef": {"name": f"{team_a}/bot", "property": "v"}},
                 {"key": "A", "source": "aws", "remoteRef": {"name": f"{team_a}/bot"}}],
    })
    bs.wait_ready(kube, team_a, "bot")
    syncs = 100
    for _ in range(syncs):
        handled = bs.force_sync(kube, team_a, "bot")
        wait_for(lambda handled=handled: bs.get(kube, team_a, "bot")["status"].get("forceSyncHandled") == handled,
                 interval=0.02)
    token_requests = len(operator_requests(cluster, since=started, namespace=team_a, resource="serviceaccounts",
                                           subresource="token"))
    sts_logins = len(sts_proxy.calls("AssumeRoleWithWebIdentity"))
    vault_logins = operator.metric("botsecret_provider_logins_total", provider="vault") - logins_before
    print(f"{syncs + 1} syncs: {token_requests} TokenRequests, {sts_logins} STS logins, {vault_logins:.0f} Vault logins")
    assert 1 <= token_requests <= 3
    assert 1 <= sts_logins <= 2
    assert 1 <= vault_logins <= 2


def test_the_operator_runs_with_the_shipped_rbac_only(operator: Any, kube: Kube) -> None:
    def allowed(verb: str, resource: str, group: str = "", namespace: str = "default", sub: str = "") -> bool:
        review = client.AuthorizationV1Api(kube.api).create_subject_access_review({
            "spec": {"user": OPERATOR_USER, "groups": ["system:serviceaccounts", "system:authenticated"],
                     "resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                            "namespace": namespace, "subresource": sub}}})
        return bool(review.status.allowed)

    assert allowed("get", "secrets") and allowed("patch", "secrets")
    assert not allowed("list", "secrets") and not allowed("watch", "secrets"), "Secrets are never listed or watched"
    assert allowed("patch", "deployments", "apps") and not allowed("delete", "deployments", "apps")
    assert allowed("create", "serviceaccounts", sub="token")
    assert not allowed("create", "pods") and not allowed("impersonate", "serviceaccounts")
    assert not allowed("create", "clusterrolebindings", "rbac.authorization.k8s.io", namespace="")


def test_vault_tls_is_verified_against_a_ca_from_the_namespace(
    operator: Any, kube: Kube, vault_tls: OpenBao, teams: tuple[str, str],
) -> None:
    team_a, _ = teams
    value = secret_value("tls")
    vault_tls.client().secrets.kv.v2.create_or_update_secret(path=f"{team_a}/bot", secret={"v": value})
    kube.core.create_namespaced_secret(team_a, {"metadata": {"name": "vault-ca"},
                                                "stringData": {"ca.crt": vault_tls.ca_path.read_text()}})
    data = [{"key": "V", "remoteRef": {"name": f"{team_a}/bot", "property": "v"}}]

    bs.create(kube, team_a, "verified", {"sources": [bs.vault_source(
        kube, team_a, vault_tls.address, name="verified", caSecretRef={"name": "vault-ca"})], "data": data})
    bs.wait_secret(kube, team_a, "verified", {"V": value.encode()})

    bs.create(kube, team_a, "untrusted", {"sources": [bs.vault_source(
        kube, team_a, vault_tls.address, name="untrusted")], "data": data})
    body = bs.wait_ready(kube, team_a, "untrusted", status="False", reason="ProviderError")
    assert "SSLError" in bs.ready(body)["message"]
    assert bs.secret_data(kube, team_a, "untrusted") is None

    bs.create(kube, team_a, "insecure", {"sources": [bs.vault_source(
        kube, team_a, vault_tls.address, name="insecure", insecureSkipVerify=True)], "data": data})
    bs.wait_secret(kube, team_a, "insecure", {"V": value.encode()})
    warning = wait_for(lambda: kube.core.list_namespaced_event(team_a, field_selector="reason=InsecureTLS").items)
    assert warning[0].type == "Warning" and warning[0].involved_object.name == "insecure"


def test_a_second_botsecret_for_the_same_secret_gets_target_conflict(
    operator: Any, kube: Kube, aws: MotoServer, teams: tuple[str, str],
) -> None:
    team_a, _ = teams
    first, second = secret_value("first_owner"), secret_value("second_owner")
    sm = aws.client()
    sm.create_secret(Name=f"{team_a}/first", SecretString=first)
    sm.create_secret(Name=f"{team_a}/second", SecretString=second)
    source = bs.aws_source(kube, team_a, aws.endpoint)
    bs.create(kube, team_a, "first", {"sources": [source], "refreshInterval": "5s", "target": {"name": "shared"},
                                      "data": [{"key": "K", "remoteRef": {"name": f"{team_a}/first"}}]})
    bs.wait_secret(kube, team_a, "shared", {"K": first.encode()})
    bs.create(kube, team_a, "second", {"sources": [source], "target": {"name": "shared"},
                                       "data": [{"key": "K", "remoteRef": {"name": f"{team_a}/second"}}]})
    body = bs.wait_ready(kube, team_a, "second", status="False", reason="TargetConflict")
    assert "already managed by BotSecret 'first'" in bs.ready(body)["message"]

    rotated = secret_value("first_rotated")
    sm.put_secret_value(SecretId=f"{team_a}/first", SecretString=rotated)
    bs.force_sync(kube, team_a, "first")
    bs.wait_secret(kube, team_a, "shared", {"K": rotated.encode()})
    assert bs.ready(bs.get(kube, team_a, "first"))["status"] == "True"


def test_no_token_the_kubernetes_api_would_accept_leaves_the_operator(
    operator: Any, kube: Kube, cluster: ControlPlane, vault: OpenBao, k8s_auth: str, teams: tuple[str, str],
) -> None:
    team_a, _ = teams
    bind_role(vault, k8s_auth, f"{team_a}-bot", team_a, "bot", team_a)
    source = vault_source(vault, k8s_auth, f"{team_a}-bot")
    source["vault"]["auth"]["kubernetes"]["audience"] = cluster.server  # the apiserver's own audience
    bs.create(kube, team_a, "api-audience", {
        "sources": [source], "data": [{"key": "V", "remoteRef": {"name": f"{team_a}/x", "property": "v"}}]})
    body = bs.wait_ready(kube, team_a, "api-audience", status="False", reason="AccessDenied")
    assert "accepted by the Kubernetes API itself" in bs.ready(body)["message"]
    assert bs.secret_data(kube, team_a, "api-audience") is None


def test_a_service_account_token_secret_is_never_sent_as_a_credential(
    operator: Any, kube: Kube, vault: OpenBao, teams: tuple[str, str],
) -> None:
    _, team_b = teams
    kube.core.create_namespaced_secret(team_b, {
        "metadata": {"name": "bot-token", "annotations": {"kubernetes.io/service-account.name": "bot"}},
        "type": "kubernetes.io/service-account-token",
    })
    wait_for(lambda: (kube.core.read_namespaced_secret("bot-token", team_b).data or {}).get("token"))
    bs.create(kube, team_b, "bot", {
        "sources": [{"name": "vault", "vault": {"address": vault.address, "credentialsSecretRef": {"name": "bot-token"}}}],
        "data": [{"key": "V", "remoteRef": {"name": f"{team_b}/x", "property": "v"}}]})
    body = bs.wait_ready(kube, team_b, "bot", status="False", reason="AccessDenied")
    assert "never sent to a provider" in bs.ready(body)["message"]


def test_a_vault_login_is_renewed_before_its_token_expires(
    kube: Kube, vault: OpenBao, k8s_auth: str, teams: tuple[str, str],
) -> None:
    from botsecret.providers.base import Fetched, RemoteRef
    from botsecret.providers.vault import VaultProvider
    from botsecret.providers.vault_auth import kubernetes_login
    from botsecret.spec import VaultSource

    team_a, _ = teams
    bind_role(vault, k8s_auth, f"{team_a}-short", team_a, "bot", team_a)
    vault.client().auth.kubernetes.create_role(
        f"{team_a}-short", bound_service_account_names=["bot"], bound_service_account_namespaces=[team_a],
        audience="vault", policies=[f"{team_a}-short"], ttl="4s", mount_point=k8s_auth)
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{team_a}/short", secret={"v": secret_value("ttl")})
    minted: list[str] = []

    def jwt() -> str:
        token = kube.core.create_namespaced_service_account_token(
            "bot", team_a, {"spec": {"audiences": ["vault"], "expirationSeconds": 600}}).status.token
        minted.append(token)
        return str(token)

    provider = VaultProvider(VaultSource(address=vault.address), login=kubernetes_login(f"{team_a}-short", k8s_auth, jwt))
    ref = RemoteRef(f"{team_a}/short")
    try:
        for _ in range(5):
            assert isinstance(provider.fetch([ref])[ref], Fetched)
        assert len(minted) == 1, "the login is reused while its token lives"
        time.sleep(4)  # past 80 % of the 4 s lease
        assert isinstance(provider.fetch([ref])[ref], Fetched)
        assert len(minted) == 2, "the login is renewed before the token expires"
    finally:
        provider.close()
