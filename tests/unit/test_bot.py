"""The node's bot (hack/node/bot.c), built with gcc and run as a process: it prints digests of its
credentials and never a value; `bot --check` refuses a value with the rejected prefix."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "hack" / "node" / "bot.c"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    binary = tmp_path_factory.mktemp("bot") / "bot"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def first_lines(bot: Path, env: dict[str, str], count: int) -> list[str]:
    proc = subprocess.Popen([str(bot)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        return [proc.stdout.readline().rstrip("\n") for _ in range(count)]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0


def short(value: bytes) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()[:16]


def test_the_bot_prints_digests_of_keys_and_files_never_the_values(bot: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_bytes(b"file-secret-" * 700)  # longer than one read and one SHA-256 block
    env = {"A": "bsvleak-unit-a", "B": "", "BOT_KEYS": "A,B,MISSING", "BOT_FILES": f"{secret_file}:/nonexistent"}
    lines = first_lines(bot, env, 6)
    assert lines == ["bot: round 1", f"A {short(b'bsvleak-unit-a')}", f"B {short(b'')}", "MISSING absent",
                     f"{secret_file} {short(secret_file.read_bytes())}", "/nonexistent absent"]
    assert not any("bsvleak" in line or "file-secret" in line for line in lines)


def test_the_bot_prints_again_on_sighup(bot: Path) -> None:
    proc = subprocess.Popen([str(bot)], env={"A": "x", "BOT_KEYS": "A"}, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "bot: round 1\n"
        proc.stdout.readline()
        proc.send_signal(signal.SIGHUP)
        assert proc.stdout.readline() == "bot: round 2\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0


def test_the_bot_prints_again_every_interval(bot: Path) -> None:
    lines = first_lines(bot, {"A": "x", "BOT_KEYS": "A", "BOT_INTERVAL": "1"}, 4)
    assert lines[2:] == ["bot: round 2", f"A {short(b'x')}"]


@pytest.mark.parametrize(("value", "code"), [("bad-token", 1), ("good-token", 0), (None, 0)])
def test_check_refuses_a_value_with_the_rejected_prefix(bot: Path, value: str | None, code: int) -> None:
    env = {"BOT_CHECK_KEY": "TOKEN", "BOT_REJECT_PREFIX": "bad-"} | ({"TOKEN": value} if value is not None else {})
    result = subprocess.run([str(bot), "--check"], env=env, capture_output=True, text=True)
    assert result.returncode == code
    assert "bad-token" not in result.stderr + result.stdout
