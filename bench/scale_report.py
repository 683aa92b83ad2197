"""Fold scale runs into ``summary.json`` (the latest run per N, small) and ``scale.png`` (figures
against N). matplotlib is an optional dependency (``pip install -e '.[bench]'``); without it the
plot is skipped, saying so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY_KEYS = ("n", "when", "machine", "commit", "refresh_interval_s", "peak_rss_mib")


def _small(figures: dict[str, Any]) -> dict[str, Any]:
    apply, idle, force, restart = (figures.get(k) or {} for k in ("apply", "idle", "force_sync", "restart"))
    return {
        **{k: figures.get(k) for k in SUMMARY_KEYS},
        "apply_to_ready_s": apply.get("apply_to_ready_s"), "cpu_s_to_ready": apply.get("cpu_s_to_ready"),
        "kube_requests_per_new": apply.get("kube_requests_per_new"),
        "idle_provider_requests_per_cycle": sum(v["per_cycle"] for v in (idle.get("provider_requests") or {}).values()),
        "idle_distinct_remote_secrets": idle.get("distinct_remote_secrets"),
        "idle_aws_batch_calls": idle.get("aws_batch_calls"),
        "idle_kube_requests_per_botsecret": idle.get("kube_requests_per_botsecret_per_cycle"),
        "idle_kube_writes": idle.get("kube_writes"), "idle_kube_by_verb": idle.get("kube_requests_by_verb"),
        "force_sync_p50_ms": force.get("p50_ms"), "force_sync_p99_ms": force.get("p99_ms"),
        "force_sync_burst": force.get("burst"),
        "restart_template_patches": restart.get("template_patches"),
        "restart_secret_writes": restart.get("secret_writes"),
        "restart_status_patches": restart.get("status_patches"), "restart_rechecked_s": restart.get("rechecked_s"),
    }


def write_run(out: Path, figures: dict[str, Any], label: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{figures['n']}{label}.json").write_text(json.dumps(figures, indent=1, sort_keys=True))
    summary_path = out / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.setdefault("runs", {})[f"{figures['n']}{label}"] = _small(figures)
    summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True))
    plot(summary, out / "scale.png")


def plot(summary: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install -e '.[bench]'); no plot")
        return
    series: dict[str, list[dict[str, Any]]] = {}
    for key, run in summary.get("runs", {}).items():
        label = key[len(str(run["n"])):].lstrip("-") or "latest"
        series.setdefault(label, []).append(run)
    if not series:
        return
    panels = [
        ("apply -> all Ready (s)", "apply_to_ready_s"), ("operator CPU to Ready (s)", "cpu_s_to_ready"),
        ("peak RSS (MiB)", "peak_rss_mib"), ("provider requests per idle cycle", "idle_provider_requests_per_cycle"),
        ("Kubernetes requests per BotSecret per idle cycle", "idle_kube_requests_per_botsecret"),
        ("force-sync -> patch p99 (ms)", "force_sync_p99_ms"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), dpi=70)
    runs = sorted(max(series.values(), key=len), key=lambda r: r["n"])  # the longest series
    for ax, (title, key) in zip(axes.flat, panels, strict=True):
        for label, found in sorted(series.items()):
            found = sorted(found, key=lambda r: r["n"])
            ax.plot([r["n"] for r in found], [r.get(key) or 0 for r in found], marker="o", label=label)
        if key == "idle_provider_requests_per_cycle":
            ax.plot([r["n"] for r in runs], [r.get("idle_distinct_remote_secrets") or 0 for r in runs],
                    linestyle="--", label="distinct remote secrets")
        ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("BotSecrets (N)", fontsize=8)
    fig.suptitle(f"botsecret-operator scale benchmark ({runs[-1]['machine']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
