"""Change-event benchmark: an AWS change event on an SQS queue → the pod-template restart patch.

``make bench-events`` (or ``.venv/bin/python -m bench.change_event [--n 100] [--rotations 20]``).
It starts the scale benchmark's world (``bench/scale_world.py``) with moto only, which serves
Secrets Manager (behind the counting proxy) and SQS, in a temporary directory, and stops every
process it started at the end (exit 1 if one outlives it). One namespace, one store whose
``aws.changeEvents`` names a moto queue (fallback 1h), N BotSecrets of one key each, read from a
remote secret of its own, with ``refreshInterval: 1h``, debounce 0s and a Deployment (0 replicas)
as rollout target: only an event can wake one.

Once all are Ready, their rollouts complete and the store's stream healthy, R rotations one at a
time, spread over the fleet: put a new value in moto, send the EventBridge-shaped CloudTrail record
of that ``PutSecretValue`` (by ARN) to the queue, and take the time from just before the send to
the operator's pod-template PATCH of that BotSecret's Deployment as the apiserver's audit log
stamps it (received; the apiserver's clock, which is this host's wall clock, as the send's is).
Per rotation it counts the Secrets Manager reads the proxy saw from the put to the next rotation's
put: of the changed secret, and of any other. It prints p50, p99 (nearest rank) and max, writes
``bench/results/change-event-<N>.json`` and the small ``change-events.json``; no assert on time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.scale import _commit, nearest_rank
from bench.scale_probes import Audit, FleetWatch, metric_sum, restart_patch, template_patches
from bench.scale_world import LABEL, Bot, Ref, World
from bench.workdir import in_workdir
from tests.harness.aws import cloudtrail_event
from tests.harness.botsecrets import aws_source
from tests.harness.counting_proxy import READS, CountingProxy
from tests.harness.stores import GROUP, VERSION, create_store
from tests.harness.waiting import wait_for

RESULTS = Path(__file__).resolve().parent / "results"
STORE = "aws"  # the one store, and the source name the BotSecrets give it (scale_world's naming)
KEY = "TOKEN"
REFRESH = "1h"  # the BotSecrets' own interval and the store's fallback: only events wake them
STEP_TIMEOUT = 120.0
POLL = 0.05  # how often the audit log is read while a rotation waits for its patch


@dataclass
class Rotation:
    bot: str
    event_to_patch_ms: float | None  # None: no patch within STEP_TIMEOUT
    reads_of_changed: int = 0  # Secrets Manager reads from its put to the next rotation's put
    reads_of_others: int = 0
    event_to_read_ms: float | None = None  # from the send to the first read of the changed secret
    load1: float = 0.0
    proxy_start: int = 0  # where its window starts in the proxy's requests
    sent: float = 0.0  # wall-clock time just before the event was sent


def plan(world: World, n: int) -> str:
    namespace = f"events-{secrets.token_hex(3)}"
    world.namespaces = [namespace]
    world.bots = [Bot(namespace, f"bot-{i:05d}", {KEY: Ref(STORE, f"{namespace}/bot-{i:05d}", False)})
                  for i in range(n)]
    return namespace


def seed(world: World, namespace: str) -> str:
    """The namespace, the queue, the store naming it, the remote secrets and Deployments; the queue URL."""
    world.kube.core.create_namespace({"metadata": {"name": namespace, "labels": {LABEL: "true"}}})
    queue_url: str = world.moto.client("sqs").create_queue(QueueName=f"{namespace}-changes")["QueueUrl"]
    aws = aws_source(world.kube, namespace, world.aws_proxy.endpoint)["aws"]
    create_store(world.kube, namespace, STORE, {"aws": {
        **aws, "changeEvents": {"sqsQueueURL": queue_url, "fallbackRefreshInterval": REFRESH}}})
    world.seed_fleet()
    return queue_url


def stream_healthy(world: World, namespace: str) -> bool:
    store = world.kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "botsecretstores", STORE)
    return ((store.get("status") or {}).get("changeEvents") or {}).get("healthy") is True


def queue_empty(sqs: Any, queue_url: str) -> bool:
    """No message waiting or in flight: the operator has received and deleted every event."""
    found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                                          "ApproximateNumberOfMessagesNotVisible"])
    return all(v == "0" for v in found["Attributes"].values())


def reads(proxy: CountingProxy, start: int, end: int, remote: str) -> tuple[int, int, float | None]:
    """Secrets Manager reads among the proxy's requests [start, end): of ``remote``, of others, and
    the arrival of the first read of ``remote``."""
    window = [(arrived, body) for arrived, (target, body) in
              list(zip(proxy.arrived, proxy.requests, strict=False))[start:end] if target in READS]
    changed = [arrived for arrived, body in window if json.dumps(remote) in body]
    return len(changed), len(window) - len(changed), (changed[0] if changed else None)


def woke(world: World) -> float:
    assert world.operator is not None
    return metric_sum(world.operator.metrics(), "botsecret_change_events_total", outcome="woke")


def rotate(world: World, audit: Audit, sm: Any, sqs: Any, queue_url: str, bot: Bot) -> Rotation:
    """Put a new value into ``bot``'s secret, announce it on the queue, wait for the template patch
    and for the event to be counted and deleted."""
    ref = bot.refs[KEY]
    start, offset = len(world.aws_proxy.requests), audit.position()
    arn = sm.put_secret_value(SecretId=ref.remote, SecretString=f"v-{secrets.token_hex(8)}")["ARN"]
    woke_before = woke(world)
    sent = time.time()  # the audit log's and the proxy's clock: they run on this host
    sqs.send_message(QueueUrl=queue_url, MessageBody=cloudtrail_event("PutSecretValue", arn))
    deadline = time.monotonic() + STEP_TIMEOUT
    patched = None
    while patched is None and time.monotonic() < deadline:
        patched = template_patches(audit.events(offset)).get((bot.namespace, bot.name))
        if patched is None:
            time.sleep(POLL)  # the audit log has no watch; the figure is its timestamp, not this poll
    wait_for(lambda: woke(world) > woke_before and queue_empty(sqs, queue_url), timeout=STEP_TIMEOUT,
             interval=0.2, what=f"the event for {bot.name} counted and deleted")
    ms = None if patched is None else round((patched - sent) * 1000, 1)
    return Rotation(bot.name, ms, load1=round(os.getloadavg()[0], 1), proxy_start=start, sent=sent)


def run(workdir: Path, n: int, rotations: int) -> dict[str, Any]:
    world = World(workdir)
    fleet: FleetWatch | None = None
    try:
        world.start({}, providers=("aws",))
        namespace = plan(world, n)
        queue_url = seed(world, namespace)
        fleet = FleetWatch(world.fresh_client(), f"{LABEL}=true")
        fleet.start()
        timeout = max(300.0, n * 0.6)
        t0 = time.monotonic()
        world.apply(REFRESH)
        if not fleet.wait(lambda: fleet.count_settled() >= n, timeout):
            raise TimeoutError(f"only {fleet.count_settled()} of {n} BotSecrets Ready and settled after {timeout} s")
        wait_for(lambda: stream_healthy(world, namespace), timeout=timeout, interval=0.5,
                 what="the store's change stream healthy")
        sm, sqs = world.moto.client(), world.moto.client("sqs")
        wait_for(lambda: queue_empty(sqs, queue_url), timeout=60, interval=0.5, what="an empty queue")
        settled_s = time.monotonic() - t0
        machine = (f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
                   f"Python {platform.python_version()}")
        print(f"change-event benchmark: N={n}, {rotations} rotations; {machine}; all Ready and settled "
              f"{settled_s:.1f} s after the first create; load {os.getloadavg()[0]:.1f}", flush=True)

        audit = Audit(world.plane.audit_log)
        phase = audit.position()
        step = max(1, n // rotations)
        chosen = [world.bots[(i * step) % n] for i in range(rotations)]
        done: list[Rotation] = []
        for bot in chosen:
            r = rotate(world, audit, sm, sqs, queue_url, bot)
            done.append(r)
            shown = "not patched" if r.event_to_patch_ms is None else f"{r.event_to_patch_ms:7.1f} ms"
            print(f"  rotation {len(done):3d} ({r.bot}): event -> template patch {shown}; load {r.load1}",
                  flush=True)
        # Each rotation's reads: from its put to the next one's (a late read would land there).
        ends = [r.proxy_start for r in done[1:]] + [len(world.aws_proxy.requests)]
        for bot, r, end in zip(chosen, done, ends, strict=True):
            r.reads_of_changed, r.reads_of_others, read_at = reads(world.aws_proxy, r.proxy_start, end,
                                                                   bot.refs[KEY].remote)
            r.event_to_read_ms = None if read_at is None else round((read_at - r.sent) * 1000, 1)
        patches = Counter(key for key in map(restart_patch, audit.events(phase)) if key is not None)
        return summarise(n, done, patches, {(b.namespace, b.name) for b in chosen}, machine, settled_s)
    finally:
        if fleet is not None:
            fleet.stop()
        world.stop()


def summarise(n: int, done: list[Rotation], patches: Counter[tuple[str, str]], rotated: set[tuple[str, str]],
              machine: str, settled_s: float) -> dict[str, Any]:
    timed = [r.event_to_patch_ms for r in done if r.event_to_patch_ms is not None]
    loads = [r.load1 for r in done]
    to_read = [r.event_to_read_ms for r in done if r.event_to_read_ms is not None]
    read_to_patch = [r.event_to_patch_ms - r.event_to_read_ms for r in done
                     if r.event_to_patch_ms is not None and r.event_to_read_ms is not None]
    figures: dict[str, Any] = {
        "n": n, "rotations": len(done), "patched": len(timed),
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine,
        "commit": _commit(), "settled_s": round(settled_s, 1),
        "p50_ms": round(nearest_rank(timed, 0.5), 1), "p99_ms": round(nearest_rank(timed, 0.99), 1),
        "max_ms": round(max(timed), 1) if timed else None,
        "mean_ms": round(statistics.fmean(timed), 1) if timed else None,
        "event_to_read_p50_ms": round(nearest_rank(to_read, 0.5), 1),
        "read_to_patch_p50_ms": round(nearest_rank(read_to_patch, 0.5), 1),
        "reads_of_changed_per_event": round(statistics.fmean(r.reads_of_changed for r in done), 2),
        "reads_of_others_total": sum(r.reads_of_others for r in done),
        "restart_patches_of_rotated": sum(c for key, c in patches.items() if key in rotated),
        "restart_patches_of_others": sum(c for key, c in patches.items() if key not in rotated),
        "load1_min": min(loads), "load1_max": max(loads),
    }
    print(f"\nAWS change event -> template patched, N={n}, {len(done)} rotations one at a time "
          f"({len(timed)} patched; audit-log times): p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
          f"max {figures['max_ms']} ms")
    print(f"  of which: event sent -> the operator's read of the changed secret (at the proxy) p50 "
          f"{figures['event_to_read_p50_ms']} ms; that read -> template patch p50 {figures['read_to_patch_p50_ms']} ms")
    print(f"Secrets Manager reads per event: {figures['reads_of_changed_per_event']} of the changed secret; "
          f"{figures['reads_of_others_total']} of any other secret in all {len(done)} rotations")
    pairs = Counter((r.reads_of_changed, r.reads_of_others) for r in done)
    print("  rotations by (reads of the changed secret, of others): "
          + ", ".join(f"{k}: {v}" for k, v in sorted(pairs.items())))
    print(f"restart patches: {figures['restart_patches_of_rotated']} of the {len(rotated)} rotated BotSecrets' "
          f"Deployments, {figures['restart_patches_of_others']} of the other {n - len(rotated)}")
    print(f"machine: {machine}; load average (1 min) during the rotations {figures['load1_min']} to "
          f"{figures['load1_max']}; p99 is nearest-rank; figures are wall-clock on this machine, not targets")
    return {**figures, "per_rotation": [asdict(r) for r in done]}


def write(out: Path, figures: dict[str, Any]) -> None:
    """The whole run (gitignored) and its figures without the rows into the small summary (kept)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"change-event-{figures['n']}.json").write_text(json.dumps(figures, indent=1, sort_keys=True))
    summary_path = out / "change-events.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.setdefault("runs", {})[str(figures["n"])] = {k: v for k, v in figures.items() if k != "per_rotation"}
    summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.change_event", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="BotSecrets (default 100)")
    parser.add_argument("--rotations", type=int, default=20, help="rotations, one at a time (default 20)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    args = parser.parse_args(argv)

    def body(workdir: Path) -> bool:
        write(args.out, run(workdir, args.n, args.rotations))
        return True

    return in_workdir("botsecret-bench-events-", args.keep, body)

if __name__ == "__main__":
    sys.exit(main())
