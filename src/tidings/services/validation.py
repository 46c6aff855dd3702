"""Pure checks of names and values; each failure is a `ServiceError` naming the fix."""

from __future__ import annotations

import re

from tidings.errors import ServiceError, invalid_argument
from tidings.services import limits

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def check_name(name: str, kind: str, invalid_code: str, length_code: str) -> None:
    """Refuse a resource name that is empty, too long or has characters outside [A-Za-z0-9-]."""
    if len(name) > limits.NAME_MAX_LENGTH:
        raise ServiceError(
            length_code,
            f"The {kind} name is {len(name)} characters long;"
            f" at most {limits.NAME_MAX_LENGTH} are allowed.",
        )
    if not _NAME.fullmatch(name):
        raise ServiceError(
            invalid_code,
            f"The {kind} name {name!r} is invalid: use letters, digits and '-',"
            " starting with a letter or digit.",
        )


def check_queue_name(name: str) -> None:
    """Refuse an invalid queue name with `InvalidQueueName` / `QueueNameLengthError`."""
    check_name(name, "queue", "InvalidQueueName", "QueueNameLengthError")


def check_range(field: str, value: int, bounds: tuple[int, int]) -> int:
    """Return `value` if it lies within `bounds` (inclusive), else refuse naming the range."""
    low, high = bounds
    if not low <= value <= high:
        raise invalid_argument(
            f"The value of {field} should be between {low} and {high}, but got {value}."
        )
    return value
