"""botsecret.templating: target.template rendered in a sandbox, pure."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from dotenv import dotenv_values

from botsecret.spec import InvalidSpec, TargetTemplate, parse_spec
from botsecret.templating import TemplateFailed, render
from botsecret.values import SecretValue

BOT_KEYS = ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_SECRET", "X_BEARER_TOKEN", "OPENAI_API_KEY")
# What a dotenv quoting must survive: quotes, backslashes, '#', '=', spaces, a newline, non-ASCII.
AWKWARD = ["plain", "it's \"quoted\"", "back\\slash\\'", "#not a comment", "a=b c ", "two\nlines", "é ü 🔑", "$HOME"]


def values(**kv: str | bytes) -> dict[str, SecretValue]:
    return {k: SecretValue(v if isinstance(v, bytes) else v.encode()) for k, v in kv.items()}


def template(data: dict[str, str], merge: str = "Replace") -> TargetTemplate:
    return TargetTemplate(data=data, merge_policy=merge)  # type: ignore[arg-type]


def failure(tpl: TargetTemplate, data: dict[str, SecretValue]) -> TemplateFailed:
    with pytest.raises(TemplateFailed) as caught:
        render(tpl, data)
    return caught.value


def test_a_dotenv_template_of_the_six_bot_keys_round_trips_through_python_dotenv() -> None:
    data = values(**{k: AWKWARD[i % len(AWKWARD)] + k for i, k in enumerate(BOT_KEYS)})
    text = "".join(f"{k}={{{{ {k} | dotenv }}}}\n" for k in BOT_KEYS)
    out = render(template({".env": text}), data)
    assert set(out) == {".env"}, "Replace keeps only the rendered keys"
    parsed = dotenv_values(stream=io.StringIO(out[".env"].reveal().decode()), interpolate=False)
    assert {k: v.encode() for k, v in parsed.items() if v is not None} == {k: v.reveal() for k, v in data.items()}


@pytest.mark.parametrize("value", AWKWARD)
def test_dotenv_quoting_survives_each_awkward_value(value: str) -> None:
    out = render(template({"e": "K={{ K | dotenv }}\n"}), values(K=value))
    assert dotenv_values(stream=io.StringIO(out["e"].reveal().decode()), interpolate=False) == {"K": value}


def test_merge_keeps_the_raw_keys_and_a_rendered_key_wins() -> None:
    out = render(template({"A": "new {{ A }}", "C": "{{ B }}"}, merge="Merge"), values(A="a", B="b"))
    assert {k: v.reveal() for k, v in out.items()} == {"A": b"new a", "B": b"b", "C": b"b"}


def test_bytes_that_are_not_utf8_pass_through_unchanged() -> None:
    raw = b"\xff\x00\xfe binary"
    out = render(template({"copy": "{{ BIN }}", "b64": "{{ BIN | b64enc }}"}), values(BIN=raw))
    assert out["copy"].reveal() == raw
    assert base64.b64decode(out["b64"].reveal()) == raw


def test_filters_b64dec_tojson_fromjson_and_the_data_mapping() -> None:
    data = values(**{"tls.crt": "CERT", "enc": base64.b64encode(b"decoded").decode(), "doc": '{"user": "u"}'})
    out = render(template({
        "dec": "{{ enc | b64dec }}",
        "config.json": '{{ {"cert": data["tls.crt"], "user": (doc | fromjson).user} | tojson }}',
    }), data)
    assert out["dec"].reveal() == b"decoded"
    assert json.loads(out["config.json"].reveal()) == {"cert": "CERT", "user": "u"}


def test_tojson_does_not_html_escape() -> None:
    out = render(template({"j": "{{ V | tojson }}"}), values(V="<a&b>'"))
    assert out["j"].reveal() == b'"<a&b>\'"'


def test_autoescape_is_off() -> None:
    assert render(template({"k": "{{ V }}"}), values(V="<&>"))["k"].reveal() == b"<&>"


SECRET = "s3cr3t-value-never-shown"


@pytest.mark.parametrize(("text", "kind"), [
    ("{{ MISSING }}", "UndefinedError"),
    ("line one\n{{ V.nope.deeper }}", "UndefinedError"),
    ("{{ data[V] }}", "UndefinedError"),  # the undefined name is the value itself
    ("{% if %}", "TemplateSyntaxError"),
    ("{{ 1 + V }}", "TypeError"),
    ("{{ V.__class__.__mro__ }}", "SecurityError"),
    ("{% include V %}", "TypeError"),  # no loader: no filesystem
    ("{{ V | nosuchfilter }}", "TemplateAssertionError"),
    ("{{ V | b64dec }}", "Error"),
    ("{{ 'x' * 100000000 }}", "SecurityError"),
    ("{% for i in range(200) %}{{ V * 50000 }}{% endfor %}", "SecurityError"),
])
def test_a_template_error_names_the_key_and_never_the_value(text: str, kind: str) -> None:
    caught = failure(template({"cfg": text}), values(V=SECRET))
    assert caught.key == "cfg"
    assert kind in str(caught)
    assert SECRET not in str(caught) and SECRET not in repr(caught.args)
    assert str(caught).startswith("spec.target.template.data[cfg]: ")


def test_a_template_error_gives_the_line() -> None:
    assert "line 3" in str(failure(template({"cfg": "a\nb\n{{ NOPE }}"}), values(V="v")))
    assert "line 2" in str(failure(template({"cfg": "a\n{% if %}"}), values(V="v")))


def test_the_error_carries_no_exception_chain_with_the_value() -> None:
    caught = failure(template({"cfg": "{{ data[V] }}"}), values(V=SECRET))
    assert caught.__cause__ is None and caught.__context__ is None


def test_a_missing_optional_key_can_default() -> None:
    assert render(template({"k": "{{ OPT | default('none') }}"}), {})["k"].reveal() == b"none"


# parse_spec of spec.target.template

def spec_with(target: dict[str, Any]) -> dict[str, Any]:
    return {"sources": [{"name": "aws", "storeRef": {"name": "s"}}],
            "data": [{"key": "A", "remoteRef": {"name": "a"}}], "target": target}


def test_parse_template() -> None:
    spec = parse_spec(spec_with({"template": {
        "data": {".env": "A={{ A }}"}, "type": "kubernetes.io/dockerconfigjson",
        "labels": {"l": "1"}, "annotations": {"a": "2"}, "mergePolicy": "Merge"},
        "labels": {"l": "0", "m": "3"}}), name="bot")
    assert spec.target.template == TargetTemplate(data={".env": "A={{ A }}"}, merge_policy="Merge")
    assert spec.target.type == "kubernetes.io/dockerconfigjson"
    assert spec.target.labels == {"l": "1", "m": "3"} and spec.target.annotations == {"a": "2"}
    assert parse_spec(spec_with({"template": {"data": {"k": "x"}}}), name="bot").target.template.merge_policy \
        == "Replace"  # type: ignore[union-attr]


@pytest.mark.parametrize(("template_raw", "field"), [
    ({"data": {"bad key": "x"}}, "spec.target.template.data"),
    ({"data": {"k": 3}}, "spec.target.template.data[k]"),
    ({"data": {}}, "spec.target.template.data"),
    ({"data": {"k": "x"}, "mergePolicy": "Keep"}, "spec.target.template.mergePolicy"),
    ({"data": {"k": "x"}, "type": "kubernetes.io/service-account-token"}, "spec.target.template.type"),
    ({"data": {"k": "x"}, "type": "kubernetes.io/tls"}, "spec.target.template.type"),  # target.type differs
])
def test_invalid_templates_name_the_field(template_raw: dict[str, Any], field: str) -> None:
    target: dict[str, Any] = {"template": template_raw}
    if template_raw.get("type") == "kubernetes.io/tls":
        target["type"] = "kubernetes.io/basic-auth"
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(spec_with(target), name="bot")
    assert caught.value.field == field
