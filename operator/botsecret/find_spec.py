"""``spec.dataFrom[].find`` and its ``rewrite`` rules as typed values, parsed from the spec.

Kept apart from spec.py, which calls :func:`parse_find` and :func:`parse_rewrites` for a dataFrom
entry that has ``find``; every error names the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .remote import DEFAULT_MAX_MATCHES, MAX_MATCHES_LIMIT, FindQuery
from .spec import InvalidSpec, _list, _map, _str

__all__ = ["FindItem", "Rewrite", "parse_find", "parse_rewrites"]


@dataclass(frozen=True)
class Rewrite:
    """One ``rewrite`` rule for the key names a find gives: a regexp replace (Go-style ``$1`` and
    ``${name}`` in the target) or a prefix to strip."""

    source: str | None = None
    target: str = ""
    strip_prefix: str | None = None

    def apply(self, key: str) -> str:
        if self.strip_prefix is not None:
            return key[len(self.strip_prefix):] if key.startswith(self.strip_prefix) else key
        assert self.source is not None
        return re.sub(self.source, _python_template(self.target), key)


@dataclass(frozen=True)
class FindItem:
    """A ``spec.dataFrom[]`` entry with ``find``: every remote secret of the source that matches
    becomes one key, named after the secret (then rewritten)."""

    index: int
    source: str
    query: FindQuery
    rewrite: tuple[Rewrite, ...] = ()

    def key_for(self, remote_name: str) -> str:
        key = remote_name
        for rule in self.rewrite:
            key = rule.apply(key)
        return key


_GO_GROUP = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([0-9]+)|([A-Za-z_][A-Za-z0-9_]*))")


def _python_template(target: str) -> str:
    """A Go-style replacement (``$1``, ``${1}``, ``${name}``, ``$$``) as Python's re.sub wants it."""
    out, pos = [], 0
    while pos < len(target):
        if target.startswith("$$", pos):
            out.append("$")
            pos += 2
            continue
        match = _GO_GROUP.match(target, pos)
        if match:
            out.append(f"\\g<{next(g for g in match.groups() if g is not None)}>")
            pos = match.end()
            continue
        out.append("\\\\" if target[pos] == "\\" else target[pos])
        pos += 1
    return "".join(out)


def _regexp(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    text = _str(raw, key, path)
    if text is None:
        return None
    if len(text) > 1024:
        raise InvalidSpec(f"{path}.{key}", "at most 1024 characters")
    try:
        re.compile(text)
    except re.error as e:
        raise InvalidSpec(f"{path}.{key}", f"is not a regular expression ({e.msg})") from None
    return text


def parse_find(raw: Any, path: str) -> FindQuery:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, "must be an object")
    prefix = _str(raw, "path", path)
    if prefix is not None and (not prefix or len(prefix) > 2048):
        raise InvalidSpec(f"{path}.path", "must be a name prefix of 1 to 2048 characters")
    name = _map(raw, "name", path)
    name_regexp = _regexp(name, "regexp", f"{path}.name")
    tags = _map(raw, "tags", path)
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidSpec(f"{path}.tags", "must map tag names to string values")
    limit = raw.get("maxMatches", DEFAULT_MAX_MATCHES)
    if type(limit) is not int or not 1 <= limit <= MAX_MATCHES_LIMIT:
        raise InvalidSpec(f"{path}.maxMatches", f"must be a whole number from 1 to {MAX_MATCHES_LIMIT}")
    if prefix is None and name_regexp is None and not tags:
        raise InvalidSpec(path, "must select by at least one of path, name.regexp, tags")
    return FindQuery(prefix=prefix, name_regexp=name_regexp, tags=dict(tags), max_matches=limit)


def parse_rewrites(raw: Mapping[str, Any], path: str) -> tuple[Rewrite, ...]:
    rules = []
    for i, item in enumerate(_list(raw, "rewrite", path)):
        rpath = f"{path}.rewrite[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSpec(rpath, "must be an object")
        set_ = [k for k in ("regexp", "stripPrefix") if item.get(k) is not None]
        if len(set_) != 1:
            raise InvalidSpec(rpath, "must set exactly one of regexp, stripPrefix")
        if set_[0] == "stripPrefix":
            rules.append(Rewrite(strip_prefix=_str(item, "stripPrefix", rpath, required=True)))
            continue
        regexp = _map(item, "regexp", rpath)
        source = _regexp(regexp, "source", f"{rpath}.regexp")
        if source is None:
            raise InvalidSpec(f"{rpath}.regexp.source", "is required")
        target = regexp.get("target", "")
        if not isinstance(target, str):
            raise InvalidSpec(f"{rpath}.regexp.target", "must be a string")
        compiled = re.compile(source)
        for match in _GO_GROUP.finditer(target.replace("$$", "")):
            group = next(g for g in match.groups() if g is not None)
            if (int(group) > compiled.groups) if group.isdigit() else (group not in compiled.groupindex):
                raise InvalidSpec(f"{rpath}.regexp.target", f"names group {group!r}, which regexp.source lacks")
        rules.append(Rewrite(source=source, target=target))
    return tuple(rules)
