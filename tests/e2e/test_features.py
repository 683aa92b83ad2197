"""End to end: target templates, refresh policies and the workload-side restart opt-in, against the
real apiserver, moto and OpenBao."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.harness import botsecrets as bs
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster_fixtures import Kube
from tests.harness.counting_proxy import CountingProxy
from tests.harness.leaks import secret_value
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.features

BOT_KEYS = ["X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_SECRET", "X_BEARER_TOKEN", "OPENAI_API_KEY"]
# What a .env must carry unchanged: quotes, a backslash, '#', '=', spaces, a newline, non-ASCII.
AWKWARD = ["", "'single'", '"double"', "back\\slash", " #not a comment = x ", "two\nlines é🔑"]
DOTENV_TEMPLATE = "".join(f"{k}={{{{ {k} | dotenv }}}}\n" for k in BOT_KEYS)


def bot_values() -> dict[str, str]:
    return {k: secret_value(k.lower()) + AWKWARD[i] for i, k in enumerate(BOT_KEYS)}


def vault_bot(kube: Kube, namespace: str, vault: Any, values: dict[str, str], **spec: Any) -> dict[str, Any]:
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/bot", secret=values)
    return {
        "sources": [bs.vault_source(kube, namespace, vault.address)],
        "data": [{"key": k, "remoteRef": {"name": f"{namespace}/bot", "property": k}} for k in BOT_KEYS],
        **spec,
    }


def test_a_dotenv_template_of_the_six_bot_keys_round_trips_through_python_dotenv(
        operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    values = bot_values()
    bs.create(kube, namespace, "bot", vault_bot(kube, namespace, vault, values, target={"name": "bot-env", "template": {
        "data": {".env": DOTENV_TEMPLATE, "config.json": '{{ {"openai": OPENAI_API_KEY} | tojson }}'},
        "labels": {"app": "bot"}, "annotations": {"rendered": "yes"}}}))
    status = bs.wait_ready(kube, namespace, "bot", reason="Synced")["status"]
    data = bs.secret_data(kube, namespace, "bot-env")
    assert data is not None and set(data) == {".env", "config.json"}, "mergePolicy Replace keeps only rendered keys"
    parsed = dotenv_values(stream=io.StringIO(data[".env"].decode("utf-8")), interpolate=False)
    assert {k: v.encode() for k, v in parsed.items() if v is not None} == {k: v.encode() for k, v in values.items()}
    assert json.loads(data["config.json"]) == {"openai": values["OPENAI_API_KEY"]}
    assert sorted(status["keys"], key=lambda k: k["key"]) == [
        {"key": ".env", "template": True}, {"key": "config.json", "template": True}]
    meta = kube.core.read_namespaced_secret("bot-env", namespace).metadata
    assert meta.labels["app"] == "bot" and meta.annotations["rendered"] == "yes"

    # A rotation of one key reaches the rendered file.
    values["X_API_KEY"] = secret_value("x_api_key_rotated") + "'\\\n"
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/bot", secret=values)
    bs.force_sync(kube, namespace, "bot")

    def rotated() -> bool:
        got = (bs.secret_data(kube, namespace, "bot-env") or {}).get(".env", b"").decode()
        return dotenv_values(stream=io.StringIO(got), interpolate=False).get("X_API_KEY") == values["X_API_KEY"]
    wait_for(rotated, what="the rotated X_API_KEY in .env")


def test_merge_policy_keeps_the_fetched_keys(operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    values = bot_values()
    bs.create(kube, namespace, "bot", vault_bot(kube, namespace, vault, values, target={"template": {
        "data": {".env": DOTENV_TEMPLATE}, "mergePolicy": "Merge"}}))
    bs.wait_ready(kube, namespace, "bot", reason="Synced")
    data = bs.secret_data(kube, namespace, "bot") or {}
    assert set(data) == {".env", *BOT_KEYS}
    assert data["X_API_KEY"] == values["X_API_KEY"].encode()


def test_a_template_error_is_a_condition_that_names_the_key_and_leaks_nothing(
        operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    values = bot_values()
    bs.create(kube, namespace, "bot", vault_bot(kube, namespace, vault, values, target={"template": {
        "data": {".env": DOTENV_TEMPLATE}}}))
    bs.wait_ready(kube, namespace, "bot", reason="Synced")
    good = bs.secret_data(kube, namespace, "bot")

    # Jinja's own message would be "'<value of X_API_KEY>' is undefined".
    bs.patch_spec(kube, namespace, "bot", {"target": {"template": {"data": {
        ".env": DOTENV_TEMPLATE, "broken.cfg": "first line\n{{ data[X_API_KEY] }}"}}}})
    body = bs.wait_ready(kube, namespace, "bot", status="False", reason="TemplateError")
    message = bs.ready(body)["message"]  # type: ignore[index]
    assert message == "spec.target.template.data[broken.cfg]: UndefinedError at line 2"
    assert bs.secret_data(kube, namespace, "bot") == good, "the last good Secret stays"
    # kopf posts events from a queue of its own, after the cycle's status patch: wait for it.
    events = wait_for(lambda: kube.core.list_namespaced_event(namespace, field_selector="reason=TemplateError").items,
                      what="the TemplateError event")
    assert events and all(e.message == message for e in events)
    shown = json.dumps(body) + "".join(e.message for e in events)
    assert not any(v in shown for v in values.values() if v)


def test_a_template_type_makes_a_docker_config_secret(operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    values = {"user": "bot", "password": secret_value("registry")}
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/registry", secret=values)
    bs.create(kube, namespace, "registry", {
        "sources": [bs.vault_source(kube, namespace, vault.address)],
        "data": [{"key": k, "remoteRef": {"name": f"{namespace}/registry", "property": k}} for k in values],
        "target": {"template": {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": (
            '{{ {"auths": {"registry.example": {"username": user, "password": password,'
            ' "auth": (user ~ ":" ~ password) | b64enc}}} | tojson }}')}}},
    })
    bs.wait_ready(kube, namespace, "registry", reason="Synced")
    secret = kube.core.read_namespaced_secret("registry", namespace)
    assert secret.type == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))
    auth = config["auths"]["registry.example"]
    assert auth["password"] == values["password"]
    assert base64.b64decode(auth["auth"]).decode() == f"bot:{values['password']}"


# refreshPolicy

@pytest.fixture
def sm_proxy(aws: MotoServer) -> Iterator[CountingProxy]:
    proxy = CountingProxy(aws.endpoint)
    proxy.start()
    yield proxy
    proxy.stop()


def aws_bot(kube: Kube, namespace: str, name: str, source: dict[str, Any], remote: str, **spec: Any) -> None:
    bs.create(kube, namespace, name, {"sources": [source], "data": [{"key": "TOKEN", "remoteRef": {"name": remote}}],
                                      "refreshInterval": "5s", **spec})


def token(kube: Kube, namespace: str, name: str) -> bytes | None:
    return (bs.secret_data(kube, namespace, name) or {}).get("TOKEN")


def handled_generation(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """Wait until the operator has run a cycle for the BotSecret's current generation."""
    def check() -> dict[str, Any] | None:
        body = bs.get(kube, namespace, name)
        status = body.get("status") or {}
        return body if status.get("observedGeneration") == body["metadata"]["generation"] else None
    return wait_for(check, what=f"BotSecret {name} generation handled")


def test_on_change_makes_no_provider_call_between_spec_changes(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, sm_proxy: CountingProxy) -> None:
    sm = aws.client()
    periodic, on_change = f"{namespace}/periodic", f"{namespace}/on-change"
    first = secret_value("on_change_1")
    sm.create_secret(Name=periodic, SecretString=secret_value("periodic"))
    sm.create_secret(Name=on_change, SecretString=first)
    source = bs.aws_source(kube, namespace, sm_proxy.endpoint)
    # The Periodic BotSecret is the clock: its reads show that refresh intervals went by.
    aws_bot(kube, namespace, "periodic", source, periodic)
    aws_bot(kube, namespace, "on-change", source, on_change, refreshPolicy="OnChange")
    bs.wait_ready(kube, namespace, "periodic")
    bs.wait_ready(kube, namespace, "on-change")
    assert token(kube, namespace, "on-change") == first.encode()
    reads = sm_proxy.reads_of(on_change)
    assert reads == 1

    second = secret_value("on_change_2")
    sm.put_secret_value(SecretId=on_change, SecretString=second)
    clock = sm_proxy.reads_of(periodic)
    wait_for(lambda: sm_proxy.reads_of(periodic) >= clock + 3, timeout=60, what="three refreshes of the Periodic one")
    assert sm_proxy.reads_of(on_change) == reads, "OnChange read the provider without a change"
    assert token(kube, namespace, "on-change") == first.encode()

    bs.patch_spec(kube, namespace, "on-change", {"refreshInterval": "6s"})  # a spec change
    handled_generation(kube, namespace, "on-change")
    wait_for(lambda: token(kube, namespace, "on-change") == second.encode(), what="the new value after a spec change")
    clock = sm_proxy.reads_of(periodic)
    wait_for(lambda: sm_proxy.reads_of(periodic) >= clock + 2, timeout=60, what="two more refreshes")
    assert sm_proxy.reads_of(on_change) == reads + 1

    handled = bs.force_sync(kube, namespace, "on-change")
    wait_for(lambda: (bs.get(kube, namespace, "on-change").get("status") or {}).get("forceSyncHandled") == handled)
    assert sm_proxy.reads_of(on_change) == reads + 2


def test_created_once_never_writes_again_after_a_remote_change(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer, sm_proxy: CountingProxy) -> None:
    sm = aws.client()
    remote = f"{namespace}/once"
    first = secret_value("once_1")
    sm.create_secret(Name=remote, SecretString=first)
    aws_bot(kube, namespace, "once", bs.aws_source(kube, namespace, sm_proxy.endpoint), remote,
            refreshPolicy="CreatedOnce")
    bs.wait_ready(kube, namespace, "once", reason="Synced")
    assert token(kube, namespace, "once") == first.encode()
    version = kube.core.read_namespaced_secret("once", namespace).metadata.resource_version
    reads = sm_proxy.reads_of(remote)

    sm.put_secret_value(SecretId=remote, SecretString=secret_value("once_2"))
    bs.patch_spec(kube, namespace, "once", {"refreshInterval": "6s"})  # a spec change: a cycle, no write
    body = handled_generation(kube, namespace, "once")
    assert bs.ready(body)["status"] == "True"  # type: ignore[index]
    assert "CreatedOnce" in bs.ready(body)["message"]  # type: ignore[index]
    secret = kube.core.read_namespaced_secret("once", namespace)
    assert secret.metadata.resource_version == version, "CreatedOnce wrote the Secret again"
    assert token(kube, namespace, "once") == first.encode()
    assert sm_proxy.reads_of(remote) == reads, "CreatedOnce asked the provider again"
    assert [k["key"] for k in body["status"]["keys"]] == ["TOKEN"]

    # Deleted, it is created once more, from the data of now.
    kube.core.delete_namespaced_secret("once", namespace)
    third = secret_value("once_3")
    sm.put_secret_value(SecretId=remote, SecretString=third)
    bs.patch_spec(kube, namespace, "once", {"refreshInterval": "7s"})
    wait_for(lambda: token(kube, namespace, "once") == third.encode(), what="the Secret created anew")


def test_created_once_syncs_again_on_a_force_sync(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    sm = aws.client()
    remote = f"{namespace}/once"
    sm.create_secret(Name=remote, SecretString=secret_value("once_1"))
    aws_bot(kube, namespace, "once", bs.aws_source(kube, namespace, aws.endpoint), remote,
            refreshPolicy="CreatedOnce")
    bs.wait_ready(kube, namespace, "once", reason="Synced")
    second = secret_value("once_2")
    sm.put_secret_value(SecretId=remote, SecretString=second)
    bs.force_sync(kube, namespace, "once")
    wait_for(lambda: token(kube, namespace, "once") == second.encode(), what="the force-synced value")


# Workload-side opt-in: botsecret.dev/restart-on

RESTART_ON = "botsecret.dev/restart-on"


def settle(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """Force a sync and wait until nothing waits or rolls out: any restart it made due shows first."""
    handled = bs.force_sync(kube, namespace, name)

    def done() -> dict[str, Any] | None:
        status = bs.get(kube, namespace, name).get("status") or {}
        if status.get("forceSyncHandled") != handled or status.get("pendingRollout"):
            return None
        return None if any(e.get("phase") == "Progressing" for e in status.get("rollout") or []) else status
    return wait_for(done, what=f"BotSecret {name} settled")


def test_an_opted_in_deployment_restarts_once_per_rotation_of_what_it_consumes(
        operator: Any, kube: Kube, namespace: str, aws: MotoServer) -> None:
    sm = aws.client()
    for key in ("A", "B"):
        sm.create_secret(Name=f"{namespace}/{key}", SecretString=secret_value(f"opt_{key}"))
    # By name, reading only A; "auto", reading all; the same without the annotation; one that opts in
    # for another Secret.
    wl.deployment(kube, namespace, "named", workload_annotations={RESTART_ON: "other, bot-env"},
                  **wl.uses_key("bot-env", "A"))
    wl.deployment(kube, namespace, "auto", workload_annotations={RESTART_ON: "auto"}, **wl.uses_all("bot-env"))
    wl.deployment(kube, namespace, "plain", **wl.uses_all("bot-env"))
    wl.deployment(kube, namespace, "elsewhere", workload_annotations={RESTART_ON: "other"}, **wl.uses_all("bot-env"))
    wl.statefulset(kube, namespace, "auto-sts", workload_annotations={RESTART_ON: "auto"}, **wl.uses_key("bot-env", "B"))
    apps = ("named", "auto", "plain", "elsewhere")
    wait_for(lambda: all(wl.replicasets(kube, namespace, app) == 1 for app in apps))
    bs.create(kube, namespace, "bot", {
        "sources": [bs.aws_source(kube, namespace, aws.endpoint)],
        "data": [{"key": k, "remoteRef": {"name": f"{namespace}/{k}"}} for k in ("A", "B")],
        "target": {"name": "bot-env"}, "rollout": {"debounce": "1s"},  # no targets
    })
    bs.wait_ready(kube, namespace, "bot")
    status = settle(kube, namespace, "bot")
    assert sorted((e["kind"], e["name"]) for e in status["rollout"]) == [
        ("Deployment", "auto"), ("Deployment", "named"), ("StatefulSet", "auto-sts")]
    assert all(wl.replicasets(kube, namespace, app) == 1 for app in apps), "the first sync restarted something"

    sm.put_secret_value(SecretId=f"{namespace}/A", SecretString=secret_value("opt_A"))
    bs.force_sync(kube, namespace, "bot")
    wait_for(lambda: wl.replicasets(kube, namespace, "named") == 2 and wl.replicasets(kube, namespace, "auto") == 2)
    settle(kube, namespace, "bot")
    assert [wl.replicasets(kube, namespace, app) for app in apps] == [2, 2, 1, 1]
    assert wl.template_annotation(kube, namespace, "StatefulSet", "auto-sts") is None, "it reads only B"

    sm.put_secret_value(SecretId=f"{namespace}/B", SecretString=secret_value("opt_B"))
    bs.force_sync(kube, namespace, "bot")
    wait_for(lambda: wl.replicasets(kube, namespace, "auto") == 3)
    wait_for(lambda: wl.template_annotation(kube, namespace, "StatefulSet", "auto-sts") is not None)
    settle(kube, namespace, "bot")
    assert [wl.replicasets(kube, namespace, app) for app in apps] == [2, 3, 1, 1]
    events = kube.core.list_namespaced_event(namespace, field_selector="reason=RolloutRestarted").items
    assert sorted(e.message.split(";")[0] for e in events) == [
        "restarted Deployment/auto", "restarted Deployment/auto", "restarted Deployment/named",
        "restarted StatefulSet/auto-sts"]


def test_a_workload_reading_the_rendered_env_restarts_once_when_a_key_in_it_rotates(
        operator: Any, kube: Kube, namespace: str, vault: Any) -> None:
    values = bot_values()
    volume = [{"name": "env", "secret": {"secretName": "bot-env", "items": [{"key": ".env", "path": ".env"}]}}]
    wl.deployment(kube, namespace, "app", workload_annotations={RESTART_ON: "auto"}, volumes=volume)
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1)
    bs.create(kube, namespace, "bot", vault_bot(kube, namespace, vault, values, refreshPolicy="OnChange",
                                                target={"name": "bot-env", "template": {"data": {".env": DOTENV_TEMPLATE}}},
                                                rollout={"debounce": "1s"}))
    bs.wait_ready(kube, namespace, "bot", reason="Synced")
    status = settle(kube, namespace, "bot")
    assert [(e["name"], e["consumedKeys"]) for e in status["rollout"]] == [("app", [".env"])]

    values["OPENAI_API_KEY"] = secret_value("openai_rotated")
    vault.client().secrets.kv.v2.create_or_update_secret(path=f"{namespace}/bot", secret=values)
    bs.force_sync(kube, namespace, "bot")
    wait_for(lambda: wl.replicasets(kube, namespace, "app") == 2)
    settle(kube, namespace, "bot")
    assert wl.replicasets(kube, namespace, "app") == 2
