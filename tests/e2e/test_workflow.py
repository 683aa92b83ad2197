"""The GitHub Actions workflow users get (.github/workflows/ci.yml) is valid: actionlint, built here
from its Go module (hack/build-actionlint.sh), checks its syntax, its expressions, the inputs of the
actions it uses and, with shellcheck, every ``run:`` script. Mistakes planted in a copy prove that
the check can fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain to build actionlint with")
    built = subprocess.run(["nice", "-n", "10", "bash", str(REPO / "hack" / "build-actionlint.sh")],
                           capture_output=True, text=True, timeout=1800, check=False)
    assert built.returncode == 0, built.stderr
    return Path(built.stdout.strip().splitlines()[-1])


def lint(actionlint: Path, workflow: Path) -> subprocess.CompletedProcess[str]:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck missing: hack/build-actionlint.sh installs it (Debian package)"
    return subprocess.run([str(actionlint), "-no-color", "-shellcheck", shellcheck, str(workflow)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_workflow_passes_actionlint_with_shellcheck(actionlint: Path) -> None:
    done = lint(actionlint, WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    version = subprocess.run([str(actionlint), "-version"], capture_output=True, text=True, check=True).stdout
    print(f"actionlint {version.splitlines()[0]}: {WORKFLOW.relative_to(REPO)} clean")


@pytest.mark.parametrize(("original", "planted", "complaint"), [
    # A misspelt key: the job would have no runner.
    ("    runs-on: ubuntu-24.04\n    timeout-minutes: 15\n", "    runs_on: ubuntu-24.04\n    timeout-minutes: 15\n",
     'unexpected key "runs_on"'),
    # An expression naming a context the job does not have.
    ('--wait 120s', '--wait ${{ matrix.wait }}', 'property "wait" is not defined'),
    # A shell mistake in a run: script, found by shellcheck.
    ('kind load docker-image "$IMAGE"', 'kind load docker-image $IMAGE', "SC2086"),
    # An input the action does not have (actionlint knows the inputs of the common actions).
    ('python-version: "3.11"', 'python_version: "3.11"', 'input "python_version" is not defined'),
])
def test_a_planted_mistake_fails_the_check(actionlint: Path, tmp_path: Path, original: str, planted: str,
                                           complaint: str) -> None:
    text = WORKFLOW.read_text()
    assert original in text, f"the workflow no longer has {original!r}: update the planted mistake"
    copy = tmp_path / "ci.yml"
    copy.write_text(text.replace(original, planted, 1))
    done = lint(actionlint, copy)
    assert done.returncode != 0 and complaint in done.stdout, done.stdout + done.stderr
