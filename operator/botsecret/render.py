"""`botsecret render`: resolved data as a ``.env`` file, a Secret manifest or JSON. The only place
values are written out on purpose. Pure."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from .values import SecretValue

__all__ = ["FORMATS", "RenderError", "interpolated_keys", "render"]

FORMATS = ("env", "secret", "json")


class RenderError(ValueError):
    """A value the format cannot carry; names the key, never the value."""


def _text(key: str, value: SecretValue, form: str) -> str:
    try:
        return value.reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError(f"key {key!r} is not UTF-8 text, which --format {form} cannot carry; "
                          "use --format secret") from None


# python-dotenv decodes these escapes inside double quotes; a raw CR would become LF on reading
# (files are read with universal newlines), so CR and LF are written escaped.
_ENV_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def _env(data: Mapping[str, SecretValue]) -> str:
    return "".join(f'{key}="{_text(key, data[key], "env").translate(_ENV_ESCAPES)}"\n' for key in sorted(data))


def interpolated_keys(data: Mapping[str, SecretValue]) -> list[str]:
    """Keys whose value holds ``${``, which python-dotenv expands as a variable unless it is read
    with ``interpolate=False``: no quoting or escape prevents that."""
    return sorted(k for k, v in data.items() if b"${" in v.reveal())


def _secret(data: Mapping[str, SecretValue], name: str, namespace: str | None, secret_type: str) -> str:
    # JSON strings are YAML double-quoted scalars: keys such as "true" or "1" stay strings.
    lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: {json.dumps(name)}"]
    if namespace:
        lines.append(f"  namespace: {json.dumps(namespace)}")
    lines += [f"type: {json.dumps(secret_type)}", "data:" if data else "data: {}"]
    lines += [f"  {json.dumps(k)}: {base64.b64encode(data[k].reveal()).decode('ascii')}" for k in sorted(data)]
    return "\n".join(lines) + "\n"


def render(data: Mapping[str, SecretValue], form: str, *, name: str, namespace: str | None = None,
           secret_type: str = "Opaque") -> str:
    if form == "env":
        return _env(data)
    if form == "json":
        document = {k: _text(k, data[k], "json") for k in sorted(data)}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if form == "secret":
        return _secret(data, name, namespace, secret_type)
    raise RenderError(f"--format: {form!r} is not one of {', '.join(FORMATS)}")
