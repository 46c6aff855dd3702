"""MNS signature version 1 (HMAC-SHA1), as the data-plane API requires (spec section 3).

Pure functions: the API layer hands in the method, the headers and the raw request
target, and gets back the verified key or a `ServiceError` with the documented code.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

from tidings.auth.keys import AccessKey, KeyRing
from tidings.errors import ServiceError

MAX_CLOCK_SKEW_SECONDS = 15 * 60


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    """The string an MNS request signature covers; `headers` have lower-case names."""
    canonical = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-mns-"))
    )
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{canonical}{resource}"
    )


def sign(secret: str, text: str) -> str:
    """Base64 of HMAC-SHA1 of `text` under `secret`."""
    # Not the one-shot `hmac.digest`: it releases the GIL around a 2 µs computation, and
    # taking the GIL back from the store's writer thread costs far more than that.
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# Clients send the same Date value for a whole second, so nearly every request repeats
# one of a few recent values, and parsing one takes longer than checking a signature.
@lru_cache(maxsize=64)
def _parse_date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _check_date(headers: Mapping[str, str], now: float) -> None:
    value = headers.get("date") or headers.get("x-mns-date")
    if not value:
        raise ServiceError("MissingDateHeader", "The request needs a Date header.")
    parsed = _parse_date(value)
    if parsed is None:
        raise ServiceError(
            "InvalidDateHeader", f"The Date header {value!r} is not an RFC 1123 date."
        )
    if parsed.tzinfo is None:
        raise ServiceError("InvalidDateHeader", f"The Date header {value!r} has no time zone.")
    skew = abs(parsed.timestamp() - now)
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(
            "TimeExpired",
            f"The request time {value} differs from the server time by {int(skew)} s;"
            f" at most {MAX_CLOCK_SKEW_SECONDS} s are allowed.",
        )


def _candidate_strings(method: str, headers: Mapping[str, str], resource: str) -> list[str]:
    """What the client may have signed. With only `x-mns-date`, clients differ on how the
    DATE line is filled (spec section 2), so both readings are accepted."""
    candidates = [string_to_sign(method, headers, resource)]
    if "date" not in headers and "x-mns-date" in headers:
        with_date = {**headers, "date": headers["x-mns-date"]}
        candidates.append(string_to_sign(method, with_date, resource))
    return candidates


def verify(
    keys: KeyRing,
    method: str,
    headers: Mapping[str, str],
    resource: str,
    now: float | None = None,
) -> AccessKey:
    """Check an MNS request's signature and date; return the key that signed it.

    `now` is real wall time (never the scaled server clock): skew is a property of
    the caller's clock, not of our timers.
    """
    authorization = headers.get("authorization")
    if authorization is None:
        raise ServiceError("MissingAuthorizationHeader", "The request is not signed.")
    scheme, _, credentials = authorization.partition(" ")
    key_id, _, signature = credentials.partition(":")
    if scheme != "MNS" or not key_id or not signature:
        raise ServiceError(
            "InvalidAuthorizationHeader",
            "The Authorization header must look like 'MNS AccessKeyId:Signature'.",
        )
    if "x-mns-version" not in headers:
        raise ServiceError("MissingVersionHeader", "The request needs x-mns-version: 2015-06-06.")
    _check_date(headers, time.time() if now is None else now)
    key = keys.get(key_id)
    if key is None:
        raise ServiceError("InvalidAccessKeyId", f"The AccessKey ID {key_id} does not exist.")
    if not any(
        hmac.compare_digest(sign(key.secret, text), signature)
        for text in _candidate_strings(method, headers, resource)
    ):
        raise ServiceError(
            "SignatureDoesNotMatch",
            "The request signature does not match; check the AccessKey secret and that the"
            " string to sign uses the raw request path.",
        )
    return key


def content_md5_matches(value: str, body: bytes) -> bool:
    """Whether a Content-MD5 header fits the body, in the SDK's form or RFC 1864's."""
    digest = hashlib.md5(body)
    sdk_form = base64.b64encode(digest.hexdigest().encode("ascii")).decode("ascii")
    rfc_form = base64.b64encode(digest.digest()).decode("ascii")
    return value in (sdk_form, rfc_form)
