"""Pure rules of queues and messages: attribute ranges, dead-letter policies, properties."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import replace
from typing import Any

from tidings.errors import invalid_argument
from tidings.models import DeadLetterPolicy, Property, QueueAttributes
from tidings.services import limits
from tidings.services.validation import check_queue_name, check_range

_ATTRIBUTE_RANGES: dict[str, tuple[int, int]] = {
    "delay_seconds": limits.DELAY_RANGE,
    "maximum_message_size": limits.MAXIMUM_MESSAGE_SIZE_RANGE,
    "message_retention_period": limits.RETENTION_RANGE,
    "visibility_timeout": limits.VISIBILITY_RANGE,
    "polling_wait_seconds": limits.POLLING_WAIT_RANGE,
}
_ATTRIBUTE_NAMES = {
    "delay_seconds": "DelaySeconds",
    "maximum_message_size": "MaximumMessageSize",
    "message_retention_period": "MessageRetentionPeriod",
    "visibility_timeout": "VisibilityTimeout",
    "polling_wait_seconds": "PollingWaitSeconds",
}


def body_md5(body: str) -> str:
    """Upper-case hex MD5 of the body's UTF-8 bytes, as `MessageBodyMD5` reports it."""
    return hashlib.md5(body.encode("utf-8")).hexdigest().upper()


def build_attributes(base: QueueAttributes, changes: dict[str, Any]) -> QueueAttributes:
    """`base` with `changes` applied, every value range-checked."""
    for key, value in changes.items():
        if key in _ATTRIBUTE_RANGES:
            check_range(_ATTRIBUTE_NAMES[key], value, _ATTRIBUTE_RANGES[key])
        elif key != "logging_enabled":
            raise invalid_argument(f"Unknown queue attribute {key}.")
    return replace(base, **changes)


def check_dead_letter(policy: DeadLetterPolicy | None, queue_name: str) -> None:
    """Refuse a dead-letter policy that points at its own queue or has a bad count."""
    if policy is None:
        return
    check_queue_name(policy.target_queue)
    if policy.target_queue == queue_name:
        raise invalid_argument("A queue cannot be its own dead-letter queue.")
    check_range("MaxReceiveCount", policy.max_receive_count, limits.MAX_RECEIVE_COUNT_RANGE)


def check_properties(properties: tuple[Property, ...]) -> None:
    """Refuse properties without a name, of an unknown type, or BINARY but not Base64."""
    for p in properties:
        if not p.name:
            raise invalid_argument("A message property needs a Name.")
        if p.type not in limits.PROPERTY_TYPES:
            raise invalid_argument(
                f"Property {p.name} has type {p.type!r}; use one of"
                f" {', '.join(sorted(limits.PROPERTY_TYPES))}."
            )
        if p.type == "BINARY":
            try:
                base64.b64decode(p.value, validate=True)
            except binascii.Error:
                raise invalid_argument(f"BINARY property {p.name} is not Base64.") from None
