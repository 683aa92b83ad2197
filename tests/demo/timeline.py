"""The demo's flow after the world is up: the bot, the first sync, a rotation and what follows
it, each phase printed as it is observed (never a value: digests and versions only)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from botsecret.cycle import FORCE_SYNC_ANNOTATION, ROTATE_NOW_ANNOTATION
from tests.harness import botsecrets as bs
from tests.harness.waiting import wait_for

from . import bot
from .world import World

Say = Callable[[str], None]
# Generous: the machine may be shared; these are deadlines, not waits.
PHASE_TIMEOUT = 180
# The phases, in the order the demo prints them (the test checks that order).
PHASES = ("synced", "bot running", "rotated", "restarted", "new pod running", "old pod gone", "rollout complete")


def _status(world: World) -> dict[str, Any]:
    return dict(bs.get(world.kube, bot.NAMESPACE, bot.NAME).get("status") or {})


def _entry(world: World) -> dict[str, Any]:
    return next((e for e in _status(world).get("rollout") or [] if e.get("name") == bot.NAME), {})


def _pods(world: World) -> list[Any]:
    return list(world.kube.core.list_namespaced_pod(bot.NAMESPACE, label_selector=f"app={bot.NAME}").items)


def _running_pod_with(world: World, wanted: str, exclude: set[str]) -> tuple[str, str] | None:
    """A Running pod (not in ``exclude``) whose log shows ``wanted`` for the rotated key."""
    for pod in _pods(world):
        if pod.metadata.name in exclude or pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
            continue
        try:
            log = world.kube.core.read_namespaced_pod_log(pod.metadata.name, bot.NAMESPACE)
        except Exception:  # noqa: BLE001 - the container may not have started writing yet
            continue
        if f"{bot.ROTATED_KEY} {wanted}" in log:
            return pod.metadata.name, log
    return None


def _container(world: World) -> dict[str, Any]:
    if world.node is None:
        return {"name": "bot", "image": "example.invalid/bot:1", "envFrom": [{"secretRef": {"name": bot.TARGET}}]}
    from tests.harness.node_fixtures import bot_container

    # The node's static bot image prints "NAME sha256:<16 hex>" per key, never a value.
    return bot_container(world.node, keys=list(bot.ALL_KEYS), secret=bot.TARGET)


def run(world: World, seed: str, say: Say, phase: Callable[[str, str], None]) -> None:
    kube, ns = world.kube, bot.NAMESPACE
    # Scaled up once the Secret exists: a pod started before would wait out the kubelet's backoff.
    replicas = 1 if world.node is not None else 0
    bot.put_remote_secrets(seed, world.moto, world.bao, world.gcp)
    kube.core.create_namespace({"metadata": {"name": ns}})
    bot.create_stores(kube, world.moto, world.bao, world.gcp)
    kube.apps.create_namespaced_deployment(ns, bot.deployment(0, _container(world)))
    kube.custom.create_namespaced_custom_object("botsecret.dev", "v1alpha1", ns, "botsecrets", bot.botsecret())
    say(f"created: 6 keys as one JSON secret in AWS ({bot.AWS_SECRET}), {bot.VAULT_KEY} in Vault, {bot.GCP_KEY} "
        f"in Google Secret Manager; stores aws, vault, gcp; Deployment {bot.NAME} (scaled to {replicas} once synced); "
        f"BotSecret {bot.NAME}")

    body = bs.wait_ready(kube, ns, bot.NAME, reason="Synced", timeout=PHASE_TIMEOUT)
    keys = (body.get("status") or {}).get("keys") or []
    versions = ", ".join(sorted({f"{k.get('source')}@{str(k.get('version'))[:12]}" for k in keys}))
    phase("synced", f"Secret {bot.TARGET} holds {len(keys)} keys ({versions})")

    old_digest = bot.digest(bot.value(seed, bot.ROTATED_KEY))
    old_pod = None
    if replicas:
        kube.apps.patch_namespaced_deployment_scale(bot.NAME, ns, {"spec": {"replicas": replicas}})
        old_pod, _ = wait_for(lambda: _running_pod_with(world, old_digest, set()), timeout=PHASE_TIMEOUT,
                              what="the bot's pod running")
        phase("bot running", f"pod {old_pod} prints {bot.ROTATED_KEY} {old_digest}")
    started_before = _entry(world).get("startedAt")

    version = bot.rotate_remote(seed, world.moto)
    token = secrets.token_hex(6)
    kube.custom.patch_namespaced_custom_object(
        "botsecret.dev", "v1alpha1", ns, "botsecrets", bot.NAME,
        {"metadata": {"annotations": {FORCE_SYNC_ANNOTATION: token, ROTATE_NOW_ANNOTATION: token}}},
        _content_type="application/merge-patch+json")
    rotated_at = time.monotonic()
    phase("rotated", f"{bot.ROTATED_KEY} updated in AWS (version {version[:12]}); then, as the guide's emergency "
                     f"runbook says, `botsecret rotate {bot.NAME} -n {ns} --now` (sync and restart now)")

    entry = wait_for(lambda: (e := _entry(world)).get("startedAt") not in (None, started_before) and e,
                     timeout=PHASE_TIMEOUT, what="the restart")
    phase("restarted", f"{entry.get('kind')}/{entry.get('name')} for keys {', '.join(entry.get('restartedFor') or [])} "
                       f"({time.monotonic() - rotated_at:.1f} s after the rotation)")

    new_digest = bot.digest(bot.value(seed, bot.ROTATED_KEY, 2))
    if world.node is not None:
        assert old_pod is not None
        new_pod, _ = wait_for(lambda: _running_pod_with(world, new_digest, {old_pod}), timeout=PHASE_TIMEOUT,
                              what="a new pod with the new value")
        phase("new pod running", f"pod {new_pod} prints {bot.ROTATED_KEY} {new_digest}")
        wait_for(lambda: old_pod not in {p.metadata.name for p in _pods(world)}, timeout=PHASE_TIMEOUT,
                 what="the old pod gone")
        phase("old pod gone", f"pod {old_pod} (old {bot.ROTATED_KEY} {old_digest}) deleted")
    done = wait_for(lambda: (e := _entry(world)).get("phase") in ("Complete", "Failed") and e,
                    timeout=PHASE_TIMEOUT, what="the rollout's end")
    if done.get("phase") != "Complete":
        raise RuntimeError(f"rollout {done.get('phase')}: {done.get('message')}")
    phase("rollout complete", f"{done.get('kind')}/{done.get('name')}: {done.get('message', '')} "
                              f"({time.monotonic() - rotated_at:.1f} s after the rotation)")


def paste_lines(world: World) -> str:
    ns, bin_dir = bot.NAMESPACE, world.plane.bin_dir
    return f"""\
# Look for yourself (while the demo runs; `make demo KEEP=1` keeps it up):
export KUBECONFIG={world.plane.admin_kubeconfig} PATH={bin_dir}:$PATH
kubectl -n {ns} get botsecret {bot.NAME} -o yaml          # conditions, keys with remote versions, rollout
kubectl -n {ns} get events --field-selector involvedObject.name={bot.NAME}
kubectl -n {ns} rollout history deployment/{bot.NAME}
kubectl -n {ns} get pods -l app={bot.NAME}
.venv/bin/botsecret status {bot.NAME} -n {ns}              # the audit trail: keys, versions, restarts
.venv/bin/botsecret check {bot.NAME} -n {ns}               # every reference resolved, no values
curl -s http://127.0.0.1:{world.operator.metrics_port}/metrics | grep ^botsecret_"""
