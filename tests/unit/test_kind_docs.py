"""docs/kind.md shows users the commands that .github/workflows/ci.yml runs, not a copy that drifts:
every command of its shell blocks is one of the e2e-kind job's (or one of its environment's
settings), and every kind, docker, kubectl and helm command of that job is on the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
DOCS = REPO / "docs" / "kind.md"
TOOLS = ("kind ", "docker ", "kubectl ", "helm ")


def commands(script: str) -> list[str]:
    """One line per command: continuations joined, blanks and comments dropped, spaces squeezed."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def docs_commands(text: str) -> list[str]:
    return [c for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S) for c in commands(block)]


def job(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(workflow["jobs"][name])


def job_commands(workflow: dict[str, Any], name: str) -> list[str]:
    return [c for step in job(workflow, name)["steps"] if "run" in step for c in commands(step["run"])]


def mismatches(docs: str, workflow: dict[str, Any]) -> list[str]:
    ran = job_commands(workflow, "e2e-kind")
    env = {k: str(v) for k, v in job(workflow, "e2e-kind").get("env", {}).items()}
    problems = []
    for command in docs_commands(docs):
        setting = re.fullmatch(r"([A-Z_]+)=(\S+)", command)
        if setting:
            if env.get(setting[1]) != setting[2]:
                problems.append(f"docs set {command}; the workflow's job sets {setting[1]}={env.get(setting[1])}")
        elif not any(command in line for line in ran):
            problems.append(f"docs run a command the workflow does not: {command}")
    shown = docs_commands(docs)
    problems += [f"the workflow runs a command the docs do not show: {line}"
                 for line in ran if line.startswith(TOOLS) and line not in shown]
    return problems


def test_the_kind_walkthrough_runs_the_workflows_commands() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert docs_commands(DOCS.read_text()), "no shell blocks found in docs/kind.md"
    assert mismatches(DOCS.read_text(), workflow) == []


def test_a_drifted_command_is_found_both_ways() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    docs = DOCS.read_text()
    drifted = docs.replace("--wait 120s", "--wait 60s", 1)
    assert mismatches(drifted, workflow) == [
        'docs run a command the workflow does not: kind create cluster --name "$KIND_CLUSTER" --wait 60s',
        'the workflow runs a command the docs do not show: kind create cluster --name "$KIND_CLUSTER" --wait 120s',
    ]
    assert mismatches(docs.replace("RELEASE=botsecret-operator", "RELEASE=bso", 1), workflow) == [
        "docs set RELEASE=bso; the workflow's job sets RELEASE=botsecret-operator"]
