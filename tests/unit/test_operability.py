"""The CLI's pure parts: check rows and hints, render formats, the status report, rotate-now, metrics."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import dotenv
import pytest

from botsecret.cli import main
from botsecret.cycle import rotate_now
from botsecret.diagnose import check_rows, error_class, format_table
from botsecret.providers.base import AccessDenied, Fetched, NotFound, RemoteRef, Throttled, TlsError, Unavailable
from botsecret.render import RenderError, interpolated_keys, render
from botsecret.resolve import ResolvedSource, StoreError
from botsecret.spec import AwsSource, VaultSource, parse_spec
from botsecret.status_report import report
from botsecret.stores import StoreSpec
from botsecret.values import SecretValue
from tests.unit.test_rollout_advance import FakeWorkloads, result, status_after, step

# Everything a value may hold that a .env file makes hard: quotes, =, #, backslashes, escapes
# written out, unicode, CR, LF and a trailing newline.
AWKWARD = {
    "A_NEWLINE": "line one\nline two\n",
    "B_UNICODE": "clé ünïcødé 🔑 日本",
    "C_EQUALS": "a=b==c",
    "D_QUOTES": "it's \"quoted\" 'twice'",
    "E_BACKSLASH": "C:\\path\\n\\t not an escape \\\\",
    "F_CR": "carriage\r\nreturn\r",
    "G_HASH": "value # not a comment",
    "H_SPACES": "  padded  ",
    "I_EMPTY": "",
    "J_DOLLAR": "price $5",
}


def data(values: dict[str, str]) -> dict[str, SecretValue]:
    return {k: SecretValue(v.encode()) for k, v in values.items()}


def test_env_round_trips_through_python_dotenv_exactly() -> None:
    text = render(data(AWKWARD), "env", name="bot")
    assert text.endswith('"\n') and text.count("\n") == len(AWKWARD)  # one line per key, LF escaped
    assert dict(dotenv.dotenv_values(stream=io.StringIO(text))) == AWKWARD


def test_env_is_written_with_escapes_python_dotenv_decodes(tmp_path: Any) -> None:
    assert render(data({"K": 'a"b\\c\nd\re', "Z": "é"}), "env", name="bot") == 'K="a\\"b\\\\c\\nd\\re"\nZ="é"\n'
    # Read as a file (universal newlines), as load_dotenv does.
    path = tmp_path / ".env"
    path.write_bytes(render(data(AWKWARD), "env", name="bot").encode())
    assert dict(dotenv.dotenv_values(path)) == AWKWARD


def test_a_value_with_a_variable_reference_is_named_for_interpolate_false() -> None:
    values = {"T": "pre ${HOME} post", "U": "plain"}
    text = render(data(values), "env", name="bot")
    assert interpolated_keys(data(values)) == ["T"]
    assert dotenv.dotenv_values(stream=io.StringIO(text), interpolate=False)["T"] == values["T"]


def test_json_and_secret_formats_exact_bytes() -> None:
    values = {"b": "é\n", "a": 'x="y"'}
    assert render(data(values), "json", name="bot") == '{\n  "a": "x=\\"y\\"",\n  "b": "é\\n"\n}\n'
    binary, text = b"\xff\x00bin", "é\n".encode()
    raw = {"true": SecretValue(binary), "K": SecretValue(text)}
    manifest = render(raw, "secret", name="bot-env", namespace="bots", secret_type="Opaque")
    assert manifest == ('apiVersion: v1\nkind: Secret\nmetadata:\n  name: "bot-env"\n  namespace: "bots"\n'
                        'type: "Opaque"\ndata:\n'
                        f'  "K": {base64.b64encode(text).decode()}\n'
                        f'  "true": {base64.b64encode(binary).decode()}\n')
    import yaml

    assert {k: base64.b64decode(v) for k, v in yaml.safe_load(manifest)["data"].items()} == {"K": text, "true": binary}


def test_bytes_that_are_not_text_are_refused_by_name_in_env_and_json() -> None:
    for form in ("env", "json"):
        with pytest.raises(RenderError, match="key 'BIN' is not UTF-8 text") as refused:
            render({"BIN": SecretValue(b"\xff\xfe")}, form, name="bot")
        assert "\\xff" not in str(refused.value)


SPEC = parse_spec({"sources": [{"name": "aws", "storeRef": {"name": "a"}}, {"name": "vault", "storeRef": {"name": "v"}}],
                   "dataFrom": [{"remoteRef": {"name": "doc"}, "source": "aws"}],
                   "data": [{"key": "K1", "remoteRef": {"name": "one"}, "source": "aws"},
                            {"key": "K2", "remoteRef": {"name": "two", "property": "p"}, "source": "aws"},
                            {"key": "K3", "remoteRef": {"name": "three"}, "source": "vault"}]}, name="bot")


def resolved(region: str = "eu-west-1") -> dict[str, Any]:
    aws = StoreSpec("BotSecretStore", "a", "ns", AwsSource(region=region))
    vault = StoreSpec("BotSecretStore", "v", "ns", VaultSource(address="https://vault:8200"))
    return {"aws": ResolvedSource(SPEC.sources[0], 0, aws), "vault": ResolvedSource(SPEC.sources[1], 1, vault)}


def test_check_rows_name_the_class_and_a_hint_and_never_a_value() -> None:
    secret = "s3cr3t-value-never-shown"
    answers: Any = {
        "aws": {RemoteRef("doc"): Fetched(SecretValue(json.dumps({"X": secret, "Y": secret}).encode()), "v-doc"),
                RemoteRef("one"): NotFound("AWS secret 'one' not found"),
                RemoteRef("two"): Fetched(SecretValue(json.dumps({"q": secret}).encode()), "v-two")},
        "vault": {RemoteRef("three"): TlsError("Vault at https://vault:8200: TLS handshake failed")},
    }
    rows = check_rows(SPEC, resolved(), answers)
    assert [(r.key, r.remote, r.version, r.result) for r in rows] == [
        ("dataFrom[0] (2 keys)", "doc", "v-doc", "OK"), ("K1", "one", "", "NotFound"),
        ("K2", "two [p]", "v-two", "NotFound"), ("K3", "three", "", "TLS")]
    assert "'eu-west-1'" in rows[1].hint and "every key is set" in rows[1].hint
    assert "property 'p'" in rows[2].hint and "caBundle or caSecretRef" in rows[3].hint
    assert secret not in format_table(rows)


@pytest.mark.parametrize(("error", "expected"), [
    (NotFound("x"), "NotFound"), (AccessDenied("x"), "AccessDenied"), (TlsError("x"), "TLS"),
    (Throttled("x"), "Throttled"), (Unavailable("x"), "Unavailable"), (StoreError("StoreNotFound", "x"), "StoreNotFound"),
    (StoreError("StoreNotAllowed", "x"), "StoreNotAllowed"), (StoreError("StoreInvalid", "x"), "StoreInvalid"),
])
def test_error_classes(error: Any, expected: str) -> None:
    assert error_class(error, AwsSource(region="us-east-1")) == expected


def test_a_region_aws_does_not_have_is_the_wrong_region_whatever_the_endpoint_answered() -> None:
    assert error_class(NotFound("x"), AwsSource(region="eu-nowhere-1", endpoint="http://moto")) == "WrongRegion"
    assert error_class(NotFound("x"), AwsSource(region="cn-north-1")) == "NotFound"
    rows = check_rows(SPEC, resolved("eu-nowhere-1"), {"aws": dict.fromkeys([RemoteRef("doc"), RemoteRef("one"),
                                                                            RemoteRef("two")], NotFound("x"))})
    assert rows[0].result == "WrongRegion" and "'eu-nowhere-1' is not a Secrets Manager region" in rows[0].hint


def test_status_report_shows_keys_versions_and_rollouts() -> None:
    body = {"metadata": {"namespace": "bots", "name": "bot"}, "status": {
        "secretName": "bot-env", "syncedAt": "2026-12-01T10:00:00Z", "writtenAt": "2026-12-01T09:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "2 keys synced"},
                       {"type": "RolloutComplete", "status": "True", "reason": "RolloutComplete", "message": "ok"}],
        "keys": [{"key": "A", "source": "aws", "remoteName": "prod/a", "version": "v-1"}],
        "rollout": [{"kind": "Deployment", "name": "app", "phase": "Complete", "startedAt": "2026-12-01T09:00:01Z",
                     "finishedAt": "2026-12-01T09:00:09Z", "restartedFor": ["A"], "message": "done"}]}}
    text = report(body)
    assert "bots/bot: Ready=True (Synced) Secret bot-env" in text
    assert "last sync:  2026-12-01T10:00:00Z" in text
    assert [line.split() for line in text.splitlines() if "prod/a" in line] == [["A", "aws", "prod/a", "v-1"]]
    assert any(line.split()[:5] == ["Deployment/app", "Complete", "2026-12-01T09:00:01Z", "2026-12-01T09:00:09Z", "A"]
               for line in text.splitlines())
    assert "never" in report({"metadata": {"namespace": "n", "name": "b"}})


def test_rotate_now_holds_only_for_the_sync_that_handles_its_value() -> None:
    def body(force: str | None, rotate: str | None, handled: str | None) -> dict[str, Any]:
        notes = {k: v for k, v in {"botsecret.dev/force-sync": force, "botsecret.dev/rotate-now": rotate}.items() if v}
        return {"metadata": {"annotations": notes}, "status": {"forceSyncHandled": handled} if handled else {}}
    assert rotate_now(body("t1", "t1", None)) and rotate_now(body("t1", "t1", "t0"))
    assert not rotate_now(body("t1", "t1", "t1"))  # handled: later syncs debounce again
    assert not rotate_now(body("t2", "t1", "t1"))  # a plain force-sync after a rotate
    assert not rotate_now(body("t1", None, None))


def test_skip_debounce_restarts_at_once_and_only_once() -> None:
    store = FakeWorkloads()
    status = status_after(step(store, {}, result("v1", debounce="10m"), 0))
    waiting = step(store, status, result("v2", debounce="10m"), 1)
    assert store.restarts == [] and waiting.condition["reason"] == "Debouncing"
    from botsecret.rollout import advance
    from tests.unit.test_rollout_advance import KEY, at

    now = advance(store, KEY, status_after(waiting), result("v2", debounce="10m"), at(2), botsecret="bot",  # type: ignore[arg-type]
                  skip_debounce=True)
    assert len(store.restarts) == 1 and now.pending is None
    step(store, status_after(now), result("v2", debounce="10m"), 3)
    assert len(store.restarts) == 1


@pytest.mark.parametrize("command", ["check", "render", "status", "sync", "rotate", "run", "uninstall"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and f"usage: botsecret {command}" in capsys.readouterr().out


class BrokenPool:
    """A pool whose client build fails with something that is not a classified error (an
    unreachable apiserver answers urllib3's MaxRetryError, not an ApiException)."""

    def get(self, namespace: str, provider: Any, field: str) -> Any:
        raise RuntimeError("connection refused to https://apiserver, body: s3cr3t")

    def close(self) -> None:
        pass


def test_an_unexpected_error_is_a_row_of_its_own_not_a_traceback() -> None:
    from botsecret.reconcile import fetch_answers

    answers = fetch_answers(BrokenPool(), "ns", SPEC, resolved())  # type: ignore[arg-type]
    rows = check_rows(SPEC, resolved(), answers)
    assert {r.result for r in rows} == {"Unavailable"}
    assert all("unexpected RuntimeError" in r.hint and "s3cr3t" not in r.hint for r in rows)
