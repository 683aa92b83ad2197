"""Keyed HMACs of secret data: change detection and content-addressed restarts without a plain hash.

A plain hash of a low-entropy secret can be brute-forced from status or an annotation; an HMAC
under a key that only the operator holds cannot.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .values import SecretValue

__all__ = ["PREFIX", "data_hmac", "namespace_key"]

PREFIX = "hmac-sha256:"


def namespace_key(cluster_key: bytes, namespace: str) -> bytes:
    """The key of every HMAC written for BotSecrets of ``namespace``, derived from the cluster key.

    One key for the whole cluster would let a tenant who controls a provider of their own compute
    the HMAC of a guess and compare it with another namespace's status or pod-template annotation.
    """
    return hmac.new(cluster_key, b"botsecret.dev/namespace-key/v1\x00" + namespace.encode("utf-8"),
                    hashlib.sha256).digest()


def data_hmac(key: bytes, data: Mapping[str, SecretValue]) -> str:
    """HMAC-SHA256 over the keys and values in key order, each length-prefixed so that no two
    different mappings share an input."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name in sorted(data):
        encoded = name.encode("utf-8")
        value = data[name].reveal()
        mac.update(len(encoded).to_bytes(8, "big"))
        mac.update(encoded)
        mac.update(len(value).to_bytes(8, "big"))
        mac.update(value)
    return PREFIX + mac.hexdigest()
