"""Access keys the server accepts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An AccessKey pair and the account it acts for."""

    key_id: str
    secret: str
    account_id: str


class KeyRing:
    """Every AccessKey the server knows, by id."""

    def __init__(self, keys: list[AccessKey]) -> None:
        self._keys = {k.key_id: k for k in keys}

    def get(self, key_id: str) -> AccessKey | None:
        """The key with this id, or None."""
        return self._keys.get(key_id)
