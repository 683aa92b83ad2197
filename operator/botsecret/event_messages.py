"""Change events and how references match them; AWS Secrets Manager's as they arrive on an SQS
queue (Google's Pub/Sub notifications: event_notifications).

EventBridge delivers Secrets Manager's CloudTrail records (``detail-type`` "AWS API Call via
CloudTrail", ``source`` "aws.secretsmanager") to the queue as the message body. The secret is
named where the caller named it (``requestParameters.secretId``: a name, a partial or a full ARN),
by a rotation's own record (``additionalEventData.SecretId``), and in the answer
(``responseElements.arn``, spelled ``aRN`` by some actions). Pure: no I/O, no logging; a message
text is never repeated (it may hold anything), only classified.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANGE_EVENT_NAMES",
    "ChangeEvent",
    "Ignored",
    "parse_message",
    "reference_matches",
    "secret_keys",
]

# Actions after which a reference may read something else than before.
CHANGE_EVENT_NAMES = frozenset({
    "PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage", "RotateSecret", "RotationSucceeded",
    "DeleteSecret", "RestoreSecret", "CancelSecretVersionDelete", "CreateSecret", "ReplicateSecretToRegions",
    "StopReplicationToReplica", "RemoveRegionsFromReplication",
})
MAX_BODY = 256 * 1024  # SQS's own limit for a message
_ARN = re.compile(r"^arn:(aws[a-z-]*):secretsmanager:([a-z0-9-]*):(\d*):secret:(.+)$")
# A full ARN ends in "-" and six characters Secrets Manager chose; a name may not contain them.
_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
_ID = re.compile(r"^[A-Za-z0-9_+=.@:/!-]{1,2048}$")
# A Google Secret Manager version's full name: its secret's full name is how events name it.
_GCP_VERSION = re.compile(r"^(projects/[^/]+(?:/locations/[^/]+)?/secrets/[^/]+)/versions/[^/]+$")


@dataclass(frozen=True)
class ChangeEvent:
    """One change: the action's name and every id the record gives for the secret."""

    event_name: str
    secret_ids: tuple[str, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset().union(*(secret_keys(i) for i in self.secret_ids))


@dataclass(frozen=True)
class Ignored:
    """A message that names no change to act on; ``outcome`` is the metric's label."""

    outcome: str  # "malformed" (not a Secrets Manager event) or "unrelated" (an action that changes nothing)


def secret_keys(secret_id: str) -> frozenset[str]:
    """The forms under which a reference to the same secret may be written: the id itself and, for
    an ARN, the secret's name (the ARN's last part without Secrets Manager's six-character suffix,
    and as it stands, for a partial ARN); for a Google version name, its secret's name.
    Over-matching wakes a BotSecret once too often; missing a form would leave it on the fallback
    interval, so every plausible form counts."""
    keys = {secret_id}
    match = _ARN.match(secret_id)
    if match:
        resource = match.group(4)
        keys.add(resource)
        keys.add(_SUFFIX.sub("", resource))
    version = _GCP_VERSION.match(secret_id)
    if version:
        keys.add(version.group(1))
    return frozenset(k for k in keys if k)


def reference_matches(remote_name: str, event_keys: frozenset[str]) -> bool:
    """Whether a reference (a name, a partial or a full ARN) names a secret the event names."""
    return bool(secret_keys(remote_name) & event_keys)


def _ids(detail: Mapping[str, Any]) -> Iterable[Any]:
    for block, names in (("requestParameters", ("secretId", "SecretId")),
                         ("additionalEventData", ("SecretId", "secretId")),
                         ("responseElements", ("arn", "aRN", "ARN", "name"))):
        part = detail.get(block)
        if isinstance(part, Mapping):
            for name in names:
                yield part.get(name)


def parse_message(body: str) -> ChangeEvent | Ignored:
    """Classify one SQS message body (see the module's text)."""
    if not isinstance(body, str) or len(body) > MAX_BODY:
        return Ignored("malformed")
    try:
        event = json.loads(body)
    except ValueError:
        return Ignored("malformed")
    if not isinstance(event, Mapping) or event.get("source") != "aws.secretsmanager":
        return Ignored("malformed")
    detail = event.get("detail")
    if not isinstance(detail, Mapping) or detail.get("eventSource") != "secretsmanager.amazonaws.com":
        return Ignored("malformed")
    name = detail.get("eventName")
    if not isinstance(name, str):
        return Ignored("malformed")
    if name not in CHANGE_EVENT_NAMES:
        return Ignored("unrelated")
    if detail.get("errorCode") is not None:
        return Ignored("unrelated")  # the call failed: nothing changed
    ids = tuple(dict.fromkeys(i for i in _ids(detail) if isinstance(i, str) and _ID.match(i)))
    if not ids:
        return Ignored("malformed")
    return ChangeEvent(event_name=name, secret_ids=ids)
