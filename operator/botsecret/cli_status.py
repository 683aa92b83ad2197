"""`botsecret status`, `botsecret sync` and `botsecret rotate`: through the apiserver, with the
caller's kubeconfig. Status shows names and versions only; sync and rotate set annotations the
operator acts on and follow the status it writes."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .cli_input import InputError, read_botsecret
from .cycle import FORCE_SYNC_ANNOTATION, RETRY_ROLLOUT_ANNOTATION, ROTATE_NOW_ANNOTATION
from .resolve import GROUP, VERSION
from .status_report import report

__all__ = ["add_rotate", "add_status", "add_sync"]

POLL_SECONDS = 0.5


def _fail(message: str, code: int = 2) -> int:
    print(f"botsecret: {message}", file=sys.stderr)
    return code


def _custom() -> Any:
    from kubernetes.config import ConfigException

    from .runtime import api_client

    try:
        return client.CustomObjectsApi(api_client())
    except ConfigException:
        raise InputError("no Kubernetes credentials: neither in-cluster nor a kubeconfig ($KUBECONFIG)") from None


def _status(args: argparse.Namespace) -> int:
    try:
        custom = _custom()
        if args.name:
            bodies = [read_botsecret(custom, args.namespace or "default", args.name)]
        elif args.namespace:
            bodies = custom.list_namespaced_custom_object(GROUP, VERSION, args.namespace, "botsecrets")["items"]
        else:
            bodies = custom.list_cluster_custom_object(GROUP, VERSION, "botsecrets")["items"]
    except InputError as e:
        return _fail(str(e))
    except ApiException as e:
        return _fail(f"listing BotSecrets failed with HTTP {e.status} {e.reason}")
    if not bodies:
        print("no BotSecrets found")
    sys.stdout.write("\n".join(report(b) for b in bodies))
    return 0


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def _wait(check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(POLL_SECONDS)


def _force(custom: Any, namespace: str, name: str, rotate: bool, retry: bool = False) -> str:
    token = secrets.token_hex(6)
    annotations = {FORCE_SYNC_ANNOTATION: token, **({ROTATE_NOW_ANNOTATION: token} if rotate else {}),
                   **({RETRY_ROLLOUT_ANNOTATION: token} if retry else {})}
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "botsecrets", name,
                                          {"metadata": {"annotations": annotations}},
                                          _content_type="application/merge-patch+json")
    return token


def _handled(custom: Any, namespace: str, name: str, token: str, timeout: float) -> dict[str, Any] | None:
    def seen() -> dict[str, Any] | None:
        status: dict[str, Any] = read_botsecret(custom, namespace, name).get("status") or {}
        return status if status.get("forceSyncHandled") == token else None
    found: dict[str, Any] | None = _wait(seen, timeout)
    return found


def _sync(args: argparse.Namespace) -> int:
    namespace = args.namespace or "default"
    try:
        custom = _custom()
        read_botsecret(custom, namespace, args.name)
        token = _force(custom, namespace, args.name, rotate=False)
        print(f"{namespace}/{args.name}: force-sync {token} requested")
        status = _handled(custom, namespace, args.name, token, args.timeout)
    except InputError as e:
        return _fail(str(e))
    except ApiException as e:
        return _fail(f"annotating BotSecret {args.name!r} failed with HTTP {e.status} {e.reason}")
    if status is None:
        return _fail(f"the operator did not handle force-sync {token} within {args.timeout:.0f} s (is it running?)", 1)
    ready = _ready(status)
    print(f"{namespace}/{args.name}: synced: Ready={ready.get('status')} ({ready.get('reason')}): "
          f"{ready.get('message', '')}")
    return 0 if ready.get("status") == "True" else 1


def _started(status: Mapping[str, Any]) -> dict[str, str]:
    return {f"{e.get('kind')}/{e.get('name')}": str(e.get("startedAt") or "") for e in status.get("rollout") or []}


def _follow(custom: Any, namespace: str, name: str, before: Mapping[str, str], timeout: float) -> int:
    """Print each change of the restarted workloads' phases until every one is Complete (or not
    followed) or one Failed or met a RestartConflict."""
    deadline = time.monotonic() + timeout
    said: dict[str, str] = {}
    while True:
        status = read_botsecret(custom, namespace, name).get("status") or {}
        entries = {f"{e.get('kind')}/{e.get('name')}": e for e in status.get("rollout") or []}
        restarted = {w: e for w, e in entries.items() if e.get("startedAt") and e.get("startedAt") != before.get(w)}
        pending = status.get("pendingRollout")
        rollout: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "RolloutComplete"), {})
        for workload, entry in sorted(restarted.items()):
            line = (f"{workload}: {entry.get('phase')} - {entry.get('message', '')} "
                    f"(restarted {entry.get('startedAt')} for keys {', '.join(entry.get('restartedFor') or [])})")
            if said.get(workload) != line:
                print(line, flush=True)
                said[workload] = line
        if pending and said.get("") != rollout.get("message"):
            print(f"waiting: {rollout.get('reason')}: {rollout.get('message')}", flush=True)
            said[""] = str(rollout.get("message"))
        if not pending and not restarted:
            print("nothing restarted: no workload consumes data that changed since its last restart")
            return 0
        phases = {e.get("phase") for e in restarted.values()}
        if phases & {"Failed", "RolledBack"}:
            print(f"rollout {'Failed' if 'Failed' in phases else 'RolledBack'}: {rollout.get('message', '')}")
            return 1
        if "Conflict" in phases:
            print(f"restart conflict: {rollout.get('message', '')}")
            return 1
        if not pending and phases <= {"Complete", "Unknown"}:
            # Unknown: restarted, but the kind's status cannot tell how far its rollout got.
            print("rollout Complete" if phases == {"Complete"}
                  else f"restarted, not followed: {rollout.get('message', '')}")
            return 0
        if time.monotonic() > deadline:
            print(f"still {rollout.get('reason')} after {timeout:.0f} s: {rollout.get('message', '')}")
            return 1
        time.sleep(POLL_SECONDS)


def _rotate(args: argparse.Namespace) -> int:
    if not args.now and not args.retry:
        return _fail("rotate needs --now (the emergency path: restart without waiting out the debounce) or "
                     "--retry (roll out again a version that was rolled back); for a plain sync use `botsecret sync`")
    namespace = args.namespace or "default"
    try:
        custom = _custom()
        before = _started(read_botsecret(custom, namespace, args.name).get("status") or {})
        token = _force(custom, namespace, args.name, rotate=True, retry=args.retry)
        print(f"{namespace}/{args.name}: rotate-now {token} requested", flush=True)
        status = _handled(custom, namespace, args.name, token, args.timeout)
        if status is None:
            return _fail(f"the operator did not handle rotate-now {token} within {args.timeout:.0f} s "
                         "(is it running?)", 1)
        ready = _ready(status)
        print(f"synced: Ready={ready.get('status')} ({ready.get('reason')}): {ready.get('message', '')}", flush=True)
        if ready.get("status") != "True":
            print("not restarted: the sync failed, so the workloads keep the last good data")
            return 1
        return _follow(custom, namespace, args.name, before, args.timeout)
    except InputError as e:
        return _fail(str(e))
    except ApiException as e:
        return _fail(f"BotSecret {args.name!r}: HTTP {e.status} {e.reason}")


def add_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="readiness, last sync, keys with remote versions and restarts of BotSecrets",
        description="Per BotSecret: readiness and why, last sync and last write, every key with its source, "
                    "remote name and remote version (the audit trail), and per workload the last restart, "
                    "the keys it was for and its rollout phase; from the BotSecret's status. No values.")
    status.add_argument("name", nargs="?", metavar="NAME", help="one BotSecret (default: all)")
    status.add_argument("-n", "--namespace", help="namespace (default: all namespaces, or 'default' with NAME)")
    status.set_defaults(func=_status)


def _named(commands: argparse._SubParsersAction[argparse.ArgumentParser], command: str, help: str,
           description: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(command, help=help, description=description)
    parser.add_argument("name", metavar="NAME", help="the BotSecret")
    parser.add_argument("-n", "--namespace", help="its namespace (default: default)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default: 120)")
    return parser


def add_sync(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = _named(commands, "sync", "sync a BotSecret now and wait until the operator has",
                  f"Set the {FORCE_SYNC_ANNOTATION} annotation to a new value and wait until the operator "
                  "reports it handled (status.forceSyncHandled); print the outcome. A restart it makes due "
                  "still waits out the debounce. Exit status 0 when Ready, 1 when not or on timeout.")
    sync.set_defaults(func=_sync)


def add_rotate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = _named(commands, "rotate", "emergency: sync now, restart without the debounce, follow the rollout",
                    "After revoking a credential and updating the store: sync now and restart the workloads "
                    "whose data changed at once, skipping spec.rollout.debounce for this sync (the "
                    f"{ROTATE_NOW_ANNOTATION} annotation, set to the same value as {FORCE_SYNC_ANNOTATION}); "
                    "then print the rollout's progress until it is Complete (exit 0) or Failed (exit 1). A "
                    "rollout already in progress is still waited for first.")
    rotate.add_argument("--now", action="store_true", help="skip the debounce (this or --retry is required)")
    rotate.add_argument("--retry", action="store_true",
                        help=f"strategy Versioned: roll out again a version that was rolled back, though its data "
                             f"did not change (the {RETRY_ROLLOUT_ANNOTATION} annotation); implies --now")
    rotate.set_defaults(func=_rotate)
