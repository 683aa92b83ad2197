"""botsecret.status: status_patch, ready_condition and events_for, over SyncResults built by hand."""

from __future__ import annotations

from typing import Any

import pytest

from botsecret.assemble import KeyOrigin
from botsecret.reconcile import SyncResult, keys_synced
from botsecret.spec import parse_spec
from botsecret.status import events_for, log_line, ready_condition, status_patch

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T01:00:00Z"
T2 = "2026-01-01T02:00:00Z"

ORIGINS = (KeyOrigin("A", "aws", "prod/a", "v1"), KeyOrigin("B", "vault", "bot/b", "3"))


def synced(**overrides: Any) -> SyncResult:
    fields: dict[str, Any] = {
        "ready": True, "reason": "Synced", "message": "2 keys synced to Secret 'bot'", "secret_name": "bot",
        "origins": ORIGINS, "data_hmac": "hmac-sha256:" + "ab" * 32, "written": True, "changed_keys": ("A", "B"),
    }
    fields.update(overrides)
    return SyncResult(**fields)


def failed(reason: str = "ProviderError", message: str = "source 'aws': throttled", **overrides: Any) -> SyncResult:
    return SyncResult(ready=False, reason=reason, message=message, secret_name="bot", **overrides)


def applied(current: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    """The status after a JSON merge patch (top-level keys; lists replace)."""
    return {**current, **(patch or {})}


# ready_condition


def test_ready_condition_for_a_fresh_object() -> None:
    condition = ready_condition(synced(), generation=3, now=T0, previous=None)
    assert condition == {"type": "Ready", "status": "True", "reason": "Synced",
                         "message": "2 keys synced to Secret 'bot'", "observedGeneration": 3,
                         "lastTransitionTime": T0}


def test_last_transition_time_preserved_when_status_and_reason_unchanged() -> None:
    previous = ready_condition(synced(), generation=1, now=T0, previous=None)
    later = ready_condition(synced(message="3 keys synced"), generation=2, now=T1, previous=previous)
    assert later["lastTransitionTime"] == T0
    assert later["message"] == "3 keys synced"
    assert later["observedGeneration"] == 2


def test_last_transition_time_moves_on_status_change() -> None:
    previous = ready_condition(synced(), generation=1, now=T0, previous=None)
    now_failed = ready_condition(failed(), generation=1, now=T1, previous=previous)
    assert now_failed["status"] == "False"
    assert now_failed["lastTransitionTime"] == T1


def test_last_transition_time_moves_on_reason_change() -> None:
    previous = ready_condition(failed("ProviderError"), generation=1, now=T0, previous=None)
    other = ready_condition(failed("AccessDenied", "denied"), generation=1, now=T1, previous=previous)
    assert other["lastTransitionTime"] == T1
    same = ready_condition(failed("ProviderError", "still throttled"), generation=1, now=T2, previous=previous)
    assert same["lastTransitionTime"] == T0


def test_previous_without_time_falls_back_to_now() -> None:
    condition = ready_condition(synced(), generation=1, now=T1,
                                previous={"type": "Ready", "status": "True", "reason": "Synced"})
    assert condition["lastTransitionTime"] == T1


# status_patch


def test_first_patch_on_success() -> None:
    patch = status_patch(synced(), current={}, generation=4, now=T0, force_sync=None)
    assert patch is not None
    assert patch["observedGeneration"] == 4
    assert patch["secretName"] == "bot"
    assert patch["dataHMAC"] == "hmac-sha256:" + "ab" * 32
    assert patch["syncedAt"] == T0
    assert patch["keys"] == [
        {"key": "A", "source": "aws", "remoteName": "prod/a", "version": "v1"},
        {"key": "B", "source": "vault", "remoteName": "bot/b", "version": "3"},
    ]
    ready = [c for c in patch["conditions"] if c["type"] == "Ready"]
    assert len(ready) == 1
    assert ready[0]["status"] == "True"
    assert ready[0]["lastTransitionTime"] == T0
    assert "forceSyncHandled" not in patch


def test_keys_never_carry_values() -> None:
    patch = status_patch(synced(data={}), current={}, generation=1, now=T0, force_sync=None)
    assert patch is not None
    for entry in patch["keys"]:
        assert set(entry) == {"key", "source", "remoteName", "version"}


def test_nothing_but_time_changed_gives_only_the_time() -> None:
    first = status_patch(synced(), current={}, generation=1, now=T0, force_sync=None)
    current = applied({}, first)
    # A write that changed nothing in status (same data, same origins, drift restored) moves the times.
    assert status_patch(synced(), current=current, generation=1, now=T1, force_sync=None) == {
        "syncedAt": T1, "writtenAt": T1}
    # An idle refresh has nothing to say (issue 12: no status patch per refresh).
    assert status_patch(synced(written=False, changed_keys=()), current=current, generation=1, now=T2,
                        force_sync=None) is None
    # Within the same second there is nothing to say at all.
    assert status_patch(synced(written=False, changed_keys=()), current=current, generation=1, now=T0,
                        force_sync=None) is None


def test_failure_repeated_gives_none_and_keeps_time() -> None:
    first = status_patch(failed(), current={}, generation=1, now=T0, force_sync=None)
    assert first is not None
    assert "dataHMAC" not in first and "keys" not in first and "syncedAt" not in first
    current = applied({}, first)
    assert status_patch(failed(), current=current, generation=1, now=T1, force_sync=None) is None
    # A new message alone is a change, but the transition time stays.
    changed = status_patch(failed(message="source 'aws': timed out"), current=current, generation=1, now=T1,
                           force_sync=None)
    assert changed is not None
    ready = next(c for c in changed["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == T0
    assert ready["message"] == "source 'aws': timed out"


def test_generation_change_is_a_change() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    patch = status_patch(synced(), current=current, generation=2, now=T1, force_sync=None)
    assert patch is not None
    assert patch["observedGeneration"] == 2
    assert next(c for c in patch["conditions"] if c["type"] == "Ready")["lastTransitionTime"] == T0
    assert patch["syncedAt"] == T1


def test_new_version_changes_keys_and_hmac() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    rotated = synced(origins=(KeyOrigin("A", "aws", "prod/a", "v2"), ORIGINS[1]), data_hmac="hmac-sha256:" + "cd" * 32)
    patch = status_patch(rotated, current=current, generation=1, now=T1, force_sync=None)
    assert patch is not None
    assert patch["keys"][0]["version"] == "v2"
    assert patch["dataHMAC"] == "hmac-sha256:" + "cd" * 32
    assert patch["syncedAt"] == T1


def test_force_sync_is_acknowledged_once() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    patch = status_patch(synced(), current=current, generation=1, now=T1, force_sync="1700000000")
    assert patch is not None
    assert patch["forceSyncHandled"] == "1700000000"
    current = applied(current, patch)
    again = status_patch(synced(), current=current, generation=1, now=T2, force_sync="1700000000")
    assert again is not None and "forceSyncHandled" not in again


def test_failure_after_success_keeps_last_good_hmac_and_keys() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    patch = status_patch(failed(), current=current, generation=1, now=T1, force_sync=None)
    assert patch is not None
    # A merge patch without these fields leaves them as they were.
    assert "dataHMAC" not in patch and "keys" not in patch and "syncedAt" not in patch
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("False", "ProviderError", T1)


def test_invalid_spec_has_no_secret_name() -> None:
    result = SyncResult(False, "InvalidSpec", "spec.data[0].key: 'a/b' is not a valid Secret key")
    patch = status_patch(result, current={}, generation=1, now=T0, force_sync=None)
    assert patch is not None
    assert "secretName" not in patch


# events_for


def test_write_gives_one_normal_event_naming_changed_keys() -> None:
    assert events_for(synced(), previous_ready=None) == [
        ("Normal", "Synced", "Secret 'bot' written; changed: A, B")]


def test_metadata_only_write() -> None:
    events = events_for(synced(changed_keys=()), previous_ready=None)
    assert events == [("Normal", "Synced", "Secret 'bot' written; changed: metadata")]


def test_no_write_no_event() -> None:
    assert events_for(synced(written=False, changed_keys=()), previous_ready={"status": "True", "reason": "Synced"}) == []


def test_warning_on_turning_unready() -> None:
    events = events_for(failed(), previous_ready={"status": "True", "reason": "Synced"})
    assert events == [("Warning", "ProviderError", "source 'aws': throttled")]


def test_warning_when_first_seen_unready() -> None:
    assert events_for(failed("MissingKeys", "missing: A"), previous_ready=None) == [
        ("Warning", "MissingKeys", "missing: A")]


def test_no_warning_on_a_retry_with_the_same_reason() -> None:
    previous = {"type": "Ready", "status": "False", "reason": "ProviderError", "message": "older message"}
    assert events_for(failed(message="a newer message"), previous_ready=previous) == []


def test_warning_when_the_reason_changes() -> None:
    previous = {"type": "Ready", "status": "False", "reason": "ProviderError"}
    assert events_for(failed("AccessDenied", "denied"), previous_ready=previous) == [
        ("Warning", "AccessDenied", "denied")]


def test_recovery_gives_only_the_normal_event() -> None:
    previous = {"type": "Ready", "status": "False", "reason": "ProviderError"}
    events = events_for(synced(), previous_ready=previous)
    assert [e[0] for e in events] == ["Normal"]


# syncedAt is the last successful sync that changed status (or one a day after the last recorded),
# writtenAt the last write (issue 9, item 11; issue 12: an idle refresh patches nothing)


def test_an_idle_refresh_patches_no_status_synced_at_moves_with_other_changes() -> None:
    first = status_patch(synced(), current={}, generation=1, now=T0, force_sync=None)
    assert first is not None and first["syncedAt"] == T0 and first["writtenAt"] == T0
    current = applied({}, first)
    checked = status_patch(synced(written=False, changed_keys=()), current=current, generation=1, now=T1,
                           force_sync=None)
    assert checked is None, f"an idle refresh patched status: {checked}"
    rewritten = status_patch(synced(), current=current, generation=1, now=T2, force_sync=None)
    assert rewritten is not None and rewritten["writtenAt"] == T2 and rewritten["syncedAt"] == T2


def test_synced_at_is_refreshed_once_a_day_when_nothing_else_changes() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    a_day_later = "2026-01-02T00:00:00Z"
    assert status_patch(synced(written=False, changed_keys=()), current=current, generation=1,
                        now="2026-01-01T23:59:59Z", force_sync=None) is None
    assert status_patch(synced(written=False, changed_keys=()), current=current, generation=1, now=a_day_later,
                        force_sync=None) == {"syncedAt": a_day_later}


def test_a_failure_moves_neither_timestamp() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    patch = status_patch(failed(), current=current, generation=1, now=T1, force_sync=None)
    assert patch is not None and "syncedAt" not in patch and "writtenAt" not in patch


def test_a_spec_edit_that_writes_nothing_leaves_written_at() -> None:
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    patch = status_patch(synced(written=False), current=current, generation=2, now=T1, force_sync="x")
    assert patch is not None and patch["syncedAt"] == T1 and "writtenAt" not in patch


# log lines of sync outcomes


def test_log_line_names_the_botsecret_reason_and_duration() -> None:
    line = log_line(synced(message="1 key synced to Secret 'bot'"), namespace="bots", name="twitter", seconds=0.4213)
    assert line == "bots/twitter Synced: 1 key synced to Secret 'bot' (0.42 s, Secret written)"
    line = log_line(synced(written=False), namespace="bots", name="twitter", seconds=1.0)
    assert line == "bots/twitter Synced: 2 keys synced to Secret 'bot' (1.00 s, Secret unchanged)"
    line = log_line(failed(), namespace="bots", name="twitter", seconds=2.5, next_in=4.04)
    assert line == "bots/twitter ProviderError: source 'aws': throttled (2.50 s; next try in 4 s)"


@pytest.mark.parametrize(("count", "text"), [(0, "0 keys"), (1, "1 key"), (2, "2 keys")])
def test_key_counts_are_singular_or_plural(count: int, text: str) -> None:
    assert keys_synced(count, "bot") == f"{text} synced to Secret 'bot'"


def test_a_cycle_that_asked_no_provider_does_not_move_synced_at() -> None:
    kept = SyncResult(True, "Synced", "kept", "bot", origins=(KeyOrigin("T", "aws", "r", "v1"),),
                      data_hmac="hmac-sha256:x", fetched=False)
    patch = status_patch(kept, current={}, generation=1, now="2026-01-01T00:00:00Z", force_sync=None)
    assert patch is not None and "syncedAt" not in patch and patch["keys"][0]["key"] == "T"


def test_template_keys_are_marked_and_name_no_remote() -> None:
    result = SyncResult(True, "Synced", "m", "bot", origins=(KeyOrigin(".env", "", "", "", template=True),),
                        data_hmac="hmac-sha256:x")
    patch = status_patch(result, current={}, generation=1, now="2026-01-01T00:00:00Z", force_sync=None)
    assert patch is not None and patch["keys"] == [{"key": ".env", "template": True}]


def test_a_botsecret_without_finds_gets_no_found_field_so_an_upgrade_patches_nothing() -> None:
    # Status written by a version without status.found: an idle refresh must still patch nothing.
    spec = parse_spec({"sources": [{"name": "aws", "storeRef": {"name": "s"}}],
                       "data": [{"key": "A", "remoteRef": {"name": "a"}}]}, name="bot")
    current = applied({}, status_patch(synced(), current={}, generation=1, now=T0, force_sync=None))
    current.pop("found", None)
    idle = status_patch(synced(written=False, changed_keys=(), spec=spec, found=()), current=current,
                        generation=1, now=T1, force_sync=None)
    assert idle is None, f"an idle refresh of a BotSecret without finds patched status: {idle}"
