"""OSS request authentication (spec section 4): scheme detection and the shared pieces.

Pure functions: the API layer hands in the decoded request (bucket, key, form-decoded
query, lower-cased headers) and the real Unix time, and gets back who signed it or a
`ServiceError` carrying the documented code. The schemes live in `oss_v1`, `oss_v4` and
`oss_v2`; PostObject form signatures live in `oss_policy`.
"""

from __future__ import annotations

import email.utils
import functools
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tidings.auth.keys import AccessKey, KeyRing
from tidings.errors import ServiceError

MAX_CLOCK_SKEW_SECONDS = 15 * 60
V4_ALGORITHM = "OSS4-HMAC-SHA256"
V2_ALGORITHM = "OSS2"
_ISO_BASIC = "%Y%m%dT%H%M%SZ"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided."
    " Check your key and signing method."
)
# Query parameters that make a request presigned (spec 4.1); V1 needs all three of its
# own, so any one of them is enough to choose the scheme and then report what is missing.
_V1_QUERY_MARKERS = frozenset({"OSSAccessKeyId", "Signature"})
_V4_QUERY_MARKERS = frozenset({"x-oss-signature-version", "x-oss-signature", "x-oss-credential"})


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What authentication needs of an HTTP request, already decoded (spec 1.2)."""

    method: str
    # Decoded bucket name; None for service-level requests (ListBuckets).
    bucket: str | None
    # Decoded object key; None for bucket-level requests.
    key: str | None
    # Every query parameter, form-decoded, in wire order; "" for a name without '='.
    query: list[tuple[str, str]]
    # Lower-case names.
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The outcome of a successful authentication."""

    # None for an anonymous request.
    key: AccessKey | None
    # "anonymous", "v1", "v1-presigned", "v4", "v4-presigned", "v2", "v2-presigned",
    # "post-v1" or "post-v4".
    scheme: str
    # STS token as sent; there is no STS here, so it is passed on but never validated.
    security_token: str | None = None


ANONYMOUS = Authenticated(None, "anonymous")


def authenticate(request: SignedRequest, keys: KeyRing, now: float) -> Authenticated:
    """Detect the scheme (spec 4.1), verify it, and return who signed the request.

    `now` is real Unix time. Raises `ServiceError` with `InvalidAccessKeyId`,
    `SignatureDoesNotMatch`, `AccessDenied` (expired presigned URL, missing signing
    material), `RequestTimeTooSkewed` (header signatures) or `InvalidArgument`
    (malformed signing material, header and query signatures combined).
    """
    # The scheme modules import the shared types from this one, so they load on use.
    from tidings.auth import oss_v1, oss_v2, oss_v4

    names = {name for name, _ in request.query}
    presigned_v1 = bool(names & _V1_QUERY_MARKERS)
    presigned_v4 = bool(names & _V4_QUERY_MARKERS)
    authorization = request.headers.get("authorization")
    if (authorization is not None and (presigned_v1 or presigned_v4)) or (
        presigned_v1 and presigned_v4
    ):
        raise ServiceError(
            "InvalidArgument",
            "Only one authentication mechanism is allowed: the Authorization header,"
            " the OSSAccessKeyId/Signature query parameters or the x-oss-signature-version"
            " query parameters.",
        )
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme == "OSS":
            return oss_v1.verify_header(request, keys, now, credentials)
        if scheme == V4_ALGORITHM:
            return oss_v4.verify_header(request, keys, now, credentials)
        if scheme == V2_ALGORITHM:
            return oss_v2.verify_header(request, keys, now, credentials)
        raise ServiceError(
            "InvalidArgument",
            f"Unsupported Authorization type {scheme!r}; expected 'OSS', 'OSS2' or"
            f" '{V4_ALGORITHM}'.",
        )
    if presigned_v1:
        return oss_v1.verify_presigned(request, keys, now)
    if presigned_v4:
        version = query_value(request.query, "x-oss-signature-version")
        if version == V4_ALGORITHM:
            return oss_v4.verify_presigned(request, keys, now)
        if version == V2_ALGORITHM:
            return oss_v2.verify_presigned(request, keys, now)
        if version is None:
            raise ServiceError(
                "AccessDenied", "The presigned URL lacks the x-oss-signature-version parameter."
            )
        raise ServiceError(
            "InvalidArgument",
            f"Unsupported x-oss-signature-version {version!r}; expected '{V4_ALGORITHM}'"
            f" or '{V2_ALGORITHM}'.",
        )
    return ANONYMOUS


def query_value(query: list[tuple[str, str]], name: str) -> str | None:
    """The value of a signing query parameter, None when absent.

    Signing parameters must be unambiguous, so a repeated one is refused.
    """
    values = [value for param, value in query if param == name]
    if len(values) > 1:
        raise ServiceError("InvalidArgument", f"The query parameter {name} appears more than once.")
    return values[0] if values else None


def required_query(query: list[tuple[str, str]], name: str) -> str:
    """The value of a signing query parameter a presigned URL cannot do without."""
    value = query_value(query, name)
    if not value:
        raise ServiceError("AccessDenied", f"The presigned URL lacks the {name} parameter.")
    return value


def utf8(text: str) -> bytes:
    """UTF-8 bytes of signed text; surrogate escapes (undecodable path bytes) map back to
    the bytes the client actually sent instead of failing."""
    return text.encode("utf-8", "surrogateescape")


def same_signature(expected: str, provided: str) -> bool:
    """Constant-time comparison; bytes because `compare_digest` refuses non-ASCII str."""
    return hmac.compare_digest(utf8(expected), utf8(provided))


# Clients repeat one Date value for a whole second, and parsing costs more than a
# request's signature check: remember the last few.
@functools.lru_cache(maxsize=64)
def parse_time(text: str) -> float | None:
    """Unix seconds of an RFC 1123 date or a `YYYYMMDDTHHMMSSZ` stamp; None if neither."""
    try:
        return datetime.strptime(text, _ISO_BASIC).replace(tzinfo=UTC).timestamp()
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # "-0000" means "UTC, origin unknown" in RFC 5322; HTTP dates are always GMT.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@functools.lru_cache(maxsize=64)
def parse_iso_basic(text: str, what: str) -> float:
    """Unix seconds of a V4 `YYYYMMDDTHHMMSSZ` stamp, or `AccessDenied` naming `what`."""
    try:
        return datetime.strptime(text, _ISO_BASIC).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ServiceError(
            "AccessDenied", f"The {what} {text!r} is not in the form YYYYMMDDTHHMMSSZ."
        ) from None


def iso8601(seconds: float) -> str:
    """The OSS XML timestamp form, for error details."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def check_request_time(value: str | None, now: float) -> None:
    """Refuse a header-signed request whose date is missing, unreadable or skewed."""
    if not value:
        raise ServiceError(
            "AccessDenied", "OSS authentication requires a valid Date or x-oss-date header."
        )
    stamp = parse_time(value)
    if stamp is None:
        raise ServiceError(
            "AccessDenied",
            f"OSS authentication requires a valid Date or x-oss-date header; {value!r} is not"
            " a date.",
        )
    check_skew(value, stamp, now)


def check_skew(value: str, stamp: float, now: float) -> None:
    """`RequestTimeTooSkewed` when `stamp` is more than 15 minutes from `now`."""
    if abs(stamp - now) > MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            {"RequestTime": value, "ServerTime": iso8601(now)},
        )


def request_expired(expires: float, now: float) -> ServiceError:
    """The refusal of a presigned URL used after its expiry (spec 4.3, 4.5)."""
    return ServiceError(
        "AccessDenied",
        "Request has expired.",
        {"Expires": iso8601(expires), "ServerTime": iso8601(now)},
    )


def lookup_key(keys: KeyRing, key_id: str) -> AccessKey:
    """The key with this id, or `InvalidAccessKeyId`."""
    key = keys.get(key_id)
    if key is None:
        raise ServiceError(
            "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist."
        )
    return key


def signature_mismatch(
    key_id: str, provided: str, string_to_sign: str, canonical_request: str | None = None
) -> ServiceError:
    """`SignatureDoesNotMatch` with the server's side of the computation, so that a client
    author can diff it against their own (spec 4.7)."""
    details = {
        "OSSAccessKeyId": key_id,
        "SignatureProvided": provided,
        "StringToSign": string_to_sign,
        "StringToSignBytes": " ".join(f"{byte:02X}" for byte in utf8(string_to_sign)),
    }
    if canonical_request is not None:
        details["CanonicalRequest"] = canonical_request
    return ServiceError("SignatureDoesNotMatch", _MISMATCH, details)
