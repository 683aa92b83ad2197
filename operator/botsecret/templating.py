"""``spec.target.template``: Secret keys rendered from the fetched values. Pure: no I/O.

Jinja2's ``SandboxedEnvironment`` with strict undefined, autoescape off and no loader, so a
template reaches no file, no network and no Python internals. Values reach a template only as
strings: bytes that are not UTF-8 pass through unchanged (``surrogateescape``), so a template that
copies a value writes exactly its bytes.

An error never repeats Jinja's message, which can quote data (``'<value>' is undefined`` after
``data[X]``): it names the template key, the exception type and the line, nothing else.
"""

from __future__ import annotations

import base64
import json
import operator
import types
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from .spec import TargetTemplate
from .values import SecretValue

__all__ = ["MAX_OUTPUT", "TemplateFailed", "render"]

# A Secret holds at most 1 MiB; a template that writes more is stopped while it renders.
MAX_OUTPUT = 1024 * 1024
MAX_POWER = 1024
_TEMPLATE_FILE = "<template>"


class TemplateFailed(Exception):
    """Rendering ``key`` failed. The message is built from names and numbers only."""

    def __init__(self, key: str, kind: str, line: int | None) -> None:
        where = f" at line {line}" if line is not None else ""
        super().__init__(f"spec.target.template.data[{key}]: {kind}{where}")
        self.key = key


def _text(value: SecretValue) -> str:
    return value.reveal().decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def b64enc(value: Any) -> str:
    return base64.b64encode(_bytes(str(value))).decode("ascii")


def b64dec(value: Any) -> str:
    return base64.b64decode(_bytes(str(value)), validate=True).decode("utf-8", "surrogateescape")


def tojson(value: Any, indent: int | None = None) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML; a config file wants plain JSON.
    return json.dumps(value, ensure_ascii=False, indent=indent)


def fromjson(value: Any) -> Any:
    return json.loads(str(value))


def dotenv(value: Any) -> str:
    """Single-quoted as python-dotenv reads it back exactly (its own ``set_key`` quotes so):
    backslashes and quotes escaped, newlines kept inside the quotes. Readers that interpolate
    expand ``${NAME}`` even there; python-dotenv has no escape for it."""
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


FILTERS: Mapping[str, Callable[..., Any]] = {
    "b64enc": b64enc, "b64dec": b64dec, "tojson": tojson, "fromjson": fromjson, "dotenv": dotenv,
}


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` bounded: ``'x' * 10**9`` would build a gigabyte before
    the output limit could see it."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int) \
                    and len(seq) * count > MAX_OUTPUT:
                raise SecurityError("repetition too large")
        return operator.mul(left, right)


def _environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, loader=None, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


def _line(error: BaseException) -> int | None:
    """The template line an error came from: Jinja rewrites tracebacks to show template frames."""
    if isinstance(error, TemplateSyntaxError):
        return error.lineno
    line = None
    tb: types.TracebackType | None = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_one(env: _Sandbox, text: str, context: Mapping[str, Any]) -> bytes:
    parts: list[str] = []
    size = 0
    for part in env.from_string(text).generate(context):
        size += len(part)
        if size > MAX_OUTPUT:
            raise SecurityError("output too large")
        parts.append(part)
    return _bytes("".join(parts))


def render(template: TargetTemplate, data: Mapping[str, SecretValue]) -> dict[str, SecretValue]:
    """The Secret's data: the rendered keys, and with mergePolicy Merge the fetched ones under them.

    Each fetched key is a variable of its own name, and every key is in ``data`` (for names that
    are not identifiers: ``data["tls.crt"]``).
    """
    texts = {key: _text(value) for key, value in data.items()}
    context: dict[str, Any] = {**texts, "data": texts}
    env = _environment()
    rendered: dict[str, SecretValue] = {}
    for key, text in template.data.items():
        try:
            rendered[key] = SecretValue(_render_one(env, text, context))
        except Exception as e:  # noqa: BLE001 - any error in a template is the template's, and its text may hold data
            failed = TemplateFailed(key, type(e).__name__, _line(e))
        else:
            continue
        raise failed  # outside the except block: no __context__ that carries Jinja's message
    if template.merge_policy == "Merge":
        return {**data, **rendered}
    return rendered

