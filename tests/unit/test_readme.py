"""README's examples are what the operator accepts: every YAML block parsed by the operator's own
parsers (a field renamed in the code and not in the README fails here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from botsecret.spec import parse_spec
from botsecret.stores import parse_store

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


KINDS = ("BotSecret", "BotSecretStore", "ClusterBotSecretStore")


def documents() -> list[dict[str, Any]]:
    """Whole BotSecrets and stores (fragments, such as a pod template's annotations, are not)."""
    return [d for block in BLOCK.findall(README.read_text()) for d in yaml.safe_load_all(block)
            if isinstance(d, dict) and d.get("kind") in KINDS]


def test_the_field_reference_has_aws_gcp_and_vault_examples_and_the_six_keys_as_one_json_secret() -> None:
    text = README.read_text()
    reference = text[text.index("## Field reference"):text.index("## How rotation and restart work")]
    found = [d for block in BLOCK.findall(reference) for d in yaml.safe_load_all(block) if d]
    providers = {next(iter(d["spec"]["provider"])) for d in found if d["kind"] == "BotSecretStore"}
    assert providers == {"aws", "gcp", "vault"}
    assert any(d["kind"] == "BotSecret" and d["spec"].get("dataFrom") for d in found)
    for key in ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_SECRET", "X_BEARER_TOKEN", "OPENAI_API_KEY"):
        assert key in reference


def test_quickstart_is_exactly_make_demo_and_make_test_before_anything_else() -> None:
    text = README.read_text()
    first_section = text.index("\n## ")
    assert text[first_section:].startswith("\n## Quickstart\n")
    quickstart = text[first_section:text.index("\n## ", first_section + 1)]
    commands = re.search(r"```console\n(.*?)```", quickstart, re.S)
    assert commands is not None and commands.group(1) == "make demo\nmake test\n"
    assert text.index("\n## Install\n") < text.index("\n## Field reference\n")


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}")
def test_every_readme_example_parses(doc: dict[str, Any]) -> None:
    if doc["kind"] == "BotSecret":
        parse_spec(doc["spec"], name=doc["metadata"]["name"])
    else:
        parse_store(doc["kind"], doc)


def test_the_readme_has_examples_to_parse() -> None:
    assert len(documents()) >= 8
