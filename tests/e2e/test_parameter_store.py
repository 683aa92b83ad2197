"""End to end: AWS Systems Manager Parameter Store as a store's source (``provider.aws.service:
ParameterStore``), against the real apiserver and moto's SSM."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cli import botsecret, rows
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.counting_proxy import CountingProxy
from tests.harness.fault_proxy import FaultProxy
from tests.harness.leaks import secret_value
from tests.harness.stores import create_store
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.features

# What a parameter must carry unchanged: a newline, quotes, a backslash, non-ASCII.
AWKWARD = ' "quoted" \\ back\nslash é🔑'


@pytest.fixture
def ssm_proxy(aws: MotoServer) -> Iterator[CountingProxy]:
    proxy = CountingProxy(aws.endpoint)
    proxy.start()
    yield proxy
    proxy.stop()


def ssm_store(kube: Kube, namespace: str, endpoint: str, name: str = "params") -> dict[str, Any]:
    bs.credentials_secret(kube, namespace, f"{name}-credentials", {"accessKeyId": "testing", "secretAccessKey": "testing"})
    create_store(kube, namespace, name, {"aws": {
        "service": "ParameterStore", "region": "us-east-1", "endpoint": endpoint, "stsEndpoint": endpoint,
        "credentialsSecretRef": {"name": f"{name}-credentials"}}})
    return {"name": "params", "storeRef": {"name": name}}


def synced(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """Force a sync and wait for the status of the cycle that handled it."""
    handled = bs.force_sync(kube, namespace, name)
    return wait_for(lambda: (s := bs.get(kube, namespace, name).get("status") or {}).get("forceSyncHandled") == handled
                    and s, what=f"force-sync {handled} handled")


def calls(proxy: CountingProxy, action: str) -> list[dict[str, Any]]:
    return [json.loads(body or "{}") for target, body in list(proxy.requests) if target == f"AmazonSSM.{action}"]


def test_string_and_secure_string_with_pins_property_and_batches_of_ten(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, ssm_proxy: CountingProxy) -> None:
    ssm = aws.client("ssm")
    base = f"/{namespace}/bot"
    token, key = secret_value("ssm_token") + AWKWARD, secret_value("ssm_key") + AWKWARD
    ssm.put_parameter(Name=f"{base}/TOKEN", Value=token, Type="SecureString")
    ssm.put_parameter(Name=f"{base}/CONFIG", Value=json.dumps({"api_key": key}), Type="String")
    rotated = secret_value("ssm_token_v2")
    ssm.put_parameter(Name=f"{base}/TOKEN", Value=rotated, Type="SecureString", Overwrite=True)
    ssm.label_parameter_version(Name=f"{base}/TOKEN", ParameterVersion=1, Labels=["stable"])
    many = {f"P{i:02d}": secret_value(f"ssm_p{i}") for i in range(14)}
    for k, v in many.items():
        ssm.put_parameter(Name=f"{base}/{k}", Value=v, Type="String")
    bs.create(kube, namespace, "bot", {
        "sources": [ssm_store(kube, namespace, ssm_proxy.endpoint)],
        "data": [{"key": "TOKEN", "remoteRef": {"name": f"{base}/TOKEN"}},
                 {"key": "TOKEN_V1", "remoteRef": {"name": f"{base}/TOKEN", "version": "1"}},
                 {"key": "TOKEN_STABLE", "remoteRef": {"name": f"{base}/TOKEN", "version": "stable"}},
                 {"key": "API_KEY", "remoteRef": {"name": f"{base}/CONFIG", "property": "api_key"}},
                 *({"key": k, "remoteRef": {"name": f"{base}/{k}"}} for k in many)],
    })
    body = bs.wait_ready(kube, namespace, "bot", reason="Synced")
    data = bs.secret_data(kube, namespace, "bot")
    assert data == {"TOKEN": rotated.encode(), "TOKEN_V1": token.encode(), "TOKEN_STABLE": token.encode(),
                    "API_KEY": key.encode(), **{k: v.encode() for k, v in many.items()}}
    versions = {k["key"]: k["version"] for k in body["status"]["keys"]}
    assert versions["TOKEN"] == "2" and versions["TOKEN_V1"] == "1" and versions["TOKEN_STABLE"] == "1"
    # One sync reads the 16 unpinned names (TOKEN, CONFIG and 14 more) in ceil(16 / 10) calls.
    ssm_proxy.requests.clear()
    synced(kube, namespace, "bot")
    batches = calls(ssm_proxy, "GetParameters")
    assert sorted(n for b in batches for n in b["Names"]) == sorted(
        [f"{base}/TOKEN", f"{base}/CONFIG", *(f"{base}/{k}" for k in many)])
    assert len(batches) == math.ceil(16 / 10) == 2
    print(f"parameter store: 16 names, {len(batches)} GetParameters calls in one sync")
    assert all(b.get("WithDecryption") is True for b in batches)


def test_a_rotation_restarts_once_a_missing_parameter_is_named_and_an_outage_keeps_the_secret(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    ssm = aws.client("ssm")
    name = f"/{namespace}/bot/TOKEN"
    ssm.put_parameter(Name=name, Value=secret_value("ssm_rot_1"), Type="SecureString")
    proxy = FaultProxy(aws.port)
    proxy.start()
    try:
        wl.deployment(kube, namespace, "app", **wl.uses_all("bot"))
        wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
        bs.create(kube, namespace, "bot", {
            "sources": [ssm_store(kube, namespace, proxy.endpoint)],
            "data": [{"key": "TOKEN", "remoteRef": {"name": name}}],
            "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": "1s"},
        })
        bs.wait_ready(kube, namespace, "bot", reason="Synced")
        new = secret_value("ssm_rot_2")
        ssm.put_parameter(Name=name, Value=new, Type="SecureString", Overwrite=True)
        bs.force_sync(kube, namespace, "bot")
        wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2, what="one restart for the rotation")
        assert bs.secret_data(kube, namespace, "bot") == {"TOKEN": new.encode()}
        synced(kube, namespace, "bot")
        assert wl.replicasets(kube, namespace, "app") == 2, "an unchanged parameter restarts nothing"

        proxy.set_mode("drop")
        bs.force_sync(kube, namespace, "bot")
        body = bs.wait_ready(kube, namespace, "bot", status="False", reason="ProviderError")
        assert name in bs.ready(body)["message"]  # type: ignore[index]
        assert bs.secret_data(kube, namespace, "bot") == {"TOKEN": new.encode()}, "an outage keeps the Secret"
        proxy.set_mode("pass")

        bs.patch_spec(kube, namespace, "bot", {"data": [{"key": "TOKEN", "remoteRef": {"name": name}},
                                                        {"key": "GONE", "remoteRef": {"name": f"{name}-absent"}}]})
        body = bs.wait_ready(kube, namespace, "bot", status="False", reason="MissingKeys")
        assert f"{name}-absent" in bs.ready(body)["message"]  # type: ignore[index]
        assert new not in json.dumps(body)
        assert wl.replicasets(kube, namespace, "app") == 2
    finally:
        proxy.stop()


def test_find_lists_parameters_by_prefix_and_tag_with_the_services_own_filters(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, ssm_proxy: CountingProxy) -> None:
    ssm = aws.client("ssm")
    values = {}
    for leaf, team in (("bots/A", "bots"), ("bots/B", "bots"), ("bots/C", "other"), ("botsold/A", "bots")):
        values[leaf] = secret_value(f"ssm_find_{leaf.replace('/', '_')}")
        ssm.put_parameter(Name=f"/{namespace}/{leaf}", Value=values[leaf], Type="SecureString",
                          Tags=[{"Key": "team", "Value": team}])
    bs.create(kube, namespace, "bot", {
        "sources": [ssm_store(kube, namespace, ssm_proxy.endpoint)],
        "dataFrom": [{"find": {"path": f"/{namespace}/bots/", "tags": {"team": "bots"}},
                      "rewrite": [{"stripPrefix": f"/{namespace}/bots/"}]}],
    })
    bs.wait_ready(kube, namespace, "bot", reason="Synced")
    assert bs.secret_data(kube, namespace, "bot") == {"A": values["bots/A"].encode(), "B": values["bots/B"].encode()}
    described = calls(ssm_proxy, "DescribeParameters")
    assert described and described[0]["ParameterFilters"] == [
        {"Key": "Name", "Option": "BeginsWith", "Values": [f"/{namespace}/bots/"]},
        {"Key": "tag:team", "Values": ["bots"]}]


def test_check_and_render_read_parameters(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, cluster: ControlPlane, artifacts: Path,
        tmp_path: Path) -> None:
    ssm = aws.client("ssm")
    name = f"/{namespace}/cli/TOKEN"
    value = secret_value("ssm_cli") + AWKWARD
    ssm.put_parameter(Name=name, Value=value, Type="SecureString")
    source = ssm_store(kube, namespace, aws.endpoint)
    doc = {"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret", "metadata": {"name": "cli"},
           "spec": {"sources": [source], "data": [{"key": "TOKEN", "remoteRef": {"name": name}},
                                                  {"key": "GONE", "remoteRef": {"name": f"{name}-absent"}}]}}
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(doc))
    run = botsecret(artifacts, cluster.admin_kubeconfig, "check", "-f", str(path), "-n", namespace)
    assert run.code == 1, run
    table = rows(run.out)
    assert table["TOKEN"][-2] == "OK" and table["TOKEN"][3] == "1" and table["GONE"][-2] == "NotFound"
    assert value not in run.out + run.err

    doc["spec"]["data"] = doc["spec"]["data"][:1]
    path.write_text(yaml.safe_dump(doc))
    rendered = botsecret(artifacts, cluster.admin_kubeconfig, "render", "-f", str(path), "-n", namespace,
                         "--format", "json")
    assert rendered.code == 0, rendered.err
    assert json.loads(rendered.out_bytes) == {"TOKEN": value}
