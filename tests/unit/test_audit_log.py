"""The benchmarks' reader of the apiserver's audit log (bench/scale_probes.py): counts from a mark,
and a loud failure when the log was rotated under it (the apiserver renames a full log and starts a
new one, so reading on from the old offset would silently count nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.scale_probes import Audit, AuditLogRotated
from tests.harness.cluster import OPERATOR_USER


def _line(verb: str, resource: str) -> str:
    return json.dumps({"user": {"username": OPERATOR_USER}, "verb": verb, "stage": "ResponseComplete",
                       "objectRef": {"resource": resource}}) + "\n"


def test_counts_start_at_the_mark(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_line("get", "secrets"))
    audit = Audit(log)
    audit.mark()
    with log.open("a") as f:
        f.write(_line("get", "deployments") + _line("patch", "secrets"))
    assert audit.since_mark() == {"get deployments": 1, "patch secrets": 1}


def test_a_log_rotated_after_the_mark_is_refused_not_counted_as_silence(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_line("get", "secrets") * 50)
    audit = Audit(log)
    audit.mark()
    log.rename(tmp_path / "audit-2026-12-07T22-30-00.000.log")
    log.write_text(_line("get", "secrets"))
    with pytest.raises(AuditLogRotated, match="rotated"):
        audit.since_mark()
    with pytest.raises(AuditLogRotated):
        audit.events()
