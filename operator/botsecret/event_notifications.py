"""Google Secret Manager's event notifications as they arrive on a Pub/Sub subscription, and which
references they name.

Secret Manager publishes to the topics a secret lists one message per change: the attributes say
what happened (``eventType``), to which secret (``secretId``: ``projects/<p>/secrets/<name>``,
with ``/locations/<l>`` for a regional secret), to which version (``versionId``) and how the data
is written (``dataFormat: JSON_API_V1``); the data is the Secret or SecretVersion resource as
proto3 JSON. Pure: no I/O, no logging; a message is never repeated (it may hold anything), only
classified.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from .event_messages import ChangeEvent, Ignored

__all__ = ["CHANGE_EVENT_TYPES", "DATA_FORMAT", "parse_notification"]

# After these, a reference to the secret may read something else than before: a new or removed
# latest version, a version enabled, disabled or destroyed, an alias moved (SECRET_UPDATE), the
# secret itself gone or (re)created. SECRET_ROTATE only says it is time to rotate (the rotation's
# SECRET_VERSION_ADD follows); TOPIC_CONFIGURED is a test message: both are unrelated.
CHANGE_EVENT_TYPES = frozenset({
    "SECRET_CREATE", "SECRET_UPDATE", "SECRET_DELETE", "SECRET_VERSION_ADD", "SECRET_VERSION_ENABLE",
    "SECRET_VERSION_DISABLE", "SECRET_VERSION_DESTROY", "SECRET_VERSION_DESTROY_SCHEDULED",
})
DATA_FORMAT = "JSON_API_V1"
MAX_DATA = 64 * 1024  # a Secret's JSON (labels, annotations, topics) stays far below this
_SECRET = re.compile(r"^projects/(?P<project>[a-z0-9.:-]{1,128})(?:/locations/(?P<location>[a-z0-9-]{1,64}))?"
                     r"/secrets/(?P<name>[a-zA-Z0-9_-]{1,255})$")
_EVENT_TYPE = re.compile(r"^[A-Z_]{1,64}$")


def parse_notification(attributes: Mapping[str, str], data: str, *, project: str,
                       location: str | None = None) -> ChangeEvent | Ignored:
    """Classify one Pub/Sub message read for a store of ``project`` (and ``location``).

    The event names the secret by its full name; it also names it by its bare id when the secret
    is in the store's project and location, so that a reference by id matches. Google spells the
    project in resource names it returns by number, which a store may not: a secret of a numbered
    project counts as the store's too (an extra sync at worst; a missed one would leave the
    BotSecret on its fallback interval)."""
    event_type = attributes.get("eventType")
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        return Ignored("malformed")
    if event_type == "TOPIC_CONFIGURED":
        return Ignored("unrelated")
    secret = _SECRET.match(attributes.get("secretId") or "")
    if secret is None or attributes.get("dataFormat", DATA_FORMAT) != DATA_FORMAT or not _data_fits(data, secret[0]):
        return Ignored("malformed")
    if event_type not in CHANGE_EVENT_TYPES:
        return Ignored("unrelated")
    ids = [secret[0]]
    same_project = secret["project"] == project or (secret["project"].isdigit() and not project.isdigit())
    if same_project and secret["location"] == location:
        ids.append(secret["name"])
    return ChangeEvent(event_name=event_type, secret_ids=tuple(ids))


def _data_fits(data: str, secret: str) -> bool:
    """The data is empty or the Secret (or one of its versions) as a JSON object."""
    if not data:
        return True
    if len(data) > MAX_DATA:
        return False
    try:
        resource = json.loads(data)
    except ValueError:
        return False
    if not isinstance(resource, Mapping):
        return False
    name = resource.get("name")
    return name is None or (isinstance(name, str) and (name == secret or name.startswith(f"{secret}/versions/")))
