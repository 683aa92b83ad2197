"""Secret bytes in a type of their own, so a value never reaches a log line by accident."""

from __future__ import annotations

__all__ = ["SecretValue"]


class SecretValue:
    """Bytes of a secret. ``repr`` and ``str`` never show the content.

    The only ways to the bytes are :meth:`reveal` (for the Secret write and ``botsecret render``)
    and :attr:`size`.
    """

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError("SecretValue takes bytes")
        self._data = data

    def reveal(self) -> bytes:
        return self._data

    @property
    def size(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"SecretValue(<{len(self._data)} bytes>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return self._data == other._data

    def __hash__(self) -> int:
        return hash(self._data)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretValue is not picklable")
