"""Every end-to-end test that needs what only the harness has carries the marker that skips it
when the suite runs against a cluster and an operator it did not start (tests/harness/external.py).

Read from the source, not run: a test needs the harness's operator process when it (or a helper
or fixture it uses, transitively) restarts, stops, kills or re-configures ``operator``; its metrics
when it reads ``operator.metric(s)``; the control plane's processes when it reads the audit log or
stops the apiserver or etcd through ``cluster``.
"""

from __future__ import annotations

import ast
import base64
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.harness.external import NEEDS, ExistingCluster, missing

TESTS = Path(__file__).resolve().parents[1]
HARNESS_MODULES = sorted((TESTS / "harness").glob("*.py"))
E2E_MODULES = sorted((TESTS / "e2e").glob("test_*.py"))
PLUGINS = {"conftest", "cluster_fixtures", "gcp_fixtures", "chaos", "external"}

OPERATOR_PROCESS = {"start", "stop", "restart", "kill", "proc", "env", "log", "kubeconfig", "output",
                    "health_port", "metrics_port", "await_leadership"}
OPERATOR_METRICS = {"metric", "metrics"}
CLUSTER_PROCESSES = {"audit_events", "restart_apiserver", "etcd_healthy", "pause_etcd", "resume_etcd",
                     "bin_dir", "workdir", "nobody_kubeconfig", "ca", "stop", "start", "apiserver", "etcd"}
# Names whose use means the harness's own processes, wherever they are used.
NAMED = {"OperatorProcess": "operator_process", "deploy": "operator_process", "AMBIENT_NAMESPACE": "operator_process",
         "restarted_with": "operator_process", "ControlPlane": "control_plane", "binaries": "control_plane"}
# The fixtures the switches replace: using them needs nothing; what a test does with them may.
SWITCHED = {"operator", "cluster", "kube", "namespace", "artifacts"}


@dataclass
class Unit:
    """A module-level function or class: what it needs itself, and what it refers to."""

    module: str
    node: ast.FunctionDef | ast.ClassDef
    needs: set[str] = field(default_factory=set)
    refs: set[tuple[str, str]] = field(default_factory=set)  # (module, name)
    fixtures: set[str] = field(default_factory=set)


def _module_name(path: Path) -> str:
    return path.stem


def _imports(tree: ast.Module) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Names imported from the harness: name -> (module, name); aliases of modules -> module."""
    names: dict[str, tuple[str, str]] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            for alias in node.names:
                if parts[-1] == "harness" or node.module == "tests.harness":
                    modules[alias.asname or alias.name] = alias.name
                elif node.level or parts[:2] == ["tests", "harness"] or parts[:2] == ["tests", "e2e"]:
                    names[alias.asname or alias.name] = (parts[-1], alias.name)
    return names, modules


def _is_fixture(node: ast.FunctionDef) -> bool:
    return any("fixture" in ast.unparse(d) for d in node.decorator_list)


def _scan(path: Path, units: dict[tuple[str, str], Unit], fixtures: dict[str, list[Unit]]) -> None:
    module = _module_name(path)
    tree = ast.parse(path.read_text())
    imported, modules = _imports(tree)
    local = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for top in tree.body:
        if not isinstance(top, (ast.FunctionDef, ast.ClassDef)):
            continue
        unit = Unit(module, top)
        units[(module, top.name)] = unit
        if isinstance(top, ast.FunctionDef):
            unit.fixtures = {a.arg for a in top.args.args + top.args.kwonlyargs} - SWITCHED
            if _is_fixture(top) and top.name not in SWITCHED:
                fixtures.setdefault(top.name, []).append(unit)
        for node in ast.walk(top):  # type annotations name classes, they use nothing
            if isinstance(node, ast.arg):
                node.annotation = None
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.returns = None
            elif isinstance(node, ast.AnnAssign):
                node.annotation = ast.Constant(None)
        for node in ast.walk(top):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                owner, attr = node.value.id, node.attr
                if owner == "operator" and attr in OPERATOR_PROCESS:
                    unit.needs.add("operator_process")
                elif owner == "operator" and attr in OPERATOR_METRICS:
                    unit.needs.add("operator_metrics")
                elif owner == "cluster" and attr in CLUSTER_PROCESSES:
                    unit.needs.add("control_plane")
                elif owner in modules:
                    unit.refs.add((modules[owner], attr))
            elif isinstance(node, ast.Name):
                if node.id in NAMED:
                    unit.needs.add(NAMED[node.id])
                if node.id in local and node.id != top.name:
                    unit.refs.add((module, node.id))
                elif node.id in imported:
                    unit.refs.add(imported[node.id])


def _marks(decorators: list[ast.expr]) -> set[str]:
    found = set()
    for d in decorators:
        text = ast.unparse(d)
        for marker in NEEDS:
            if f"pytest.mark.{marker}" in text:
                found.add(marker)
    return found


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return {m for m in NEEDS if f"pytest.mark.{m}" in ast.unparse(node.value)}
    return set()


def needs_of_every_unit() -> dict[tuple[str, str], Unit]:
    units: dict[tuple[str, str], Unit] = {}
    fixtures: dict[str, list[Unit]] = {}
    for path in [TESTS / "conftest.py", *HARNESS_MODULES, *E2E_MODULES]:
        _scan(path, units, fixtures)
    changed = True
    while changed:  # to a fixed point: helpers of helpers, fixtures of fixtures
        changed = False
        for unit in units.values():
            before = len(unit.needs)
            for ref in unit.refs:
                if ref in units:
                    unit.needs |= units[ref].needs
            for name in unit.fixtures:
                for fixture in fixtures.get(name, []):
                    if fixture.module == unit.module or fixture.module in PLUGINS:
                        unit.needs |= fixture.needs
            changed |= len(unit.needs) != before
    return units


def unmarked_tests() -> list[str]:
    units = needs_of_every_unit()
    problems = []
    for path in E2E_MODULES:
        tree = ast.parse(path.read_text())
        module_marks = _module_marks(tree)
        for top in tree.body:
            if isinstance(top, ast.FunctionDef) and top.name.startswith("test_"):
                missing = units[(path.stem, top.name)].needs - module_marks - _marks(top.decorator_list)
                problems += [f"{path.name}::{top.name} needs @pytest.mark.{m}" for m in sorted(missing)]
    return problems


def test_every_test_that_needs_the_harness_processes_is_marked() -> None:
    assert unmarked_tests() == []


def test_the_check_sees_a_helper_that_restarts_the_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: an unmarked test that restarts the operator through a helper is found."""
    import tests.unit.test_external_markers as me

    planted = tmp_path / "test_planted.py"
    planted.write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.sync\n"
        "def _bounce(operator):\n    operator.restart()\n"
        "def test_bounces(operator, kube):\n    _bounce(operator)\n"
        "@pytest.mark.operator_process\n"
        "def test_bounces_marked(operator):\n    _bounce(operator)\n"
        "def test_audits(cluster):\n    cluster.audit_events()\n"
        "def test_reads_metrics(operator):\n    assert operator.metric('x') == 0\n"
        "def test_only_uses_the_api(operator, kube, cluster):\n    kube.core.list_namespace(); cluster.admin_kubeconfig\n"
    )
    monkeypatch.setattr(me, "E2E_MODULES", [planted])
    assert unmarked_tests() == [
        "test_planted.py::test_bounces needs @pytest.mark.operator_process",
        "test_planted.py::test_audits needs @pytest.mark.control_plane",
        "test_planted.py::test_reads_metrics needs @pytest.mark.operator_metrics",
    ]


def test_the_markers_are_registered() -> None:
    import tomllib

    registered = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert {m.split(":")[0] for m in registered} >= set(NEEDS)


def test_the_switches_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOTSECRET_KUBECONFIG", "BOTSECRET_OPERATOR", "BOTSECRET_OPERATOR_METRICS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert not any(missing(m) for m in NEEDS)
    monkeypatch.setenv("BOTSECRET_KUBECONFIG", "/somewhere/kubeconfig")
    monkeypatch.setenv("BOTSECRET_OPERATOR", "external")
    assert {m for m in NEEDS if missing(m)} == set(NEEDS)
    monkeypatch.setenv("BOTSECRET_OPERATOR_METRICS_URL", "http://127.0.0.1:9102/metrics")
    assert {m for m in NEEDS if missing(m)} == {"control_plane", "operator_process"}


def test_an_existing_clusters_server_and_ca_come_from_its_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "kind-ci",
        "contexts": [{"name": "other", "context": {"cluster": "x"}}, {"name": "kind-ci", "context": {"cluster": "kind-ci"}}],
        "clusters": [{"name": "kind-ci", "cluster": {"server": "https://127.0.0.1:41235",
                                                     "certificate-authority-data": base64.b64encode(b"PEM").decode()}}],
    }))
    cluster = ExistingCluster.from_kubeconfig(kubeconfig, tmp_path / "cluster")
    assert (cluster.server, cluster.ca_path.read_bytes(), cluster.admin_kubeconfig) == (
        "https://127.0.0.1:41235", b"PEM", kubeconfig)
