"""Scale benchmark: N BotSecrets on one operator, against the local control plane and providers.

``make bench-scale N=1000`` (or ``.venv/bin/python -m bench.scale --n 1000``). See
``bench/scale_world.py`` for the fleet; it measures, and never asserts on time:

* apply -> all Ready (the watch's arrival of each BotSecret's Ready=True), the operator's CPU
  seconds over that time and its peak RSS, and the operator's Kubernetes requests per new BotSecret;
* one idle refresh interval: provider requests (counted at the proxies in front of moto and
  OpenBao and by the GCP fake, and by the operator's own metric) against the distinct remote
  secrets per identity, and the operator's Kubernetes requests by verb (audit log);
* force-sync -> Deployment template patched, p50/p99, for a burst of rotated BotSecrets at once;
* an operator restart: template patches and Secret writes it caused (must be 0) and the time
  until every BotSecret was checked again (its ``botsecret_last_success_timestamp_seconds``).

Figures go to ``bench/results/scale-<N>.json``; ``bench/scale_report.py`` folds every run into
``summary.json`` and ``scale.png``.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.scale_probes import (
    PLAIN_HTTP_WARNINGS,
    Audit,
    FleetWatch,
    cpu_seconds,
    metric_sum,
    peak_rss_mib,
    samples,
    stamp,
    template_patches,
    without_plain_http_warnings,
    writes,
)
from bench.scale_profile import Profiler, summary
from bench.scale_world import LABEL, PROVIDERS, World
from bench.workdir import in_workdir
from tests.harness import botsecrets as bs

RESULTS = Path(__file__).resolve().parent / "results"
READS = ("secretsmanager.GetSecretValue", "secretsmanager.BatchGetSecretValue")
ADMIN_USER = "botsecret-test-admin"  # the benchmark's own client (tests/harness/cluster.py)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else float("nan")


class ProviderCounts:
    """Requests the providers saw, from the counters in front of them."""

    def __init__(self, world: World) -> None:
        self._world = world

    def snapshot(self) -> dict[str, int]:
        aws = [t for t, _ in list(self._world.aws_proxy.requests) if t in READS]
        return {
            "aws": len(aws),
            "aws_batch": sum(1 for t in aws if t.endswith("BatchGetSecretValue")),
            "gcp": self._world.gcp.calls.get("AccessSecretVersion", 0),
            "vault": self._world.vault_proxy.count("GET", "/v1/secret/data/"),
        }

    @staticmethod
    def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
        return {k: after[k] - before.get(k, 0) for k in after}


def operator_pid(world: World) -> int:
    assert world.operator is not None and world.operator.proc is not None
    return world.operator.proc.pid


def phase_apply(world: World, fleet: FleetWatch, audit: Audit, refresh: str, timeout: float) -> dict[str, Any]:
    n = len(world.bots)
    pid = operator_pid(world)
    cpu0 = cpu_seconds(pid)
    audit.mark()
    t0 = time.monotonic()
    world.apply(refresh)
    applied = time.monotonic() - t0
    if not fleet.wait(lambda: fleet.count_ready() >= n, timeout):
        counted = fleet.count_ready()
        print(f"apply -> only {counted} of {n} BotSecrets Ready after {timeout:.0f} s; "
              f"operator CPU {cpu_seconds(pid) - cpu0:.1f} s; the other phases are skipped")
        return {"all_ready": False, "ready_at_timeout": counted, "timeout_s": timeout,
                "cpu_s_to_timeout": round(cpu_seconds(pid) - cpu0, 2)}
    ready = max(fleet.ready_at.values()) - t0
    cpu = cpu_seconds(pid) - cpu0
    fleet.wait(lambda: fleet.count_settled() >= n, timeout)
    # Each first sync posts a Synced Event and one InsecurePlainHTTP Warning per source (the
    # benchmark's providers are plain-HTTP servers); until they exist the apply is not over, and
    # late ones would be counted as the idle fleet's writes.
    expected: Counter[tuple[str, str, str]] = Counter()
    for bot in world.bots:
        expected[(bot.namespace, bot.name, "Synced")] = 1
        expected[(bot.namespace, bot.name, PLAIN_HTTP_WARNINGS[0])] = len(PROVIDERS)
    drained = audit.wait_for_events(expected, timeout)
    if drained is None:
        print(f"apply -> the first syncs' Events were not all posted within {timeout:.0f} s")
    counts = audit.since_mark()
    requests = without_plain_http_warnings(counts)
    print(f"apply -> all {n} Ready: {ready:.1f} s (the creates took {applied:.1f} s); operator CPU {cpu:.1f} s; "
          f"Kubernetes requests per new BotSecret {requests / n:.2f} (without the plain-HTTP warning events; "
          f"{sum(counts.values()) / n:.2f} with them)")
    if drained is not None:
        print(f"  the first syncs' Events were all posted {drained:.1f} s after the fleet settled")
    return {"all_ready": True, "apply_to_ready_s": round(ready, 2), "creates_s": round(applied, 2),
            "events_posted_after_settled_s": None if drained is None else round(drained, 2),
            "cpu_s_to_ready": round(cpu, 2),
            "kube_requests_per_new": round(requests / n, 2), "kube_requests_new_by_verb": dict(sorted(counts.items()))}


def phase_idle(world: World, audit: Audit, seconds: float) -> dict[str, Any]:
    assert world.operator is not None
    n = len(world.bots)
    counter = ProviderCounts(world)
    before, text = counter.snapshot(), world.operator.metrics()
    syncs0 = metric_sum(text, "botsecret_syncs_total")
    reads0 = metric_sum(text, "botsecret_provider_requests_total", operation="read")
    audit.mark()
    time.sleep(seconds)  # the window measured: one refresh interval of an idle fleet
    text = world.operator.metrics()
    syncs = metric_sum(text, "botsecret_syncs_total") - syncs0
    reads = metric_sum(text, "botsecret_provider_requests_total", operation="read") - reads0
    seen = counter.delta(counter.snapshot(), before)
    counts = audit.since_mark()
    # The window is one refresh interval: in it, each BotSecret refreshes once on average (the
    # jitter puts a few more or fewer in one window), so the counts are per idle cycle.
    scale = 1.0
    distinct = world.distinct_remotes()
    per_provider = {p: {"requests": seen[p], "per_cycle": seen[p], "distinct": distinct[p]} for p in PROVIDERS}
    result = {
        "window_s": seconds, "full_syncs": int(syncs),
        "provider_requests": per_provider, "aws_batch_calls": seen["aws_batch"],
        "provider_reads_metric": int(reads), "provider_reads_metric_per_cycle": round(reads * scale, 1),
        "distinct_remote_secrets": sum(distinct.values()), "references": 3 * n,
        "kube_requests_by_verb": dict(sorted(counts.items())),
        "kube_requests_per_botsecret_per_cycle": round(sum(counts.values()) * scale / n, 2),
        "kube_writes": writes(counts),
        "plain_http_warning_events": sum(counts.values()) - without_plain_http_warnings(counts),
    }
    print(f"idle window {seconds:.0f} s: {int(syncs)} full syncs of {n}; provider requests "
          + ", ".join(f"{p} {v['requests']} ({v['per_cycle']} per cycle, {v['distinct']} distinct)"
                      for p, v in per_provider.items())
          + f"; operator metric: {int(reads)} reads; Kubernetes: {sum(counts.values())} requests "
          f"({result['kube_requests_per_botsecret_per_cycle']} per BotSecret per cycle), "
          f"{result['kube_writes']} writes")
    print(f"  by verb: {dict(sorted(counts.items()))}")
    return result


def phase_force_sync(world: World, audit: Audit, burst: int, timeout: float) -> dict[str, Any]:
    """Rotate the own key of ``burst`` BotSecrets, force-sync them all at once, and time each from
    its force-sync PATCH to the operator's template PATCH, both as the apiserver's audit log stamps
    them (a watch in this process lags behind under load; the audit log does not)."""
    chosen = world.bots[:: max(1, len(world.bots) // burst)][:burst]
    for bot in chosen:
        world.put_remote(bot.own, f"v1-{secrets.token_hex(8)}")
    offset = audit.position()
    kube = world.fresh_client()
    try:
        for bot in chosen:
            bs.force_sync(kube, bot.namespace, bot.name)
    finally:
        kube.api.close()
    keys = {(bot.namespace, bot.name) for bot in chosen}
    deadline = time.monotonic() + timeout
    while True:
        events = audit.events(offset)
        patched = {k: t for k, t in template_patches(events).items() if k in keys}
        if len(patched) >= len(keys) or time.monotonic() > deadline:
            break
        time.sleep(1.0)  # the interval of a poll that checks the figure itself, up to the deadline
    forced = {}
    for event in events:
        ref = event.get("objectRef") or {}
        key = (ref.get("namespace", ""), ref.get("name", ""))
        # The benchmark's own PATCH (the admin's, logged at Metadata level: no body to look into).
        if (event.get("verb") == "patch" and ref.get("resource") == "botsecrets" and not ref.get("subresource")
                and key in keys and (event.get("user") or {}).get("username") == ADMIN_USER):
            forced.setdefault(key, stamp(event))
    latencies = [(patched[k] - forced[k]) * 1000 for k in patched if k in forced]
    missing = sorted(f"{ns}/{name}" for ns, name in keys - set(patched))
    if missing:
        print(f"  not patched within {timeout:.0f} s: {', '.join(missing)}")
    result = {"burst": len(chosen), "patched": len(patched), "not_patched": missing, "timed": len(latencies),
              "p50_ms": round(nearest_rank(latencies, 0.5), 1), "p99_ms": round(nearest_rank(latencies, 0.99), 1),
              "max_ms": round(max(latencies), 1) if latencies else None}
    print(f"force-sync -> template patched, {len(chosen)} at once: p50 {result['p50_ms']} ms, "
          f"p99 {result['p99_ms']} ms ({len(patched)} of {len(chosen)} patched; audit-log times)")
    return result


def phase_restart(world: World, fleet: FleetWatch, audit: Audit, timeout: float) -> dict[str, Any]:
    assert world.operator is not None
    n = len(world.bots)
    world.operator.stop()
    audit.mark()
    restarted_wall, restarted = time.time(), time.monotonic()
    world.operator.start()
    rechecked_s = None
    deadline = restarted + timeout
    while time.monotonic() < deadline:
        stamps = samples(world.operator.metrics(), "botsecret_last_success_timestamp_seconds")
        if sum(1 for _, value in stamps if value >= restarted_wall) >= n:
            rechecked_s = time.monotonic() - restarted
            break
        time.sleep(1.0)  # the interval of a poll that checks the figure itself, up to the deadline
    time.sleep(3.0)  # a late template patch or write would show in this margin
    counts = audit.since_mark()
    restarts = len(template_patches(audit.events()))
    result = {"rechecked_s": round(rechecked_s, 1) if rechecked_s is not None else None,
              "template_patches": restarts, "secret_writes": writes(counts, "secrets"),
              "status_patches": writes(counts, "botsecrets/status"), "kube_requests": sum(counts.values()),
              "kube_requests_by_verb": dict(sorted(counts.items()))}
    print(f"operator restart: all re-checked after {result['rechecked_s']} s; template patches {restarts}, "
          f"Secret writes {result['secret_writes']}, status patches {result['status_patches']}, "
          f"Kubernetes requests {result['kube_requests']}")
    return result


def run(n: int, workdir: Path, refresh_s: int, burst: int, out: Path | None, *,
        operator_source: Path | None = None, label: str = "", profile: bool = False) -> dict[str, Any]:
    world = World(workdir)
    fleet: FleetWatch | None = None
    try:
        # Another tree's operator package (e.g. the code before a change, for a before/after pair).
        world.start({"PYTHONPATH": str(operator_source)} if operator_source else {})
        world.plan(n)
        world.seed()
        fleet = FleetWatch(world.fresh_client(), f"{LABEL}=true")
        fleet.start()
        audit = Audit(world.plane.audit_log)
        timeout = max(300.0, n * 0.6)
        figures: dict[str, Any] = {
            "n": n, "refresh_interval_s": refresh_s, "namespaces": len(world.namespaces),
            "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
                       f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}",
            "commit": _commit(), "operator_source": str(operator_source or "this tree"),
        }
        print(f"scale benchmark: N={n}, refresh {refresh_s} s, {len(world.namespaces)} namespace(s); "
              f"{figures['machine']}")
        profiler = Profiler(operator_pid(world), workdir / "profile.txt") if profile else None
        figures["apply"] = phase_apply(world, fleet, audit, f"{refresh_s}s", timeout)
        if figures["apply"].get("all_ready") is False:
            figures["peak_rss_mib"] = round(peak_rss_mib(operator_pid(world)), 1)
            if out is not None:
                from bench.scale_report import write_run
                write_run(out, figures, label)
            return figures
        figures["idle"] = phase_idle(world, audit, refresh_s)
        if profiler is not None:
            profiler.stop()
            figures["profile_apply_and_idle"] = [(f, round(share, 3)) for f, share in summary(profiler.out)]
            print("py-spy, apply and idle, share of samples on the stack:")
            for frame, share in figures["profile_apply_and_idle"]:
                print(f"  {share:6.1%}  {frame}")
        figures["force_sync"] = phase_force_sync(world, audit, min(burst, n), timeout=180)
        figures["restart"] = phase_restart(world, fleet, audit, timeout)
        figures["peak_rss_mib"] = round(peak_rss_mib(operator_pid(world)), 1)
        figures["load_after"] = round(os.getloadavg()[0], 1)
        print(f"operator peak RSS (after the restart, so of the restarted process): {figures['peak_rss_mib']} MiB")
        if out is not None:
            from bench.scale_report import write_run
            write_run(out, figures, label)
        return figures
    finally:
        if fleet is not None:
            fleet.stop()
        world.stop()


def _commit() -> str:
    head = Path(__file__).resolve().parents[1] / ".git"
    try:
        import subprocess

        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=head.parent, timeout=10).stdout.strip()
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="BotSecrets (default 100)")
    parser.add_argument("--refresh", type=int, default=0, help="refresh interval in s (default max(30, N/10))")
    parser.add_argument("--burst", type=int, default=50, help="BotSecrets force-synced at once (default 50)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    parser.add_argument("--operator-source", type=Path, default=None, metavar="DIR",
                        help="run the operator package found in DIR (put first on PYTHONPATH) instead of this tree's")
    parser.add_argument("--label", default="", help="suffix of the result's name, e.g. -before")
    parser.add_argument("--profile", action="store_true", help="py-spy over the operator during apply and idle")
    args = parser.parse_args()
    refresh = args.refresh or max(30, args.n // 10)

    def body(workdir: Path) -> bool:
        run(args.n, workdir, refresh, args.burst, args.out, operator_source=args.operator_source, label=args.label,
            profile=args.profile)
        return True

    return in_workdir("botsecret-scale-", args.keep, body)


if __name__ == "__main__":
    sys.exit(main())
