"""What a BotSecret asks a provider for. The ground floor: imports nothing of the operator."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RemoteRef"]


@dataclass(frozen=True)
class RemoteRef:
    """What to read: a remote secret by name, optionally pinned to a version.

    ``version`` means an AWS stage or VersionId, a GCP version number, a Vault KV v2 version.
    ``None`` means the provider's current version.
    """

    name: str
    version: str | None = None
