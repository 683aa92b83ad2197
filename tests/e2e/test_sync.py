"""End to end: BotSecrets synced from moto, OpenBao and the GCP fake by the real operator."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value
from tests.harness.processes import free_port
from tests.harness.throttling_proxy import ThrottlingProxy, per_minute
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.sync

BOT_KEYS = ["X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_SECRET", "X_BEARER_TOKEN", "OPENAI_API_KEY"]


def gcp_secret(gcp: Any, project: str, secret_id: str, *payloads: bytes) -> list[str]:
    client = gcp.client()
    client.create_secret(parent=f"projects/{project}", secret_id=secret_id,
                         secret={"replication": {"automatic": {}}})
    return [client.add_secret_version(parent=f"projects/{project}/secrets/{secret_id}",
                                      payload={"data": p}).name for p in payloads]


def test_aws_create_gives_exact_bytes(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    sm = aws.client()
    text = (secret_value("aws_text") + "\n").encode()
    binary = b"\x00\xff\xfe" + secret_value("aws_bin").encode() + b"\n\n"
    sm.create_secret(Name=f"{namespace}/text", SecretString=text.decode())
    sm.create_secret(Name=f"{namespace}/binary", SecretBinary=binary)
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": "TEXT", "remoteRef": {"name": f"{namespace}/text"}},
                 {"key": "BINARY", "remoteRef": {"name": f"{namespace}/binary"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"TEXT": text, "BINARY": binary})
    body = bs.wait_ready(kube, namespace, "bot", reason="Synced")
    status = body["status"]
    assert status["secretName"] == "bot"
    assert status["dataHMAC"].startswith("hmac-sha256:")
    assert sorted(k["key"] for k in status["keys"]) == ["BINARY", "TEXT"]
    assert all(k["version"] and k["source"] == "aws" for k in status["keys"])
    secret = kube.core.read_namespaced_secret("bot", namespace)
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "botsecret-operator"
    assert secret.metadata.owner_references[0].kind == "BotSecret"


def test_vault_create_gives_exact_bytes(operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    value = secret_value("vault") + "\n"
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/bot", secret={"password": value})
    bs.create(kube, namespace, "bot", {
        "sources": [bs.vault_source(kube, namespace, vault.address)],
        "data": [{"key": "PASSWORD", "remoteRef": {"name": f"{namespace}/bot", "property": "password"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"PASSWORD": value.encode()})
    body = bs.wait_ready(kube, namespace, "bot")
    assert body["status"]["keys"][0]["version"] == "1"


def test_gcp_create_gives_exact_bytes(operator: Any, kube: Kube, namespace: str, gcp: Any) -> None:
    value = secret_value("gcp").encode() + b"\r\n"
    gcp_secret(gcp, "bots", f"{namespace}-key", value)
    bs.create(kube, namespace, "bot", {
        "sources": [bs.gcp_source(gcp.endpoint)],
        "data": [{"key": "KEY", "remoteRef": {"name": f"{namespace}-key"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"KEY": value})
    assert bs.wait_ready(kube, namespace, "bot")["status"]["keys"][0]["version"] == "1"


def test_remote_update_reaches_the_secret_on_the_next_refresh(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    sm = aws.client()
    first, second = secret_value("refresh1"), secret_value("refresh2")
    sm.create_secret(Name=f"{namespace}/k", SecretString=first)
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "refreshInterval": "5s",
        "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"K": first.encode()})
    sm.put_secret_value(SecretId=f"{namespace}/k", SecretString=second)
    # No force-sync: only the refresh schedule (5 s ± 10 %) can carry the new value.
    bs.wait_secret(kube, namespace, "bot", {"K": second.encode()}, timeout=20)


def test_force_sync_updates_at_once(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    sm = aws.client()
    first, second = secret_value("force1"), secret_value("force2")
    sm.create_secret(Name=f"{namespace}/k", SecretString=first)
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"K": first.encode()})
    sm.put_secret_value(SecretId=f"{namespace}/k", SecretString=second)
    time.sleep(1)
    assert bs.secret_data(kube, namespace, "bot") == {"K": first.encode()}, "refreshInterval is 1h"
    started = time.monotonic()
    handled = bs.force_sync(kube, namespace, "bot")
    bs.wait_secret(kube, namespace, "bot", {"K": second.encode()}, timeout=10)
    print(f"force-sync to Secret update: {time.monotonic() - started:.2f} s")
    wait_for(lambda: bs.get(kube, namespace, "bot")["status"].get("forceSyncHandled") == handled)


def test_property_and_data_from_on_a_json_secret_of_six_bot_keys(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    values = {key: secret_value(key.lower()) for key in BOT_KEYS}
    aws.client().create_secret(Name=f"{namespace}/bot", SecretString=json.dumps(values))
    source = bs.aws_source(kube, namespace, aws.endpoint)
    bs.create(kube, namespace, "all", {"sources": [source], "dataFrom": [{"remoteRef": {"name": f"{namespace}/bot"}}],
                                       "target": {"name": "all-keys"}})
    bs.create(kube, namespace, "one", {
        "sources": [source],
        "data": [{"key": "OPENAI", "remoteRef": {"name": f"{namespace}/bot", "property": "OPENAI_API_KEY"}}],
        "target": {"name": "openai"},
    })
    bs.wait_secret(kube, namespace, "all-keys", {k: v.encode() for k, v in values.items()})
    bs.wait_secret(kube, namespace, "openai", {"OPENAI": values["OPENAI_API_KEY"].encode()})


def test_version_pins(operator: Any, kube: Kube, namespace: str, aws: MotoServer, vault: Any, gcp: Any) -> None:
    sm = aws.client()
    v1, v2 = secret_value("aws_pin1"), secret_value("aws_pin2")
    first_id = sm.create_secret(Name=f"{namespace}/pin", SecretString=v1)["VersionId"]
    sm.put_secret_value(SecretId=f"{namespace}/pin", SecretString=v2)
    kv = vault.client().secrets.kv.v2
    b1, b2 = secret_value("vault_pin1"), secret_value("vault_pin2")
    kv.create_or_update_secret(path=f"{namespace}/pin", secret={"v": b1})
    kv.create_or_update_secret(path=f"{namespace}/pin", secret={"v": b2})
    g1, g2 = secret_value("gcp_pin1").encode(), secret_value("gcp_pin2").encode()
    gcp_secret(gcp, "bots", f"{namespace}-pin", g1, g2)

    bs.create(kube, namespace, "pins", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint), bs.vault_source(kube, namespace, vault.address),
                    bs.gcp_source(gcp.endpoint)],
        "data": [
            {"key": "AWS_PREVIOUS", "source": "aws", "remoteRef": {"name": f"{namespace}/pin", "version": "AWSPREVIOUS"}},
            {"key": "AWS_BY_ID", "source": "aws", "remoteRef": {"name": f"{namespace}/pin", "version": first_id}},
            {"key": "AWS_CURRENT", "source": "aws", "remoteRef": {"name": f"{namespace}/pin"}},
            {"key": "VAULT_V1", "source": "vault", "remoteRef": {"name": f"{namespace}/pin", "property": "v",
                                                                 "version": "1"}},
            {"key": "VAULT_LATEST", "source": "vault", "remoteRef": {"name": f"{namespace}/pin", "property": "v"}},
            {"key": "GCP_V1", "source": "gcp", "remoteRef": {"name": f"{namespace}-pin", "version": "1"}},
            {"key": "GCP_LATEST", "source": "gcp", "remoteRef": {"name": f"{namespace}-pin"}},
        ],
    })
    bs.wait_secret(kube, namespace, "pins", {
        "AWS_PREVIOUS": v1.encode(), "AWS_BY_ID": v1.encode(), "AWS_CURRENT": v2.encode(),
        "VAULT_V1": b1.encode(), "VAULT_LATEST": b2.encode(), "GCP_V1": g1, "GCP_LATEST": g2,
    })
    versions = {k["key"]: k["version"] for k in bs.wait_ready(kube, namespace, "pins")["status"]["keys"]}
    assert versions["AWS_BY_ID"] == first_id
    assert versions["VAULT_V1"] == "1" and versions["VAULT_LATEST"] == "2"
    assert versions["GCP_V1"] == "1" and versions["GCP_LATEST"] == "2"


def test_two_providers_in_one_botsecret(operator: Any, kube: Kube, namespace: str, aws: MotoServer,
                                        vault: Any) -> None:
    a, v = secret_value("two_aws"), secret_value("two_vault")
    aws.client().create_secret(Name=f"{namespace}/a", SecretString=a)
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/v", secret={"token": v})
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint), bs.vault_source(kube, namespace, vault.address)],
        "data": [{"key": "A", "source": "aws", "remoteRef": {"name": f"{namespace}/a"}},
                 {"key": "V", "source": "vault", "remoteRef": {"name": f"{namespace}/v", "property": "token"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"A": a.encode(), "V": v.encode()})


def test_missing_key_writes_nothing_and_keeps_the_synced_secret(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    present = secret_value("present")
    aws.client().create_secret(Name=f"{namespace}/present", SecretString=present)
    source = bs.aws_source(kube, namespace, aws.endpoint)
    bs.create(kube, namespace, "fresh", {
        "sources": [source],
        "data": [{"key": "PRESENT", "remoteRef": {"name": f"{namespace}/present"}},
                 {"key": "ABSENT", "remoteRef": {"name": f"{namespace}/absent"}}],
    })
    body = bs.wait_ready(kube, namespace, "fresh", status="False", reason="MissingKeys")
    assert "ABSENT" in bs.ready(body)["message"] and "PRESENT" not in bs.ready(body)["message"]
    assert bs.secret_data(kube, namespace, "fresh") is None

    bs.create(kube, namespace, "synced", {"sources": [source],
                                          "data": [{"key": "PRESENT", "remoteRef": {"name": f"{namespace}/present"}}]})
    bs.wait_secret(kube, namespace, "synced", {"PRESENT": present.encode()})
    bs.patch_spec(kube, namespace, "synced", {"data": [
        {"key": "PRESENT", "remoteRef": {"name": f"{namespace}/present"}},
        {"key": "ABSENT", "remoteRef": {"name": f"{namespace}/absent"}},
    ]})
    bs.wait_ready(kube, namespace, "synced", status="False", reason="MissingKeys")
    assert bs.secret_data(kube, namespace, "synced") == {"PRESENT": present.encode()}

    # A key left out of spec.required may be missing.
    bs.patch_spec(kube, namespace, "synced", {"required": ["PRESENT"]})
    body = bs.wait_ready(kube, namespace, "synced", reason="Synced")
    assert "ABSENT" in bs.ready(body)["message"]


def test_provider_outage_keeps_the_secret_and_recovers(
    operator: Any, kube: Kube, namespace: str, artifacts: Any,
) -> None:
    server = MotoServer(port=free_port(), log=artifacts / "moto-outage.log")
    server.start()
    try:
        value = secret_value("outage")
        server.client().create_secret(Name="bot", SecretString=value)
        bs.create(kube, namespace, "bot", {
            "sources": [bs.aws_source(kube, namespace, server.endpoint)],
            "refreshInterval": "5s",
            "data": [{"key": "K", "remoteRef": {"name": "bot"}}],
        })
        bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})
        server.stop()
        bs.force_sync(kube, namespace, "bot")
        body = bs.wait_ready(kube, namespace, "bot", status="False", reason="ProviderError")
        assert "aws" in bs.ready(body)["message"]
        assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}
        assert body["status"]["dataHMAC"], "the last good sync stays on record"

        server.start()  # moto keeps no state across restarts: seed it again
        server.client().create_secret(Name="bot", SecretString=value)
        bs.wait_ready(kube, namespace, "bot", reason="Synced", timeout=60)
        assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}
    finally:
        server.stop()


def test_drift_is_restored(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    value = secret_value("drift")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    bs.create(kube, namespace, "bot", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})

    kube.core.patch_namespaced_secret("bot", namespace, {"stringData": {"K": "edited", "EXTRA": "x"}})
    bs.force_sync(kube, namespace, "bot")
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})

    kube.core.delete_namespaced_secret("bot", namespace)
    bs.force_sync(kube, namespace, "bot")
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})


@pytest.mark.parametrize(("creation", "deletion", "survives"), [
    ("Owner", "Delete", False), ("Owner", "Retain", True), ("Orphan", "Retain", True), ("Orphan", "Delete", False),
])
def test_deletion_policies(operator: Any, kube: Kube, namespace: str, aws: MotoServer,
                           creation: str, deletion: str, survives: bool) -> None:
    value = secret_value(f"del_{creation}_{deletion}")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
        "target": {"creationPolicy": creation, "deletionPolicy": deletion},
    })
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})
    bs.delete(kube, namespace, "bot")
    wait_for(lambda: bs.gone(kube, namespace, "bot"), what="BotSecret gone")
    if survives:
        time.sleep(2)  # give the garbage collector the chance to do the wrong thing
        assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}
        assert not kube.core.read_namespaced_secret("bot", namespace).metadata.owner_references
    else:
        wait_for(lambda: bs.secret_data(kube, namespace, "bot") is None, what="Secret deleted")


def test_merge_into_a_hand_made_secret(operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    value = secret_value("merge")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    kube.core.create_namespaced_secret(namespace, {
        "metadata": {"name": "hand-made", "labels": {"team": "bots"}},
        "stringData": {"CONFIG": "debug=false", "K": "placeholder"},
    })
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
        "target": {"name": "hand-made", "creationPolicy": "Merge", "deletionPolicy": "Delete"},
    })
    bs.wait_secret(kube, namespace, "hand-made", {"CONFIG": b"debug=false", "K": value.encode()})
    secret = kube.core.read_namespaced_secret("hand-made", namespace)
    assert secret.metadata.labels == {"team": "bots"}
    assert not secret.metadata.owner_references

    bs.delete(kube, namespace, "bot")
    bs.wait_secret(kube, namespace, "hand-made", {"CONFIG": b"debug=false"})


def test_data_over_a_secrets_size_limit_is_refused_with_a_condition(
    operator: Any, kube: Kube, namespace: str, vault: Any,
) -> None:
    small = secret_value("small")
    kv = vault.client().secrets.kv.v2
    kv.create_or_update_secret(path=f"{namespace}/small", secret={"v": small})
    bs.create(kube, namespace, "bot", {
        "sources": [bs.vault_source(kube, namespace, vault.address)],
        "data": [{"key": "SMALL", "remoteRef": {"name": f"{namespace}/small", "property": "v"}}],
    })
    bs.wait_secret(kube, namespace, "bot", {"SMALL": small.encode()})

    kv.create_or_update_secret(path=f"{namespace}/huge", secret={"v": secret_value("huge") + "x" * (1100 * 1024)})
    bs.patch_spec(kube, namespace, "bot", {"data": [
        {"key": "SMALL", "remoteRef": {"name": f"{namespace}/small", "property": "v"}},
        {"key": "HUGE", "remoteRef": {"name": f"{namespace}/huge", "property": "v"}},
    ]})
    body = bs.wait_ready(kube, namespace, "bot", status="False", reason="DataTooLarge")
    assert "a Secret holds at most" in bs.ready(body)["message"]
    assert bs.secret_data(kube, namespace, "bot") == {"SMALL": small.encode()}


def test_two_botsecrets_merge_into_one_secret_and_each_removes_only_its_keys(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    a, b = secret_value("merge_a"), secret_value("merge_b")
    sm = aws.client()
    sm.create_secret(Name=f"{namespace}/a", SecretString=a)
    sm.create_secret(Name=f"{namespace}/b", SecretString=b)
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "env"}, "stringData": {"MINE": "kept"}})
    source = bs.aws_source(kube, namespace, aws.endpoint)
    target = {"name": "env", "creationPolicy": "Merge", "deletionPolicy": "Delete"}
    bs.create(kube, namespace, "a", {"sources": [source], "target": target, "refreshInterval": "5s",
                                     "data": [{"key": "A", "remoteRef": {"name": f"{namespace}/a"}}]})
    bs.create(kube, namespace, "b", {"sources": [source], "target": target, "refreshInterval": "5s",
                                     "data": [{"key": "B", "remoteRef": {"name": f"{namespace}/b"}}]})
    bs.wait_secret(kube, namespace, "env", {"MINE": b"kept", "A": a.encode(), "B": b.encode()})
    # Evidence of a refresh of each after both keys were there: neither may take the other's key away.
    for name in "ab":
        bs.wait_ready(kube, namespace, name, reason="Synced")
    both_there = time.time()
    for name in "ab":
        bs.wait_refreshed(operator, namespace, name, after=both_there)
    assert bs.secret_data(kube, namespace, "env") == {"MINE": b"kept", "A": a.encode(), "B": b.encode()}
    assert all(bs.ready(bs.get(kube, namespace, name))["reason"] == "Synced" for name in "ab")
    bs.delete(kube, namespace, "a")
    bs.wait_secret(kube, namespace, "env", {"MINE": b"kept", "B": b.encode()})


def _secret_names(kube: Kube, namespace: str) -> set[str]:
    return {s.metadata.name for s in kube.core.list_namespaced_secret(namespace).items}


def test_a_remote_secret_created_after_its_botsecret_is_synced_within_seconds(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    # GitOps ordering: the BotSecret lands before the remote secret it names.
    value = secret_value("late_remote")
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)], "refreshInterval": "1h",
        "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/late"}}],
    })
    bs.wait_ready(kube, namespace, "bot", status="False", reason="MissingKeys")
    aws.client().create_secret(Name=f"{namespace}/late", SecretString=value)
    # No force-sync and the refresh is an hour away: only the retry of a missing key can carry it.
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()}, timeout=60)
    body = bs.wait_ready(kube, namespace, "bot", reason="Synced")
    assert "forceSyncHandled" not in body["status"]


def test_a_credentials_secret_created_after_its_botsecret_is_used_within_seconds(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    value = secret_value("late_credentials")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    before = _secret_names(kube, namespace)
    source = bs.aws_source(kube, namespace, aws.endpoint)
    credentials = [kube.core.read_namespaced_secret(n, namespace) for n in _secret_names(kube, namespace) - before]
    assert credentials, "aws_source made no credentials Secret in the namespace"
    for secret in credentials:
        kube.core.delete_namespaced_secret(secret.metadata.name, namespace)
    bs.create(kube, namespace, "bot", {"sources": [source], "refreshInterval": "1h",
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    bs.wait_ready(kube, namespace, "bot", status="False", reason="AccessDenied")
    for secret in credentials:
        kube.core.create_namespaced_secret(namespace, {"metadata": {"name": secret.metadata.name},
                                                       "data": secret.data, "type": secret.type})
    bs.wait_secret(kube, namespace, "bot", {"K": value.encode()}, timeout=60)
    assert "forceSyncHandled" not in bs.wait_ready(kube, namespace, "bot", reason="Synced")["status"]


def test_missing_keys_name_the_remote_state(operator: Any, kube: Kube, namespace: str, aws: MotoServer,
                                            vault: Any, gcp: Any) -> None:
    values = [secret_value(f"state{i}") for i in range(4)]
    gcp_id = f"{namespace}-off"
    gcp_secret(gcp, "bots", gcp_id, values[0].encode())
    gcp.set_state(f"projects/bots/secrets/{gcp_id}/versions/1", "DISABLED")
    kv = vault.client().secrets.kv.v2
    kv.create_or_update_secret(path=f"{namespace}/gone", secret={"v": values[1]})
    kv.create_or_update_secret(path=f"{namespace}/gone", secret={"v": values[2]})
    kv.delete_latest_version_of_secret(path=f"{namespace}/gone")
    kv.destroy_secret_versions(path=f"{namespace}/gone", versions=[1])
    sm = aws.client()
    sm.create_secret(Name=f"{namespace}/bye", SecretString=values[3])
    sm.delete_secret(SecretId=f"{namespace}/bye", RecoveryWindowInDays=7)
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint), bs.vault_source(kube, namespace, vault.address),
                    bs.gcp_source(gcp.endpoint)],
        "data": [
            {"key": "GCP_TOKEN", "source": "gcp", "remoteRef": {"name": gcp_id}},
            {"key": "VAULT_LATEST", "source": "vault", "remoteRef": {"name": f"{namespace}/gone", "property": "v"}},
            {"key": "VAULT_V1", "source": "vault",
             "remoteRef": {"name": f"{namespace}/gone", "property": "v", "version": "1"}},
            {"key": "AWS_TOKEN", "source": "aws", "remoteRef": {"name": f"{namespace}/bye"}},
        ],
    })
    message = bs.ready(bs.wait_ready(kube, namespace, "bot", status="False", reason="MissingKeys"))["message"]
    assert f"GCP_TOKEN: gcp secret '{gcp_id}' version latest is disabled" in message
    assert f"VAULT_LATEST: Vault secret 'secret/{namespace}/gone' version 2 is deleted" in message
    assert f"VAULT_V1: Vault secret 'secret/{namespace}/gone' version 1 is destroyed" in message
    assert f"AWS_TOKEN: AWS secret '{namespace}/bye' is scheduled for deletion" in message
    assert not [v for v in values if v in message]
    assert bs.secret_data(kube, namespace, "bot") is None


def test_a_throttled_provider_is_asked_less_often_than_a_healthy_one(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    value = secret_value("throttled")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    proxy = ThrottlingProxy(aws.endpoint)
    proxy.start()
    try:
        bs.create(kube, namespace, "bot", {
            "sources": [bs.aws_source(kube, namespace, proxy.endpoint)], "refreshInterval": "5s",
            "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
        })
        bs.wait_secret(kube, namespace, "bot", {"K": value.encode()})
        since = time.monotonic()
        healthy = proxy.wait_arrivals(4, since=since)
        proxy.throttling = True
        since = time.monotonic()
        throttled = proxy.wait_arrivals(3, since=since, throttled=True, timeout=120)
        proxy.throttling = False
        body = bs.get(kube, namespace, "bot")
        assert bs.ready(body)["reason"] == "ProviderError" and "throttled" in bs.ready(body)["message"]
        assert bs.secret_data(kube, namespace, "bot") == {"K": value.encode()}, "the last good Secret stays"
        print(f"requests per minute at refreshInterval 5s: healthy {per_minute(healthy):.1f}, "
              f"throttled {per_minute(throttled):.1f}")
        assert per_minute(throttled) < per_minute(healthy)

        bs.force_sync(kube, namespace, "bot")
        bs.wait_ready(kube, namespace, "bot", reason="Synced")
    finally:
        proxy.stop()


def test_synced_at_is_the_last_check_written_at_the_last_write_and_the_log_names_the_botsecret(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    sm = aws.client()
    first, second = secret_value("stamp1"), secret_value("stamp2")
    sm.create_secret(Name=f"{namespace}/k", SecretString=first)
    bs.create(kube, namespace, "bot", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                       "refreshInterval": "5s",
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}]})
    bs.wait_secret(kube, namespace, "bot", {"K": first.encode()})
    status = bs.wait_ready(kube, namespace, "bot", reason="Synced")["status"]
    written = status["writtenAt"]
    assert status["syncedAt"] >= written

    # A refresh that finds nothing new patches no status at all (issue 12): syncedAt stays.
    bs.wait_refreshed(operator, namespace, "bot", after=time.time())
    later = bs.get(kube, namespace, "bot")["status"]
    assert later["writtenAt"] == written and later["syncedAt"] == status["syncedAt"]
    sm.put_secret_value(SecretId=f"{namespace}/k", SecretString=second)
    bs.wait_secret(kube, namespace, "bot", {"K": second.encode()})
    wait_for(lambda: bs.get(kube, namespace, "bot")["status"]["writtenAt"] > written, what="writtenAt moved")

    # Every outcome line of the operator's log says which BotSecret it is about.
    line = wait_for(lambda: next((entry for entry in operator.output().splitlines()
                                  if f"{namespace}/bot Synced: 1 key synced to Secret 'bot'" in entry), None),
                    what="a log line naming the BotSecret")
    assert " s, Secret " in line  # the duration and whether the Secret was written
    assert "1 keys" not in operator.output()
