"""Unique, searchable test values, and the record of every one handed out.

Every secret value a test puts into a provider comes from :func:`secret_value`, so the leak test
at the end of the session can search the cluster and the operator's output for each of them.
"""

from __future__ import annotations

import base64
import json
import secrets

ISSUED: list[str] = []
MARKER = "bsvleak"


def secret_value(label: str = "v") -> str:
    """A fresh value such as ``bsvleak-x_api_key-3f9c...``: unique and easy to grep for."""
    value = f"{MARKER}-{label}-{secrets.token_hex(8)}"
    ISSUED.append(value)
    return value


def searchable_forms(value: str) -> set[str]:
    """Every text a leak of ``value`` can show up as: the value itself, JSON-escaped (once, and
    twice for JSON inside a JSON string), and base64, standard and URL-safe.

    A value is rarely base64-encoded alone: a leaked Secret data map, or a document holding the
    value, is encoded whole. So for each of the three alignments the value's bytes can have in a
    longer blob, the form is the run of characters that depends only on the value's own bytes.
    """
    forms = {value}
    for ensure_ascii in (True, False):
        once = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ensure_ascii)[1:-1]}
    raw = value.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        core = encoded[4 * (offset > 0):4 * ((offset + len(raw)) // 3)]
        if len(core) >= MIN_BASE64_FORM:  # shorter runs would match unrelated base64 by chance
            forms |= {core, core.translate(_URLSAFE)}
    return forms


MIN_BASE64_FORM = 16
_URLSAFE = str.maketrans("+/", "-_")
