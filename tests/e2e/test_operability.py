"""End to end: the botsecret CLI against the real apiserver, moto and OpenBao, and the operator's
metrics scraped while it works."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import dotenv
import pytest
import yaml

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cli import botsecret, rows
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value
from tests.harness.stores import store_body
from tests.harness.throttling_proxy import ThrottlingProxy
from tests.harness.vault import ROOT_TOKEN, OpenBao
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.operability

RENDER_WARNING = "the output holds SECRET VALUES"


def aws_store(name: str, endpoint: str, region: str = "us-east-1") -> dict[str, Any]:
    return store_body("BotSecretStore", name, {"aws": {"region": region, "endpoint": endpoint, "stsEndpoint": endpoint,
                                                       "credentialsSecretRef": {"name": "aws-creds"}}})


def vault_store(name: str, address: str, credentials: str) -> dict[str, Any]:
    return store_body("BotSecretStore", name, {"vault": {"address": address,
                                                         "credentialsSecretRef": {"name": credentials}}})


def credentials(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


def botsecret_doc(name: str, sources: list[str], data: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret", "metadata": {"name": name},
            "spec": {"sources": [{"name": s, "storeRef": {"name": s}} for s in sources], "data": data, **spec}}


def write(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_check_names_each_failure_with_its_class_and_hint(
    kube: Kube, operator: Any, namespace: str, cluster: ControlPlane, aws: MotoServer, vault: OpenBao,
    vault_tls: OpenBao, artifacts: Path, tmp_path: Path,
) -> None:
    value, vault_value = secret_value("check_aws"), secret_value("check_vault")
    remote = f"{namespace}/present"
    aws.client().create_secret(Name=remote, SecretString=json.dumps({"api_key": value}))
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/v", secret={"k": vault_value})
    # A real token of the server whose only policy ("default") reads no KV path.
    denied = vault.client().auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    item = {"key": "OK_KEY", "source": "aws-ok", "remoteRef": {"name": remote, "property": "api_key"}}
    docs = [
        aws_store("aws-ok", aws.endpoint),
        # moto keeps data per region as AWS does: the secret lives in us-east-1 only.
        aws_store("aws-eu", aws.endpoint, region="eu-west-1"),
        aws_store("aws-nowhere", aws.endpoint, region="eu-nowhere-1"),
        vault_store("vault-denied", vault.address, "vault-denied-creds"),
        vault_store("vault-tls", vault_tls.address, "vault-root-creds"),  # no caBundle: the system trust
        credentials("aws-creds", {"accessKeyId": "testing", "secretAccessKey": "testing"}),
        credentials("vault-denied-creds", {"token": denied}),
        credentials("vault-root-creds", {"token": ROOT_TOKEN}),
        botsecret_doc("bot", ["aws-ok", "aws-eu", "aws-nowhere", "vault-denied", "vault-tls", "absent"], [
            item,
            {"key": "MISSING", "source": "aws-ok", "remoteRef": {"name": f"{namespace}/absent"}},
            {"key": "EU", "source": "aws-eu", "remoteRef": {"name": remote}},
            {"key": "NOWHERE", "source": "aws-nowhere", "remoteRef": {"name": remote}},
            {"key": "DENIED", "source": "vault-denied", "remoteRef": {"name": f"{namespace}/v", "property": "k"}},
            {"key": "TLS_KEY", "source": "vault-tls", "remoteRef": {"name": f"{namespace}/v", "property": "k"}},
            {"key": "NOSTORE", "source": "absent", "remoteRef": {"name": "x"}},
        ]),
    ]
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "-f", str(write(tmp_path / "bot.yaml", docs)),
                    "-n", namespace)
    assert run.code == 1, run
    table = rows(run.out)
    assert {k: v[-2] for k, v in table.items()} == {
        "OK_KEY": "OK", "MISSING": "NotFound", "EU": "NotFound", "NOWHERE": "WrongRegion", "DENIED": "AccessDenied",
        "TLS_KEY": "TLS", "NOSTORE": "StoreNotFound"}
    version = aws.client().get_secret_value(SecretId=remote)["VersionId"]
    assert table["OK_KEY"][:4] == ["OK_KEY", "aws-ok", remote, "[api_key]"] and table["OK_KEY"][4] == version
    hints = {k: v[-1] for k, v in table.items()}
    assert "check that every key is set in your secret store" in hints["MISSING"]
    assert "is it in 'eu-west-1'?" in hints["EU"]
    assert "check the AWS region is correct: 'eu-nowhere-1' is not a Secrets Manager region" in hints["NOWHERE"]
    assert "verify the permissions for secret retrieval" in hints["DENIED"]
    assert "caBundle or caSecretRef" in hints["TLS_KEY"] and "TLS handshake failed" in hints["TLS_KEY"]
    assert "create the store" in hints["NOSTORE"]
    assert f"{namespace}/bot: 1 of 7 references OK" in run.out
    assert value not in run.out + run.err and vault_value not in run.out + run.err

    # Every reference resolving: exit 0.
    good = [*docs[:-1], botsecret_doc("bot", ["aws-ok"], [item])]
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "-f", str(write(tmp_path / "ok.yaml", good)),
                    "-n", namespace)
    assert run.code == 0, run
    assert rows(run.out)["OK_KEY"][-2] == "OK" and "1 of 1 references OK" in run.out

    # The same against the cluster: the BotSecret and its stores read through the apiserver.
    bs.create(kube, namespace, "live", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)], "data": [
        {"key": "OK_KEY", "remoteRef": {"name": remote, "property": "api_key"}},
        {"key": "MISSING", "remoteRef": {"name": f"{namespace}/absent"}}]})
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "live", "-n", namespace)
    assert run.code == 1, run
    assert {k: v[-2] for k, v in rows(run.out).items()} == {"OK_KEY": "OK", "MISSING": "NotFound"}
    missing = botsecret(artifacts, cluster.admin_kubeconfig, "check", "nosuchbot", "-n", namespace)
    assert missing.code == 2 and "BotSecret 'nosuchbot' not found" in missing.err


AWKWARD = {
    "NEWLINE": "ends with a newline\n",
    "UNICODE": "clé 🔑 日本語",
    "EQUALS": "a=b==c",
    "QUOTES": "it's \"double\" and 'single'",
    "BACKSLASH": "C:\\dir\\n not a newline",
    "CRLF": "windows\r\nline",
}


def test_render_each_format_with_exact_bytes(
    kube: Kube, operator: Any, namespace: str, cluster: ControlPlane, aws: MotoServer, artifacts: Path, tmp_path: Path,
) -> None:
    values = {k: f"{secret_value(k.lower())} {v}" for k, v in AWKWARD.items()}
    remote = f"{namespace}/doc"
    aws.client().create_secret(Name=remote, SecretString=json.dumps(values))
    docs = [aws_store("aws", aws.endpoint), credentials("aws-creds", {"accessKeyId": "testing", "secretAccessKey": "testing"}),
            {**botsecret_doc("bot", ["aws"], []), "spec": {"sources": [{"name": "aws", "storeRef": {"name": "aws"}}],
                                                          "dataFrom": [{"remoteRef": {"name": remote}}],
                                                          "target": {"name": "bot-env"}}}]
    path = str(write(tmp_path / "bot.yaml", docs))

    env = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", path, "-n", namespace, "--format", "env")
    assert env.code == 0 and RENDER_WARNING in env.err, env.err
    assert dict(dotenv.dotenv_values(stream=io.StringIO(env.out_bytes.decode("utf-8")))) == values
    (tmp_path / ".env").write_bytes(env.out_bytes)  # as load_dotenv reads it: a file, universal newlines
    assert dict(dotenv.dotenv_values(tmp_path / ".env")) == values
    assert env.out_bytes.decode().splitlines()[0] == f'BACKSLASH="{values["BACKSLASH"].replace(chr(92), chr(92) * 2)}"'
    assert env.out_bytes.endswith(b'"\n') and env.out_bytes.count(b"\n") == len(values)

    as_json = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", path, "-n", namespace, "--format", "json")
    assert as_json.code == 0 and RENDER_WARNING in as_json.err
    assert as_json.out_bytes == (json.dumps(dict(sorted(values.items())), indent=2, ensure_ascii=False) + "\n").encode()

    secret = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", path, "-n", namespace, "--format", "secret")
    assert secret.code == 0 and RENDER_WARNING in secret.err
    assert secret.out_bytes.startswith(
        f'apiVersion: v1\nkind: Secret\nmetadata:\n  name: "bot-env"\n  namespace: "{namespace}"\ntype: "Opaque"\ndata:\n'.encode())
    manifest = yaml.safe_load(secret.out_bytes)

    assert {k: base64.b64decode(v).decode() for k, v in manifest["data"].items()} == values
    # The manifest applies as it is, and holds the same bytes as the BotSecret would sync.
    kube.core.create_namespaced_secret(namespace, manifest)
    assert bs.secret_data(kube, namespace, "bot-env") == {k: v.encode() for k, v in values.items()}

    # A key that does not resolve: nothing rendered, and the reason by name.
    docs[-1]["spec"]["dataFrom"] = [{"remoteRef": {"name": f"{namespace}/absent"}}]
    failed = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", str(write(tmp_path / "bad.yaml", docs)),
                       "-n", namespace)
    assert failed.code == 1 and failed.out == "" and "NotFound" in failed.err and "not rendered" in failed.err


def deployment_bot(kube: Kube, namespace: str, aws: MotoServer, *, debounce: str, replicas: int = 0,
                   progress_deadline: str | None = None) -> Any:
    sm = aws.client()
    for key in ("A", "B"):
        sm.create_secret(Name=f"{namespace}/bot/{key}", SecretString=secret_value(f"ops_{key}"))
    wl.deployment(kube, namespace, "app", replicas=replicas, **wl.uses_all("bot-env"))
    rollout: dict[str, Any] = {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": debounce}
    if progress_deadline:
        rollout["progressDeadline"] = progress_deadline
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": k, "remoteRef": {"name": f"{namespace}/bot/{k}"}} for k in ("A", "B")],
        "target": {"name": "bot-env"}, "rollout": rollout})
    bs.wait_ready(kube, namespace, "bot", timeout=60)
    wait_for(lambda: (c := bs.condition(bs.get(kube, namespace, "bot"), "RolloutComplete")) and c["reason"] == "RolloutComplete",
             timeout=60, what="a baseline of the Deployment")
    return sm


def test_rotate_now_restarts_once_and_reports_the_end_and_the_metrics_move(
    kube: Kube, operator: Any, namespace: str, cluster: ControlPlane, aws: MotoServer, artifacts: Path,
) -> None:
    sm = deployment_bot(kube, namespace, aws, debounce="1h")
    kubeconfig = cluster.admin_kubeconfig
    assert operator.metric("botsecret_ready", namespace=namespace, name="bot") == 1
    synced_at = operator.metric("botsecret_last_success_timestamp_seconds", namespace=namespace, name="bot")
    assert synced_at > 1.7e9
    restarts = operator.metric("botsecret_restarts_total", kind="Deployment")
    reads = operator.metric("botsecret_provider_requests_total", provider="aws", operation="read", result="ok")

    sync = botsecret(artifacts, kubeconfig, "sync", "bot", "-n", namespace)
    assert sync.code == 0 and "Ready=True (Synced)" in sync.out, sync
    # Each sync reads both keys, and one counts each read.
    assert operator.metric("botsecret_provider_requests_total", provider="aws", operation="read", result="ok") >= reads + 2
    wait_for(lambda: operator.metric("botsecret_last_success_timestamp_seconds", namespace=namespace, name="bot")
             >= synced_at, what="the last-success timestamp kept or moved")

    sm.put_secret_value(SecretId=f"{namespace}/bot/A", SecretString=secret_value("ops_A"))
    rotate = botsecret(artifacts, kubeconfig, "rotate", "bot", "-n", namespace, "--now", "--timeout", "90")
    assert rotate.code == 0, rotate
    assert "Deployment/app: Complete" in rotate.out and "for keys A" in rotate.out
    assert rotate.out.rstrip().endswith("rollout Complete")
    assert wl.replicasets(kube, namespace, "app") == 2
    assert operator.metric("botsecret_restarts_total", kind="Deployment") == restarts + 1
    assert not bs.get(kube, namespace, "bot")["status"].get("pendingRollout")

    # Nothing changed since: no second restart, and it says so.
    again = botsecret(artifacts, kubeconfig, "rotate", "bot", "-n", namespace, "--now", "--timeout", "60")
    assert again.code == 0 and "nothing restarted" in again.out, again
    assert wl.replicasets(kube, namespace, "app") == 2
    assert operator.metric("botsecret_restarts_total", kind="Deployment") == restarts + 1

    shown = botsecret(artifacts, kubeconfig, "status", "bot", "-n", namespace)
    assert shown.code == 0
    version = sm.get_secret_value(SecretId=f"{namespace}/bot/A")["VersionId"]
    assert ["A", "aws", f"{namespace}/bot/A", version] in [line.split() for line in shown.out.splitlines()]
    workload = next(line.split() for line in shown.out.splitlines() if line.strip().startswith("Deployment/app"))
    assert workload[1] == "Complete" and workload[4] == "A"

    text = operator.metrics()
    assert f"{namespace}/bot/A" not in text  # no remote name in any label
    assert 'botsecret_build_info{' in text


def test_rotate_now_reports_a_failed_rollout_and_counts_it(
    kube: Kube, operator: Any, namespace: str, cluster: ControlPlane, aws: MotoServer, artifacts: Path,
) -> None:
    # One replica and no kubelet: the rollout never becomes available, so the deadline fails it.
    sm = deployment_bot(kube, namespace, aws, debounce="1h", replicas=1, progress_deadline="3s")
    failures = operator.metric("botsecret_rollout_failures_total", kind="Deployment")
    sm.put_secret_value(SecretId=f"{namespace}/bot/B", SecretString=secret_value("ops_B"))
    rotate = botsecret(artifacts, cluster.admin_kubeconfig, "rotate", "bot", "-n", namespace, "--now", "--timeout", "90")
    assert rotate.code == 1, rotate
    assert "rollout Failed" in rotate.out and "Deployment/app: Failed" in rotate.out
    assert operator.metric("botsecret_rollout_failures_total", kind="Deployment") == failures + 1


def test_throttled_and_missing_reads_are_counted_and_ready_drops(
    kube: Kube, operator: Any, namespace: str, aws: MotoServer,
) -> None:
    proxy = ThrottlingProxy(aws.endpoint)
    proxy.start()
    try:
        proxy.throttling = True
        throttled = operator.metric("botsecret_provider_requests_total", provider="aws", operation="read",
                                    result="throttled")
        notfound = operator.metric("botsecret_provider_requests_total", provider="aws", operation="read",
                                   result="notfound")
        source = bs.aws_source(kube, namespace, proxy.endpoint)
        bs.create(kube, namespace, "slow", {"sources": [source], "data": [{"key": "K", "remoteRef": {"name": "x"}}]})
        bs.wait_ready(kube, namespace, "slow", status="False", timeout=60)
        wait_for(lambda: operator.metric("botsecret_provider_requests_total", provider="aws", operation="read",
                                         result="throttled") > throttled, what="a throttled read counted")
        assert operator.metric("botsecret_ready", namespace=namespace, name="slow") == 0

        bs.create(kube, namespace, "absent", {"sources": [bs.aws_source(kube, namespace, aws.endpoint, name="direct")],
                                              "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/none"}}]})
        bs.wait_ready(kube, namespace, "absent", status="False", reason="MissingKeys", timeout=60)
        assert operator.metric("botsecret_provider_requests_total", provider="aws", operation="read",
                               result="notfound") >= notfound + 1
        bs.delete(kube, namespace, "absent")
        wait_for(lambda: f'namespace="{namespace}",name="absent"' not in operator.metrics(),
                 what="the deleted BotSecret's series dropped")
    finally:
        proxy.stop()


def test_check_classifies_a_gcp_certificate_it_does_not_trust_as_tls(
    operator: Any, namespace: str, cluster: ControlPlane, gcp_tls: Any, artifacts: Path, tmp_path: Path,
) -> None:
    # The CLI runs without the fake's CA among its roots: the handshake fails on the certificate.
    key = gcp_tls.auth.issue_key("bots")
    from tests.harness import leaks

    leaks.ISSUED.append(json.loads(key)["private_key"])
    docs = [
        store_body("BotSecretStore", "gcp", {"gcp": {"project": "bots", "endpoint": gcp_tls.endpoint,
                                                      "credentialsSecretRef": {"name": "gcp-key"}}}),
        credentials("gcp-key", {"credentials.json": key.decode()}),
        botsecret_doc("bot", ["gcp"], [{"key": "G", "source": "gcp", "remoteRef": {"name": "anything"}}]),
    ]
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "-f", str(write(tmp_path / "gcp.yaml", docs)),
                    "-n", namespace)
    assert run.code == 1, run
    table = rows(run.out)
    assert table["G"][-2] == "TLS", table
    assert "caBundle or caSecretRef" in table["G"][-1]


def test_render_applies_the_target_template_as_the_operator_writes_the_secret(
    kube: Kube, operator: Any, namespace: str, cluster: ControlPlane, aws: MotoServer, artifacts: Path, tmp_path: Path,
) -> None:
    token, user = secret_value("render_tpl_token"), secret_value("render_tpl_user")
    remote = f"{namespace}/tpl"
    aws.client().create_secret(Name=remote, SecretString=json.dumps({"token": token, "user": user}))
    spec = {"sources": [{"name": "aws", "storeRef": {"name": "aws"}}],
            "dataFrom": [{"remoteRef": {"name": remote}}],
            "target": {"name": "bot-env", "template": {
                "data": {"DSN": "bot://{{ user }}:{{ token }}@x\n", "TOKEN_B64": "{{ token | b64enc }}"}}}}
    docs = [aws_store("aws", aws.endpoint), credentials("aws-creds", {"accessKeyId": "testing", "secretAccessKey": "testing"}),
            {**botsecret_doc("bot", ["aws"], []), "spec": spec}]
    path = str(write(tmp_path / "tpl.yaml", docs))
    run = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", path, "-n", namespace, "--format", "json")
    assert run.code == 0, run.err
    rendered = json.loads(run.out_bytes)

    # The operator's Secret for the same spec, through the same store.
    for doc in docs[:2]:
        if doc["kind"] == "Secret":
            kube.core.create_namespaced_secret(namespace, doc)
        else:
            kube.custom.create_namespaced_custom_object("botsecret.dev", "v1alpha1", namespace, "botsecretstores", doc)
    bs.create(kube, namespace, "bot", spec)
    bs.wait_ready(kube, namespace, "bot", reason="Synced", timeout=60)
    written = bs.secret_data(kube, namespace, "bot-env")
    assert written is not None
    assert rendered == {k: v.decode() for k, v in written.items()}
    assert rendered == {"DSN": f"bot://{user}:{token}@x\n", "TOKEN_B64": base64.b64encode(token.encode()).decode()}


def test_the_oldest_unsynced_change_grows_while_a_botsecret_is_stuck_and_is_zero_once_it_syncs(
    kube: Kube, operator: Any, namespace: str, aws: MotoServer,
) -> None:
    metric = "botsecret_oldest_unsynced_change_age_seconds"
    wait_for(lambda: operator.metric(metric) == 0, timeout=120, what="no change waiting before the test")
    remote = f"{namespace}/late"
    bs.create(kube, namespace, "stuck", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                         "data": [{"key": "K", "remoteRef": {"name": remote}}]})
    bs.wait_ready(kube, namespace, "stuck", status="False", reason="MissingKeys", timeout=60)
    first = wait_for(lambda: operator.metric(metric), timeout=30, what=f"{metric} > 0")
    wait_for(lambda: operator.metric(metric) >= first + 2, timeout=60, what=f"{metric} growing")

    aws.client().create_secret(Name=remote, SecretString=secret_value("unsynced"))
    bs.wait_ready(kube, namespace, "stuck", reason="Synced", timeout=90)
    wait_for(lambda: operator.metric(metric) == 0, timeout=30, what=f"{metric} back to 0")
