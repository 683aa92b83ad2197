"""botsecret.values.SecretValue and botsecret.fingerprint.data_hmac."""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle

import pytest

from botsecret.fingerprint import PREFIX, data_hmac
from botsecret.values import SecretValue

SECRET = b"hunter2-s3cr3t"
KEY = b"k" * 32


def sv(data: bytes) -> SecretValue:
    return SecretValue(data)


# SecretValue


def test_repr_and_str_never_show_the_bytes() -> None:
    value = sv(SECRET)
    shown = [repr(value), str(value), f"{value}", f"{value!r}", format(value), repr([value]), repr({"k": value}),
             repr((value,))]
    for text in shown:
        assert SECRET.decode() not in text
        assert "hunter" not in text
        assert SECRET.hex() not in text
    assert repr(value) == f"SecretValue(<{len(SECRET)} bytes>)"
    assert str(value) == repr(value)


def test_logging_a_value_does_not_show_the_bytes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("value is %s / %r", sv(SECRET), sv(SECRET))
    assert "hunter" not in caplog.text
    assert f"{len(SECRET)} bytes" in caplog.text


def test_reveal_and_size() -> None:
    value = sv(SECRET)
    assert value.reveal() == SECRET
    assert value.size == len(SECRET)
    assert sv(b"").size == 0
    assert sv("é".encode()).size == 2


@pytest.mark.parametrize("data", ["text", bytearray(b"x"), memoryview(b"x"), None, 1])
def test_only_bytes_are_accepted(data: object) -> None:
    with pytest.raises(TypeError):
        SecretValue(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_not_picklable(protocol: int) -> None:
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(sv(SECRET), protocol=protocol)


def test_not_picklable_inside_a_container() -> None:
    with pytest.raises(TypeError):
        pickle.dumps({"TOKEN": sv(SECRET)})


def test_no_instance_dict() -> None:
    value = sv(SECRET)
    assert not hasattr(value, "__dict__")
    with pytest.raises(AttributeError):
        value.extra = 1  # type: ignore[attr-defined]


def test_equality_and_hash() -> None:
    assert sv(b"a") == sv(b"a")
    assert sv(b"a") != sv(b"b")
    assert sv(b"") != sv(b"\x00")
    assert hash(sv(b"a")) == hash(sv(b"a"))
    assert len({sv(b"a"), sv(b"a"), sv(b"b")}) == 2
    # Never equal to the raw bytes or a str: no comparisons that leak through a type confusion.
    assert sv(b"a") != b"a"
    assert sv(b"a") != "a"
    assert sv(b"a").__eq__(b"a") is NotImplemented


# data_hmac


def test_hmac_has_prefix_and_is_sha256_hex() -> None:
    digest = data_hmac(KEY, {"TOKEN": sv(SECRET)})
    assert digest.startswith(PREFIX)
    assert PREFIX == "hmac-sha256:"
    hex_part = digest[len(PREFIX):]
    assert len(hex_part) == 64
    int(hex_part, 16)


def test_hmac_is_deterministic_and_order_independent() -> None:
    first = data_hmac(KEY, {"A": sv(b"1"), "B": sv(b"2")})
    again = data_hmac(KEY, {"A": sv(b"1"), "B": sv(b"2")})
    reordered = data_hmac(KEY, {"B": sv(b"2"), "A": sv(b"1")})
    assert first == again == reordered


def test_hmac_depends_on_the_key() -> None:
    data = {"TOKEN": sv(SECRET)}
    assert data_hmac(b"key-one", data) != data_hmac(b"key-two", data)


def test_hmac_is_not_a_plain_hash_of_the_value() -> None:
    digest = data_hmac(KEY, {"TOKEN": sv(SECRET)})[len(PREFIX):]
    assert digest != hashlib.sha256(SECRET).hexdigest()
    assert digest != hmac.new(KEY, SECRET, hashlib.sha256).hexdigest()


def test_hmac_changes_with_any_value_or_key_name() -> None:
    base = data_hmac(KEY, {"A": sv(b"1")})
    assert data_hmac(KEY, {"A": sv(b"2")}) != base
    assert data_hmac(KEY, {"B": sv(b"1")}) != base
    assert data_hmac(KEY, {"A": sv(b"1"), "B": sv(b"")}) != base
    assert data_hmac(KEY, {}) != base


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": b"bc"}, {"ab": b"c"}),
        ({"a": b"b", "c": b"d"}, {"a": b"bcd"}),
        ({"a": b""}, {}),
        ({"a": b"", "b": b""}, {"ab": b""}),
    ],
)
def test_hmac_inputs_are_unambiguous(left: dict[str, bytes], right: dict[str, bytes]) -> None:
    assert data_hmac(KEY, {k: sv(v) for k, v in left.items()}) != data_hmac(KEY, {k: sv(v) for k, v in right.items()})


def test_hmac_never_contains_the_value() -> None:
    for value in (SECRET, b"deadbeefcafe", b"hmac-sha256:0123"):
        digest = data_hmac(KEY, {"TOKEN": sv(value)})
        body = digest[len(PREFIX):]
        assert value.decode() not in digest.replace(PREFIX, "", 1)
        assert value.hex() not in body
        assert "TOKEN" not in digest


def test_hmac_of_empty_data_is_stable() -> None:
    assert data_hmac(KEY, {}) == PREFIX + hmac.new(KEY, b"", hashlib.sha256).hexdigest()
