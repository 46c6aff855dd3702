"""Conditional requests (If-Match & co.), evaluated in the order OSS documents."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

from tidings.errors import ServiceError

NOT_MODIFIED = "NotModified"


@dataclass(frozen=True, slots=True)
class Conditions:
    """The four preconditions of a read, or of a copy's source (header values as sent)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {part.strip().strip('"').upper() for part in header.split(",")}
    return "*" in wanted or etag.upper() in wanted


def _parse_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None  # an unparseable date is ignored, as HTTP says


def check(conditions: Conditions, etag: str, last_modified_ms: int) -> None:
    """Raise PreconditionFailed (412) or NotModified (304) when a condition says so.

    Order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since. Dates have
    second precision, so Last-Modified is compared truncated to the second.
    """
    modified = last_modified_ms // 1000
    if conditions.if_match is not None and not _etag_matches(conditions.if_match, etag):
        raise ServiceError("PreconditionFailed", "At least one of the preconditions failed.")
    if conditions.if_unmodified_since is not None:
        since = _parse_date(conditions.if_unmodified_since)
        if since is not None and modified > since:
            raise ServiceError("PreconditionFailed", "At least one of the preconditions failed.")
    if conditions.if_none_match is not None and _etag_matches(conditions.if_none_match, etag):
        raise ServiceError(NOT_MODIFIED, "The object was not modified.")
    if conditions.if_modified_since is not None:
        since = _parse_date(conditions.if_modified_since)
        if since is not None and modified <= since:
            raise ServiceError(NOT_MODIFIED, "The object was not modified.")
