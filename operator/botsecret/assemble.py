"""Turn what the providers answered into the data of the target Secret. Pure: no I/O.

Decides which keys exist, which are missing, and whether the whole sync must stop because a
provider gave no definite answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .find_errors import KeyConflict
from .find_spec import FindItem
from .providers.base import Fetched, NotFound, ProviderError, RemoteRef
from .spec import BotSecretSpec, valid_secret_key
from .values import SecretValue

__all__ = ["SECRET_SIZE_LIMIT", "Assembled", "KeyOrigin", "ProviderAnswers", "assemble", "plan_fetches"]

# The apiserver refuses Secrets over 1 MiB; keep headroom for metadata.
SECRET_SIZE_LIMIT = 1024 * 1024 - 16 * 1024

ProviderAnswers = Mapping[str, Mapping[RemoteRef, Fetched | ProviderError]]


@dataclass(frozen=True)
class KeyOrigin:
    key: str
    source: str
    remote_name: str
    version: str
    # Rendered by spec.target.template: from the fetched keys, not from one remote secret.
    template: bool = False
    # The spec.dataFrom index of the find that selected the remote secret.
    found_by: int | None = None


@dataclass(frozen=True)
class Assembled:
    data: dict[str, SecretValue] = field(default_factory=dict)
    origins: tuple[KeyOrigin, ...] = ()
    missing: tuple[str, ...] = ()
    missing_required: tuple[str, ...] = ()
    # The first error that is not a definite "not found": the sync must keep the last good Secret.
    failure: ProviderError | None = None
    # Why each entry of ``missing`` is missing, in the provider's words (names and states, never
    # values): a disabled version must not read like a typo in the name.
    why: Mapping[str, str] = field(default_factory=dict)

    def explain(self, labels: Iterable[str]) -> str:
        """``label: why`` for each label, as the Ready condition shows them."""
        return "; ".join(f"{label}: {self.why[label]}" if label in self.why else label for label in labels)

    @property
    def size(self) -> int:
        return sum(len(k.encode()) + v.size for k, v in self.data.items())


def plan_fetches(spec: BotSecretSpec, extra: Mapping[str, Sequence[RemoteRef]] | None = None
                 ) -> dict[str, list[RemoteRef]]:
    """The distinct remote references to read, per source name; ``extra``: what finds listed."""
    plan: dict[str, list[RemoteRef]] = {}
    for source, found in (extra or {}).items():
        refs = plan.setdefault(source, [])
        refs += [ref for ref in found if ref not in refs]
    for item in spec.data:
        refs = plan.setdefault(item.source, [])
        if item.remote not in refs:
            refs.append(item.remote)
    for item_from in spec.data_from:
        refs = plan.setdefault(item_from.source, [])
        if item_from.remote not in refs:
            refs.append(item_from.remote)
    return plan


def _json_object(value: SecretValue) -> dict[str, object] | None:
    try:
        parsed = json.loads(value.reveal())
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _field_bytes(field_value: object) -> bytes:
    # Strings are taken as they are; anything else keeps its JSON form ("42", "true", "{...}").
    if isinstance(field_value, str):
        return field_value.encode("utf-8")
    return json.dumps(field_value, separators=(",", ":"), sort_keys=True).encode("utf-8")


# What a Secret key may hold; any other character of a remote name becomes '_' (ESO's Default
# conversion), so that 'bots/prod/TOKEN' is key 'bots_prod_TOKEN' unless a rewrite says otherwise.
_NOT_KEY_CHARACTER = re.compile(r"[^-._a-zA-Z0-9]")


def found_key(item: FindItem, remote_name: str) -> str:
    """The Secret key a find gives a remote secret: its name, rewritten, made a valid key."""
    return _NOT_KEY_CHARACTER.sub("_", item.key_for(remote_name))


def assemble(spec: BotSecretSpec, answers: ProviderAnswers,
             listings: Mapping[int, tuple[str, ...] | ProviderError] | None = None) -> Assembled:
    data: dict[str, SecretValue] = {}
    origins: list[KeyOrigin] = []
    missing: list[str] = []
    why: dict[str, str] = {}
    failure: ProviderError | None = None

    def lack(label: str, reason: str) -> None:
        missing.append(label)
        why[label] = reason

    def answer(source: str, ref: RemoteRef) -> Fetched | ProviderError:
        return answers.get(source, {}).get(ref) or NotFound(f"no answer for {ref.name!r} from source {source!r}")

    for position, item_from in enumerate(spec.data_from):
        index = item_from.index if item_from.index is not None else position
        got = answer(item_from.source, item_from.remote)
        label = f"dataFrom[{index}] ({item_from.remote.name})"
        if isinstance(got, ProviderError):
            failure = failure or (None if isinstance(got, NotFound) else got)
            lack(label, got.message)
            continue
        document = _json_object(got.value)
        if document is None:
            missing.append(f"{label}: not a JSON object")
            continue
        for key, field_value in document.items():
            if not valid_secret_key(key):
                missing.append(f"{label}: property is not a valid Secret key")
                continue
            data[key] = SecretValue(_field_bytes(field_value))
            origins.append(KeyOrigin(key, item_from.source, item_from.remote.name, got.version))

    # Every key a dataFrom entry gave, and which entry: a find's key may collide with no other.
    given_by = {o.key: f"dataFrom[{_index(spec, o.remote_name)}] ({o.remote_name})" for o in origins}
    for found_item in spec.finds:
        listed = (listings or {}).get(found_item.index)
        for remote_name in listed if isinstance(listed, tuple) else ():
            got = answer(found_item.source, RemoteRef(remote_name))
            if isinstance(got, NotFound):
                continue  # deleted since it was listed: it is no longer among the matches
            if isinstance(got, ProviderError):
                failure = failure or got
                lack(f"dataFrom[{found_item.index}] ({remote_name})", got.message)
                continue
            key, label = found_key(found_item, remote_name), f"dataFrom[{found_item.index}] ({remote_name})"
            if not valid_secret_key(key):
                lack(label, f"gives key {key!r}, which is not a valid Secret key; rewrite it")
                continue
            if key in given_by:
                failure = failure or KeyConflict(f"key {key!r} comes from both {given_by[key]} and {label}; "
                                                 "tell them apart with spec.dataFrom[].rewrite")
                continue
            given_by[key] = label
            data[key] = got.value
            origins.append(KeyOrigin(key, found_item.source, remote_name, got.version, found_by=found_item.index))

    # Explicit data entries come after dataFrom so that they win on a shared key.
    for item in spec.data:
        got = answer(item.source, item.remote)
        if isinstance(got, ProviderError):
            failure = failure or (None if isinstance(got, NotFound) else got)
            lack(item.key, got.message)
            continue
        value = got.value
        if item.property is not None:
            document = _json_object(got.value)
            remote = _shown(item.remote.name, got.version)
            if document is None:
                lack(item.key, f"{remote} is not a JSON object")
                continue
            if item.property not in document:
                lack(item.key, f"property {item.property!r} not in {remote}")
                continue
            value = SecretValue(_field_bytes(document[item.property]))
        data[item.key] = value
        origins = [o for o in origins if o.key != item.key]
        origins.append(KeyOrigin(item.key, item.source, item.remote.name, got.version))

    # Without spec.required every key is required; dataFrom entries are always required.
    if spec.required is None:
        missing_required = tuple(missing)
    else:
        missing_required = tuple(m for m in missing if m.startswith("dataFrom[")) + tuple(
            k for k in spec.required if k not in data)
        for key in missing_required:
            if key not in missing:
                why[key] = "no data entry or dataFrom document provides it"
    return Assembled(
        data=data,
        origins=tuple(sorted(origins, key=lambda o: o.key)),
        missing=tuple(missing),
        missing_required=missing_required,
        failure=failure,
        why=why,
    )


def _index(spec: BotSecretSpec, remote_name: str) -> int:
    return next((item.index if item.index is not None else i for i, item in enumerate(spec.data_from)
                 if item.remote.name == remote_name), 0)


def _shown(name: str, version: str) -> str:
    return f"{name!r} (version {version})" if version else repr(name)
