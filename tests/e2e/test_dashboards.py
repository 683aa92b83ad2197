"""The chart's Grafana dashboard and PrometheusRule, and the README's metric names, against what a
running operator actually exposes: a panel or an alert over a name the operator does not serve
would stay empty (or silent) for ever."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.cluster import REPO, ControlPlane
from tests.harness.operator_process import OperatorProcess

pytestmark = pytest.mark.operability

CHART = REPO / "charts" / "botsecret-operator"
METRIC = re.compile(r"\bbotsecret_[a-z0-9_]+")
SAMPLE_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                   "info": ("_info",), "gauge": ("",), "summary": ("", "_count", "_sum", "_created")}


def exposed(operator: OperatorProcess, *, histograms: bool = False) -> set[str]:
    """Every sample name the operator's /metrics declares, also for labelled series with no sample
    yet (a counter of rollout failures before the first failure); with ``histograms``, also the
    names of histograms themselves, as prose names them (no query can use them bare)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(operator.metrics()):
        names |= {family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))}
        if histograms and family.type == "histogram":
            names.add(family.name)
        names |= {s.name for s in family.samples}
    return names


def rendered(*values: str) -> list[dict[str, Any]]:
    helm = Path.home() / ".cache" / "botsecret" / "bin" / "helm"
    out = subprocess.run([str(helm), "template", "rel", str(CHART), "--namespace", "ops", "--kube-version", "1.29.0",
                          *[a for v in values for a in ("--set", v)]],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_dashboard_and_alerts_are_off_by_default_and_use_only_served_metrics(
    cluster: ControlPlane, operator: OperatorProcess,
) -> None:
    kinds = {d["kind"] for d in rendered()}
    assert "PrometheusRule" not in kinds and not any(
        d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard") for d in rendered())

    docs = rendered("monitoring.dashboard.enabled=true", "monitoring.prometheusRule.enabled=true")
    dashboard_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))
    assert dashboard_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboard_map["data"]["botsecret-operator.json"])
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"BotSecretNotReady", "BotSecretRolloutFailed", "BotSecretProviderErrorsRising",
                           "BotSecretChangeNotSynced"}
    assert alerts["BotSecretNotReady"]["for"] == "10m"

    served = exposed(operator)
    expressions = {f"panel {p['title']!r}": t["expr"] for p in dashboard["panels"] for t in p["targets"]}
    expressions |= {f"alert {name}": r["expr"] for name, r in alerts.items()}
    assert len(dashboard["panels"]) >= 10
    unknown = {where: sorted(set(METRIC.findall(expr)) - served) for where, expr in expressions.items()}
    assert all(METRIC.search(expr) for expr in expressions.values()), expressions
    assert {w: u for w, u in unknown.items() if u} == {}, sorted(served)


def test_every_metric_the_readme_names_is_served(operator: OperatorProcess) -> None:
    named = set(METRIC.findall((REPO / "README.md").read_text()))
    assert "botsecret_oldest_unsynced_change_age_seconds" in named
    assert len(named) >= 10, named
    assert sorted(named - exposed(operator, histograms=True)) == []
