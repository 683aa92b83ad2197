"""botsecret.leader and botsecret.standby: the pure rules of Lease expiry, and the standby's liveness."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from botsecret.cli import main
from botsecret.leader import LeaseConfig, Observed, default_identity
from botsecret.standby import serving_liveness


def test_a_lease_is_held_by_another_until_its_record_stood_still_for_the_duration() -> None:
    seen = Observed()
    seen.see(("other", "t1", 15, 0), now=100.0)
    assert seen.held_by_other("other", "me", 15.0, now=114.9)
    assert not seen.held_by_other("other", "me", 15.0, now=115.1)
    # A renewal (a new record) starts the wait again, on this process's own clock.
    seen.see(("other", "t2", 15, 0), now=110.0)
    assert seen.held_by_other("other", "me", 15.0, now=124.0)
    # The same record seen again does not.
    seen.see(("other", "t2", 15, 0), now=120.0)
    assert not seen.held_by_other("other", "me", 15.0, now=125.1)


def test_a_lease_of_nobody_or_of_this_process_is_free_to_take() -> None:
    seen = Observed()
    seen.see((None, "t", 1, 3), now=0.0)
    assert not seen.held_by_other(None, "me", 15.0, now=0.0)
    assert not seen.held_by_other("", "me", 15.0, now=0.0)
    assert not seen.held_by_other("me", "me", 15.0, now=0.0)


def test_a_holder_gives_up_well_before_others_may_take_over() -> None:
    config = LeaseConfig(namespace="ops")
    assert config.name == "botsecret-operator" and config.duration == 15.0
    assert config.retry_period < config.renew_deadline < config.duration
    assert config.identity != LeaseConfig(namespace="ops").identity, "every process gets its own identity"


def test_the_identity_is_the_pod_name_with_a_random_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "botsecret-operator-7d9f-abcde")
    assert default_identity().startswith("botsecret-operator-7d9f-abcde_")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_standby_answers_liveness_and_frees_the_port_afterwards() -> None:
    port = _free_port()
    with serving_liveness(f"http://127.0.0.1:{port}/healthz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as other:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert other.value.code == 404
    with socket.socket() as s:  # kopf binds the same port next
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_run_help_names_the_leader_election_switches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for word in ("--no-leader-election", "BOTSECRET_LEADER_ELECTION", "--lease-duration", "POD_NAME"):
        assert word in out, word
