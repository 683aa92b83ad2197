"""End to end: a GCP store authenticated by Workload Identity Federation. The operator mints a
token of the store's ServiceAccount, google-auth exchanges it at a loopback STS (which checks it
with a real TokenReview) and, with ``serviceAccountEmail``, at a loopback IAM credentials API;
the Secret Manager TLS fake accepts only the tokens those issued."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness import leaks
from tests.harness.cluster_fixtures import Kube
from tests.harness.gcp_federation import Federation
from tests.harness.gcp_fixtures import GcpTls
from tests.harness.operator_env import restarted_with
from tests.harness.operator_process import OperatorProcess
from tests.harness.stores import create_store

pytestmark = pytest.mark.features

PROJECT = "botsecret-federation"
AUDIENCE = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/bots/providers/test-cluster"
READER = "secret-reader@botsecret-federation.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def tls_operator(operator: OperatorProcess, gcp_tls: GcpTls) -> Iterator[OperatorProcess]:
    # gRPC takes its default roots from this file: the operator trusts the fake's CA as it trusts Google's.
    with restarted_with(operator, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(gcp_tls.ca_path)) as running:
        yield running


@pytest.fixture
def federation(kube: Kube, gcp_tls: GcpTls) -> Iterator[Federation]:
    fed = Federation(kube.authn, AUDIENCE)
    fed.start()
    saved, gcp_tls.fake.auth = gcp_tls.fake.auth, fed  # type: ignore[assignment]
    try:
        yield fed
    finally:
        gcp_tls.fake.auth = saved
        fed.stop()
        # The tokens it issued are credentials: the leak scan looks for them too.
        leaks.ISSUED.extend(fed.issued())


def service_account(kube: Kube, namespace: str, name: str) -> str:
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    return f"system:serviceaccount:{namespace}:{name}"


def federated_store(kube: Kube, namespace: str, name: str, account: str, fed: Federation, gcp_tls: GcpTls,
                    email: str | None = None) -> dict[str, Any]:
    identity: dict[str, Any] = {"audience": AUDIENCE, "stsEndpoint": fed.token_url, "iamEndpoint": fed.endpoint}
    if email:
        identity["serviceAccountEmail"] = email
    create_store(kube, namespace, name, {"gcp": {"project": PROJECT, "endpoint": gcp_tls.endpoint,
                                                 "serviceAccountName": account, "workloadIdentity": identity}},
                 allow_plain_http=True)  # the loopback STS speaks plain HTTP
    return {"name": "gcp", "storeRef": {"name": name}}


def test_sync_through_federation_and_impersonation_with_only_exchanged_tokens(
        tls_operator: OperatorProcess, kube: Kube, namespace: str, gcp_tls: GcpTls, federation: Federation) -> None:
    principal = service_account(kube, namespace, "bot-reader")
    federation.granted.add(principal)
    federation.impersonation[READER] = {principal}
    secret_id, value = f"{namespace}-wif", leaks.secret_value("gcp_wif").encode()
    gcp_tls.fake.put(PROJECT, secret_id, value)
    bs.create(kube, namespace, "bot", {
        "sources": [federated_store(kube, namespace, "gcp-wif", "bot-reader", federation, gcp_tls, READER)],
        "data": [{"key": "TOKEN", "remoteRef": {"name": secret_id}}]})
    bs.wait_ready(kube, namespace, "bot", reason="Synced", timeout=60)
    assert bs.secret_data(kube, namespace, "bot") == {"TOKEN": value}
    assert federation.counts["sts"] >= 1 and federation.counts["iam"] >= 1, federation.counts
    # Secret Manager saw only the token the IAM API issued for READER: never the ServiceAccount's
    # own token, never the intermediate STS token.
    seen = set(federation.seen_bearers)
    assert seen and all(t.startswith("iam-") for t in seen), seen
    assert not seen & set(federation.subject_tokens)
    # The subject tokens were real ServiceAccount tokens for the pool's audience.
    payload = federation.subject_tokens[0].split(".")[1]
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == [AUDIENCE] and claims["sub"] == principal


def test_another_service_account_another_namespace_and_an_ungranted_email_are_refused(
        tls_operator: OperatorProcess, kube: Kube, namespace: str, gcp_tls: GcpTls, federation: Federation) -> None:
    granted = service_account(kube, namespace, "bot-reader")
    service_account(kube, namespace, "other")
    federation.granted.add(granted)
    federation.impersonation[READER] = {granted}
    secret_id, value = f"{namespace}-refused", leaks.secret_value("gcp_wif_refused").encode()
    gcp_tls.fake.put(PROJECT, secret_id, value)
    data = [{"key": "TOKEN", "remoteRef": {"name": secret_id}}]

    elsewhere = f"t-{secrets.token_hex(4)}"
    kube.core.create_namespace({"metadata": {"name": elsewhere, "labels": {"botsecret.dev/test": "true"}}})
    try:
        service_account(kube, elsewhere, "bot-reader")  # the same name, another namespace
        cases = [
            (namespace, "other-sa", federated_store(kube, namespace, "gcp-other", "other", federation, gcp_tls)),
            (elsewhere, "same-name", federated_store(kube, elsewhere, "gcp-same", "bot-reader", federation, gcp_tls)),
            (namespace, "ungranted-email", federated_store(kube, namespace, "gcp-email", "bot-reader", federation,
                                                           gcp_tls, "admin@botsecret-federation.iam.gserviceaccount.com")),
        ]
        for ns, name, source in cases:
            bs.create(kube, ns, name, {"sources": [source], "data": data})
        for ns, name, _ in cases:
            body = bs.wait_ready(kube, ns, name, status="False", reason="AccessDenied", timeout=60)
            message = bs.ready(body)["message"]  # type: ignore[index]
            assert secret_id in message and "Workload Identity Federation" in message, (name, message)
            assert bs.secret_data(kube, ns, name) is None
        assert federation.counts["sts-refused"] >= 2 and federation.counts["iam-refused"] >= 1, federation.counts
        assert federation.counts["accepted"] == 0, "no refused identity reached Secret Manager's data"
    finally:
        from tests.harness.leak_scan import capture

        capture(kube, elsewhere)
        kube.core.delete_namespace(elsewhere)
