"""The HTTP status each MNS error code travels with (spec section 5.2)."""

from __future__ import annotations

STATUS_BY_CODE = {
    "AccessDenied": 403,
    "InvalidAccessKeyId": 403,
    "SignatureDoesNotMatch": 403,
    "TimeExpired": 408,
    "InternalError": 500,
    "InternalServerError": 500,
    "QueueNotExist": 404,
    "MessageNotExist": 404,
    "TopicNotExist": 404,
    "SubscriptionNotExist": 404,
    "SubscriberNotExist": 404,
    "QueueAlreadyExist": 409,
    "TopicAlreadyExist": 409,
    "SubscriptionAlreadyExist": 409,
}


def status_for(code: str) -> int:
    """The HTTP status of an error code; every other documented code is a 400."""
    return STATUS_BY_CODE.get(code, 400)
