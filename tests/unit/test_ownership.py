"""secrets.check_ownership: which live Secrets a BotSecret may write (pure logic on Secret shapes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from botsecret.secrets import MANAGED_BY_LABEL, OWNER_LABEL, Owner, TargetConflict, check_ownership
from botsecret.spec import Target

OWNER = Owner(name="bot", namespace="bots", uid="u-1")


def secret(labels: dict[str, str] | None = None, refs: list[Any] | None = None, kind: str = "Opaque") -> Any:
    return SimpleNamespace(type=kind, metadata=SimpleNamespace(labels=labels, owner_references=refs))


def ref(kind: str, name: str, controller: bool = True) -> Any:
    return SimpleNamespace(kind=kind, name=name, uid="u-x", controller=controller)


OURS = {MANAGED_BY_LABEL: "botsecret-operator", OWNER_LABEL: "bot"}
HMAC_KEY_LIKE = {MANAGED_BY_LABEL: "botsecret-operator"}


@pytest.mark.parametrize("policy", ["Owner", "Orphan", "Merge"])
def test_a_managed_by_secret_without_owner_label_is_nobodys(policy: str) -> None:
    with pytest.raises(TargetConflict, match=OWNER_LABEL):
        check_ownership(secret(HMAC_KEY_LIKE), OWNER, Target(name="botsecret-operator-hmac-key",
                                                             creation_policy=policy))  # type: ignore[arg-type]


def test_another_botsecrets_secret_and_a_foreign_controller_are_refused() -> None:
    with pytest.raises(TargetConflict, match="'other'"):
        check_ownership(secret({**OURS, OWNER_LABEL: "other"}), OWNER, Target(name="s"))
    with pytest.raises(TargetConflict, match="controlled by Deployment"):
        check_ownership(secret(OURS, [ref("Deployment", "bot")]), OWNER, Target(name="s"))


def test_our_own_secret_and_a_plain_one_for_merge_are_accepted() -> None:
    check_ownership(secret(OURS, [ref("BotSecret", "bot")]), OWNER, Target(name="s"))
    check_ownership(secret(OURS), OWNER, Target(name="s", creation_policy="Orphan"))
    check_ownership(secret({"team": "bots"}), OWNER, Target(name="s", creation_policy="Merge"))
    with pytest.raises(TargetConflict, match="creationPolicy: Merge"):
        check_ownership(secret({"team": "bots"}), OWNER, Target(name="s"))


def test_released_remembers_a_uid_and_forgets_it_after_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    from botsecret import runtime

    clock = [1000.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock[0])
    released = runtime.Released()
    released.add("u-1")
    assert released.has("u-1") and not released.has("u-2")
    clock[0] += released.KEEP_SECONDS + 1
    released.add("u-2")  # each add drops what is older than an hour
    assert released.has("u-2") and not released.has("u-1")
