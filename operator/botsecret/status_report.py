"""`botsecret status`: a BotSecret's status as text. Pure; status holds names and versions only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["report", "table"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return [(indent + "  ".join(c[i].ljust(widths[i]) for i in range(len(header)))).rstrip() for c in cells]


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def report(body: Mapping[str, Any]) -> str:
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    ready = _condition(status, "Ready") or {}
    lines = [f"{meta.get('namespace')}/{meta.get('name')}: Ready={ready.get('status', 'Unknown')} "
             f"({ready.get('reason', 'not synced yet')}) Secret {status.get('secretName', '-')}",
             f"  message:    {ready.get('message', '-')}",
             f"  last sync:  {status.get('syncedAt', 'never')}   last write: {status.get('writtenAt', 'never')}"]
    keys = status.get("keys") or []
    if keys:
        lines.append("  keys (remote versions):")
        lines += table(("KEY", "SOURCE", "REMOTE", "VERSION"),
                       [(k.get("key", ""), k.get("source", ""), k.get("remoteName", ""), k.get("version") or "-")
                        for k in keys], indent="    ")
    rollout = _condition(status, "RolloutComplete")
    if rollout is not None:
        lines.append(f"  rollout:    RolloutComplete={rollout.get('status')} ({rollout.get('reason')}): "
                     f"{rollout.get('message', '')}")
    entries = status.get("rollout") or []
    if entries:
        lines += table(("WORKLOAD", "PHASE", "RESTARTED", "FINISHED", "FOR KEYS", "MESSAGE"),
                       [(f"{e.get('kind')}/{e.get('name')}", e.get("phase") or "-", e.get("startedAt") or "never",
                         e.get("finishedAt") or "-", ",".join(e.get("restartedFor") or []) or "-",
                         e.get("message") or "") for e in entries], indent="    ")
    pending = status.get("pendingRollout")
    if pending:
        lines.append(f"  pending restart: keys {', '.join(pending.get('keys') or []) or '-'}, "
                     f"changed at {pending.get('changedAt')}")
    return "\n".join(lines) + "\n"
