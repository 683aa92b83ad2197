"""botsecret.cli: the name kopf knows the operator by.

kopf names an operator ``user@host/...`` from ``getpass.getuser()`` unless it is given an identity.
The image runs as UID 65532, which has no passwd entry, so ``getuser()`` raises: without an
identity of our own the operator crashed at start in every pod of the image.
"""

from __future__ import annotations

import getpass
from typing import Any

import kopf
import pytest
from kopf._core.engines import peering

from botsecret import cli
from botsecret.runtime import Runtime


def _no_passwd_entry() -> str:
    # What Python 3.11's getpass.getuser() raises for a UID without a passwd entry (pwd.getpwuid).
    raise KeyError("getpwuid(): uid not found: 65532")


@pytest.fixture
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """kopf.run replaced by what it does first with its arguments: settle the operator's identity."""
    seen: dict[str, Any] = {}

    def run(**kwargs: Any) -> None:
        identity = kwargs.get("identity")
        seen["identity"] = identity if identity is not None else peering.detect_own_id(manual=False)
        seen["kwargs"] = kwargs

    monkeypatch.setattr(getpass, "getuser", _no_passwd_entry)
    monkeypatch.setattr(kopf, "run", run)
    monkeypatch.setattr(kopf, "configure", lambda **_: None)
    monkeypatch.setattr(Runtime, "start", classmethod(lambda cls, settings: object()))
    monkeypatch.delenv("POD_ID", raising=False)
    return seen


def test_the_operator_is_named_after_its_pod_without_asking_for_a_user_name(
        kopf_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "botsecret-operator-7d9c-x2k4p")
    assert cli.main(["run", "--no-leader-election"]) == 0
    assert kopf_run["identity"] == "botsecret-operator-7d9c-x2k4p"


def test_without_a_pod_name_the_operator_is_named_after_its_host(
        kopf_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    monkeypatch.setenv("HOSTNAME", "bot-host-1")
    assert cli.main(["run", "--no-leader-election"]) == 0
    assert kopf_run["identity"] == "bot-host-1"


def test_the_identity_names_no_user_even_when_the_user_is_known(
        kopf_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    monkeypatch.setenv("POD_NAME", "op-0")
    assert cli.main(["run", "--no-leader-election"]) == 0
    assert "alice" not in kopf_run["identity"]
