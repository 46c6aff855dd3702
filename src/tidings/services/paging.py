"""List pages with opaque markers (the Base64 of the last name shown)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from tidings.errors import invalid_argument

T = TypeVar("T")


def decode_marker(marker: str | None) -> str | None:
    """The name a marker continues after, or None to start at the beginning."""
    if not marker:
        return None
    try:
        return base64.urlsafe_b64decode(marker.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid_argument(f"The marker {marker!r} is not valid.") from None


def page(items: list[T], limit: int, name_of: Callable[[T], str]) -> tuple[list[T], str | None]:
    """The first `limit` of `items` (fetched as limit + 1) and the next page's marker."""
    if len(items) <= limit:
        return items, None
    shown = items[:limit]
    return shown, base64.urlsafe_b64encode(name_of(shown[-1]).encode("utf-8")).decode("ascii")
