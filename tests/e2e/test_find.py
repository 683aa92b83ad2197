"""End to end: ``spec.dataFrom[].find`` selects remote secrets by name prefix, regexp and tags,
listing with each provider's own filters, against the real apiserver, moto, OpenBao and the GCP
fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer
from tests.harness.cli import botsecret, rows
from tests.harness.cluster_fixtures import Kube
from tests.harness.counting_proxy import CountingProxy
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.leaks import secret_value
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.features

PROJECT = "bots"


@pytest.fixture
def sm_proxy(aws: MotoServer) -> Iterator[CountingProxy]:
    proxy = CountingProxy(aws.endpoint)
    proxy.start()
    yield proxy
    proxy.stop()


def list_calls(proxy: CountingProxy) -> list[dict[str, Any]]:
    return [json.loads(body or "{}") for target, body in list(proxy.requests) if target == "secretsmanager.ListSecrets"]


def reads(proxy: CountingProxy) -> int:
    return sum(1 for target, _ in list(proxy.requests)
               if target in ("secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue"))


def found(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list((body.get("status") or {}).get("found") or [])


def aws_seed(aws: MotoServer, namespace: str) -> dict[str, str]:
    """Two bot secrets under one prefix with one tag; decoys with a similar prefix and another tag value."""
    values = {name: secret_value(name.replace("/", "_")) for name in (
        f"{namespace}/bots/X_API_KEY", f"{namespace}/bots/OPENAI_API_KEY",
        f"{namespace}/bots-old/X_API_KEY", f"{namespace}/other/X_API_KEY")}
    sm = aws.client()
    for name, value in values.items():
        team = "other" if "/other/" in name else "bots"
        sm.create_secret(Name=name, SecretString=value,
                         Tags=[{"Key": "team", "Value": team}, {"Key": "ns", "Value": namespace},
                               {"Key": "old", "Value": str("-old/" in name).lower()}])
    return values


def test_aws_find_by_prefix_picks_exactly_the_prefix_and_rewrites_the_keys(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, sm_proxy: CountingProxy) -> None:
    values = aws_seed(aws, namespace)
    bs.create(kube, namespace, "bots", {
        "sources": [bs.aws_source(kube, namespace, sm_proxy.endpoint)],
        "dataFrom": [{"find": {"path": f"{namespace}/bots/"}, "rewrite": [{"stripPrefix": f"{namespace}/bots/"}]}],
    })
    body = bs.wait_ready(kube, namespace, "bots", reason="Synced")
    assert bs.secret_data(kube, namespace, "bots") == {
        "X_API_KEY": values[f"{namespace}/bots/X_API_KEY"].encode(),
        "OPENAI_API_KEY": values[f"{namespace}/bots/OPENAI_API_KEY"].encode()}
    [entry] = found(body)
    assert entry["dataFrom"] == 0 and [(m["name"], m["key"]) for m in entry["matches"]] == [
        (f"{namespace}/bots/OPENAI_API_KEY", "OPENAI_API_KEY"), (f"{namespace}/bots/X_API_KEY", "X_API_KEY")]
    assert all(m["version"] for m in entry["matches"])
    assert not any(v in json.dumps(body) for v in values.values())
    # The operator asked AWS to filter by name, not for every secret of the account.
    calls = list_calls(sm_proxy)
    assert calls and all(c.get("Filters") == [{"Key": "name", "Values": [f"{namespace}/bots/"]}] for c in calls)


def test_aws_find_by_tag_and_by_regexp(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, sm_proxy: CountingProxy) -> None:
    values = aws_seed(aws, namespace)
    source = bs.aws_source(kube, namespace, sm_proxy.endpoint)
    bs.create(kube, namespace, "tagged", {
        "sources": [source],
        "dataFrom": [{"find": {"tags": {"team": "bots", "ns": namespace, "old": "false"}},
                      "rewrite": [{"regexp": {"source": "^.*/(?P<leaf>[^/]+)$", "target": "BOT_${leaf}"}}]}],
    })
    bs.create(kube, namespace, "regexp", {
        "sources": [source],
        "dataFrom": [{"find": {"name": {"regexp": f"^{namespace}/bots/X_"}},
                      "rewrite": [{"regexp": {"source": "^.*/(X_.*)$", "target": "$1"}}]}],
    })
    bs.wait_ready(kube, namespace, "tagged", reason="Synced")
    assert bs.secret_data(kube, namespace, "tagged") == {
        "BOT_X_API_KEY": values[f"{namespace}/bots/X_API_KEY"].encode(),
        "BOT_OPENAI_API_KEY": values[f"{namespace}/bots/OPENAI_API_KEY"].encode()}
    bs.wait_ready(kube, namespace, "regexp", reason="Synced")
    assert bs.secret_data(kube, namespace, "regexp") == {"X_API_KEY": values[f"{namespace}/bots/X_API_KEY"].encode()}
    tag_filters = [c["Filters"] for c in list_calls(sm_proxy) if any(f["Key"] == "tag-key" for f in c.get("Filters", []))]
    assert tag_filters and tag_filters[0] == [{"Key": "tag-key", "Values": ["ns", "old", "team"]},
                                              {"Key": "tag-value", "Values": sorted(["bots", namespace, "false"])}]


def test_aws_too_many_matches_reads_and_writes_nothing_and_a_deleted_secret_loses_its_key(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, sm_proxy: CountingProxy) -> None:
    values = aws_seed(aws, namespace)
    bs.create(kube, namespace, "bots", {
        "sources": [bs.aws_source(kube, namespace, sm_proxy.endpoint)],
        "dataFrom": [{"find": {"path": f"{namespace}/bots/", "maxMatches": 2},
                      "rewrite": [{"stripPrefix": f"{namespace}/bots/"}]}],
    })
    bs.wait_ready(kube, namespace, "bots", reason="Synced")
    good = bs.secret_data(kube, namespace, "bots")
    assert good is not None and set(good) == {"X_API_KEY", "OPENAI_API_KEY"}

    bs.patch_spec(kube, namespace, "bots", {"dataFrom": [{"find": {"path": f"{namespace}/bots/", "maxMatches": 1},
                                                          "rewrite": [{"stripPrefix": f"{namespace}/bots/"}]}]})
    before = reads(sm_proxy)
    body = bs.wait_ready(kube, namespace, "bots", status="False", reason="TooManyMatches")
    assert "spec.dataFrom[0].find matches more than 1 remote secrets" in bs.ready(body)["message"]  # type: ignore[index]
    assert reads(sm_proxy) == before, "nothing is read past the listing"
    assert bs.secret_data(kube, namespace, "bots") == good

    bs.patch_spec(kube, namespace, "bots", {"dataFrom": [{"find": {"path": f"{namespace}/bots/"},
                                                          "rewrite": [{"stripPrefix": f"{namespace}/bots/"}]}]})
    bs.wait_ready(kube, namespace, "bots", reason="Synced")
    aws.client().delete_secret(SecretId=f"{namespace}/bots/OPENAI_API_KEY", ForceDeleteWithoutRecovery=True)
    bs.force_sync(kube, namespace, "bots")
    bs.wait_secret(kube, namespace, "bots", {"X_API_KEY": values[f"{namespace}/bots/X_API_KEY"].encode()})


def test_gcp_find_by_label_and_prefix_sends_the_filter_and_a_listing_error_keeps_the_secret(
        operator: Any, kube: Kube, namespace: str, gcp: GcpSecretManagerFake) -> None:
    values = {}
    for secret_id, team in ((f"{namespace}-bots-token", "bots"), (f"{namespace}-bots-key", "bots"),
                            (f"{namespace}-bots-decoy", "other"), (f"{namespace}-botsold-token", "bots")):
        values[secret_id] = secret_value(secret_id)
        gcp.put(PROJECT, secret_id, values[secret_id].encode(), labels={"team": team, "ns": namespace})
    bs.create(kube, namespace, "bots", {
        "sources": [bs.gcp_source(gcp.endpoint, project=PROJECT)],
        "dataFrom": [{"find": {"path": f"{namespace}-bots-", "tags": {"team": "bots", "ns": namespace}},
                      "rewrite": [{"stripPrefix": f"{namespace}-bots-"}]}],
    })
    bs.wait_ready(kube, namespace, "bots", reason="Synced")
    good = {"token": values[f"{namespace}-bots-token"].encode(), "key": values[f"{namespace}-bots-key"].encode()}
    assert bs.secret_data(kube, namespace, "bots") == good
    assert f"name:{namespace}-bots- AND labels.ns={namespace} AND labels.team=bots" in gcp.list_filters

    gcp.fail_next(grpc.StatusCode.UNAVAILABLE, count=50, method="ListSecrets")
    try:
        bs.force_sync(kube, namespace, "bots")
        body = bs.wait_ready(kube, namespace, "bots", status="False", reason="ProviderError")
        assert "spec.dataFrom[0].find" in bs.ready(body)["message"]  # type: ignore[index]
        assert bs.secret_data(kube, namespace, "bots") == good, "a listing error keeps the Secret"
    finally:
        gcp.reset_failures()


def test_vault_find_lists_recursively_refuses_tags_and_a_key_conflict_names_both(
        operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    client = vault.client()
    values = {}
    for path in (f"{namespace}/bots/alpha", f"{namespace}/bots/team/beta", f"{namespace}/bots2/gamma"):
        values[path] = {"v": secret_value(path.replace("/", "_"))}
        client.secrets.kv.v2.create_or_update_secret(path=path, secret=values[path])
    source = bs.vault_source(kube, namespace, vault.address)
    bs.create(kube, namespace, "bots", {
        "sources": [source],
        "dataFrom": [{"find": {"path": f"{namespace}/bots/"}, "rewrite": [{"stripPrefix": f"{namespace}/bots/"}]}],
    })
    bs.wait_ready(kube, namespace, "bots", reason="Synced")
    data = bs.secret_data(kube, namespace, "bots") or {}
    assert {k: json.loads(v) for k, v in data.items()} == {
        "alpha": values[f"{namespace}/bots/alpha"], "team_beta": values[f"{namespace}/bots/team/beta"]}

    bs.patch_spec(kube, namespace, "bots", {"dataFrom": [{"find": {"path": f"{namespace}/", "tags": {"a": "b"}}}]})
    body = bs.wait_ready(kube, namespace, "bots", status="False", reason="InvalidSpec")
    assert bs.ready(body)["message"].startswith("spec.dataFrom[0].find.tags: ")  # type: ignore[index]
    assert set(bs.secret_data(kube, namespace, "bots") or {}) == {"alpha", "team_beta"}

    bs.patch_spec(kube, namespace, "bots", {"dataFrom": [
        {"find": {"path": f"{namespace}/bots/"}, "rewrite": [{"regexp": {"source": "^.*/", "target": ""}}]},
        {"find": {"path": f"{namespace}/bots2/"}, "rewrite": [{"regexp": {"source": "^.*/", "target": ""}},
                                                              {"regexp": {"source": "gamma", "target": "alpha"}}]},
    ]})
    body = bs.wait_ready(kube, namespace, "bots", status="False", reason="KeyConflict")
    message = bs.ready(body)["message"]  # type: ignore[index]
    assert f"dataFrom[0] ({namespace}/bots/alpha)" in message and f"dataFrom[1] ({namespace}/bots2/gamma)" in message


def test_with_merge_a_key_no_longer_listed_is_dropped_and_foreign_keys_stay(
        operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    client = vault.client()
    for leaf in ("alpha", "beta"):
        client.secrets.kv.v2.create_or_update_secret(path=f"{namespace}/merge/{leaf}", secret={"v": leaf})
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "shared"}, "stringData": {"OTHER": "theirs"}})
    bs.create(kube, namespace, "bots", {
        "sources": [bs.vault_source(kube, namespace, vault.address)],
        "target": {"name": "shared", "creationPolicy": "Merge"},
        "dataFrom": [{"find": {"path": f"{namespace}/merge/"}, "rewrite": [{"stripPrefix": f"{namespace}/merge/"}]}],
    })
    bs.wait_ready(kube, namespace, "bots", reason="Synced")
    assert set(bs.secret_data(kube, namespace, "shared") or {}) == {"OTHER", "alpha", "beta"}
    client.secrets.kv.v2.delete_metadata_and_all_versions(path=f"{namespace}/merge/beta")
    bs.force_sync(kube, namespace, "bots")
    wait_for(lambda: set(bs.secret_data(kube, namespace, "shared") or {}) == {"OTHER", "alpha"},
             what="beta dropped")
    assert (bs.secret_data(kube, namespace, "shared") or {})["OTHER"] == b"theirs"


def test_check_and_render_list_the_find_as_the_operator_does(
        operator: Any, kube: Kube, namespace: str, vault: Any, cluster: Any, artifacts: Path, tmp_path: Path) -> None:
    client = vault.client()
    values = {leaf: {"v": secret_value(f"find_cli_{leaf}")} for leaf in ("alpha", "beta")}
    for leaf, value in values.items():
        client.secrets.kv.v2.create_or_update_secret(path=f"{namespace}/cli/{leaf}", secret=value)
    source = bs.vault_source(kube, namespace, vault.address)
    spec = bs.file_inline_sources(kube, namespace, {"sources": [source], "dataFrom": [
        {"find": {"path": f"{namespace}/cli/"}, "rewrite": [{"stripPrefix": f"{namespace}/cli/"}]}]})
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret",
                                    "metadata": {"name": "cli"}, "spec": spec}))
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "-f", str(path), "-n", namespace)
    assert run.code == 0, run
    table = rows(run.out)
    assert {k: (v[2], v[-2]) for k, v in table.items()} == {
        "alpha": (f"{namespace}/cli/alpha", "OK"), "beta": (f"{namespace}/cli/beta", "OK")}
    assert not any(v["v"] in run.out + run.err for v in values.values())
    rendered = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", str(path), "-n", namespace,
                         "--format", "json")
    assert rendered.code == 0, rendered.err
    assert {k: json.loads(v) for k, v in json.loads(rendered.out_bytes).items()} == values

    spec["dataFrom"][0]["find"]["maxMatches"] = 1
    path.write_text(yaml.safe_dump({"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret",
                                    "metadata": {"name": "cli"}, "spec": spec}))
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "-f", str(path), "-n", namespace)
    assert run.code == 1 and rows(run.out)["dataFrom[0]"][-2] == "TooManyMatches", run.out
    failed = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", str(path), "-n", namespace)
    assert failed.code == 1 and failed.out == "" and "TooManyMatches" in failed.err
