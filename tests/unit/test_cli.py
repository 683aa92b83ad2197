"""botsecret.cli: what the command sets up before kopf runs."""

from __future__ import annotations

import logging

import pytest

from botsecret.cli import CHATTY_LOGGERS, main, quiet_chatty_libraries


def test_sdk_loggers_stay_quiet_even_when_the_operator_is_verbose() -> None:
    logging.getLogger().setLevel(logging.DEBUG)  # what kopf.configure(verbose=True) does
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    quiet_chatty_libraries()
    for name in ("botocore", "botocore.parsers", "hvac", "urllib3.connectionpool", "kubernetes.client.rest"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    assert "botocore" in CHATTY_LOGGERS


def test_version_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and "botsecret" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(["frobnicate"])
    assert bad.value.code == 2


def test_run_help_names_the_operator_namespace_flag_and_its_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for word in ("--operator-namespace", "BOTSECRET_NAMESPACE", "POD_NAMESPACE", "botsecret-system"):
        assert word in out, word


def test_uninstall_is_a_command_that_needs_yes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["uninstall", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--yes" in out and "deletionPolicy" in out
