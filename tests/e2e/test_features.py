"""End to end: target templates, refresh policies and the workload-side restart opt-in, against the
real apiserver, moto and OpenBao."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.harness import botsecrets as bs
from tests.harness.cluster_fixtures import Kube
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
    events = kube.core.list_namespaced_event(namespace, field_selector="reason=TemplateError").items
    assert events and all(e.message == message for e in events)
    shown = json.dumps(body) + "".join(e.message for e in events)
    assert not any(v in shown for v in values.values() if v)
