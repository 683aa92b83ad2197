"""What a BotSecret asks a provider for. The ground floor: imports nothing of the operator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_MAX_MATCHES", "MAX_MATCHES_LIMIT", "FindQuery", "RemoteRef"]

DEFAULT_MAX_MATCHES = 100
MAX_MATCHES_LIMIT = 1000


@dataclass(frozen=True)
class RemoteRef:
    """What to read: a remote secret by name, optionally pinned to a version.

    ``version`` means an AWS stage or VersionId, a GCP version number, a Vault KV v2 version.
    ``None`` means the provider's current version.
    """

    name: str
    version: str | None = None


@dataclass(frozen=True)
class FindQuery:
    """Which remote secrets to select by their names and tags (``spec.dataFrom[].find``).

    A provider sends what its API can filter on (a name prefix, tags or labels) with the listing
    and checks every condition again on what it got back, so a server-side filter that matches
    more loosely (AWS matches tag keys and values separately) never selects too much.
    """

    prefix: str | None = None
    name_regexp: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    max_matches: int = DEFAULT_MAX_MATCHES

    def __hash__(self) -> int:
        return hash((self.prefix, self.name_regexp, tuple(sorted(self.tags.items())), self.max_matches))

    def matches(self, name: str, tags: Mapping[str, str] | None = None) -> bool:
        """Whether a listed secret (its name as the BotSecret would write it, and its tags)
        satisfies every condition."""
        if self.prefix is not None and not name.startswith(self.prefix):
            return False
        if self.name_regexp is not None and re.search(self.name_regexp, name) is None:
            return False
        found = tags or {}
        return all(found.get(k) == v for k, v in self.tags.items())
