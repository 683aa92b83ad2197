"""Unique, searchable test values, and the record of every one handed out.

Every secret value a test puts into a provider comes from :func:`secret_value`, so the leak test
at the end of the session can search the cluster and the operator's output for each of them.
"""

from __future__ import annotations

import secrets

ISSUED: list[str] = []
MARKER = "bsvleak"


def secret_value(label: str = "v") -> str:
    """A fresh value such as ``bsvleak-x_api_key-3f9c...``: unique and easy to grep for."""
    value = f"{MARKER}-{label}-{secrets.token_hex(8)}"
    ISSUED.append(value)
    return value
