"""OSS signature V4 (`OSS4-HMAC-SHA256`): the Authorization header, presigned URLs and
the signing-key derivation PostObject shares (spec 4.4, 4.5)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from tidings.auth.keys import KeyRing
from tidings.auth.oss import (
    MAX_CLOCK_SKEW_SECONDS,
    V4_ALGORITHM,
    Authenticated,
    SignedRequest,
    check_skew,
    lookup_key,
    parse_iso_basic,
    query_value,
    request_expired,
    required_query,
    same_signature,
    signature_mismatch,
    utf8,
)
from tidings.errors import ServiceError

TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
# `oss-cloudbox` is the product of cloud-box endpoints (spec 4.4).
PRODUCTS = frozenset({"oss", "oss-cloudbox"})
_ALWAYS_SIGNED = frozenset({"content-type", "content-md5"})
_AUTHORIZATION_FIELDS = frozenset({"Credential", "AdditionalHeaders", "Signature"})


@dataclass(frozen=True, slots=True)
class Credential:
    """`<AccessKeyId>/<yyyymmdd>/<region>/<product>/aliyun_v4_request`, split up."""

    key_id: str
    date: str
    region: str
    product: str

    @property
    def scope(self) -> str:
        """The credential scope the StringToSign names."""
        return f"{self.date}/{self.region}/{self.product}/{TERMINATOR}"


def parse_credential(text: str) -> Credential:
    """Split a V4 credential; any region is accepted, it is only an input to the key."""
    parts = text.split("/")
    if len(parts) != 5 or not parts[0] or parts[3] not in PRODUCTS or parts[4] != TERMINATOR:
        raise ServiceError(
            "InvalidArgument",
            f"The credential {text!r} is not of the form"
            f" <AccessKeyId>/<yyyymmdd>/<region>/oss/{TERMINATOR}.",
        )
    return Credential(parts[0], parts[1], parts[2], parts[3])


def check_scope_date(credential: Credential, stamp: str) -> None:
    """The scope date must be the day of x-oss-date, or the derived key would differ."""
    if credential.date != stamp[:8]:
        raise ServiceError(
            "AccessDenied",
            f"The credential date {credential.date} does not match x-oss-date {stamp}.",
        )


def signing_key(secret: str, date: str, region: str, product: str = "oss") -> bytes:
    """kSigning: HMAC-SHA256 chained over date, region, product and the terminator."""
    key = utf8("aliyun_v4" + secret)
    for part in (date, region, product, TERMINATOR):
        key = hmac.new(key, utf8(part), hashlib.sha256).digest()
    return key


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """RFC 3986 encoding over UTF-8: unreserved characters stay, all else is %XX."""
    return quote(utf8(text), safe="/" if keep_slash else "")


def canonical_uri(bucket: str | None, key: str | None) -> str:
    """`/`, `/<bucket>/` or `/<bucket>/<key>`, whatever the addressing style was."""
    path = "/" if bucket is None else f"/{bucket}/{key or ''}"
    return uri_encode(path, keep_slash=True)


def canonical_query(query: list[tuple[str, str]], exclude: frozenset[str] = frozenset()) -> str:
    """Every parameter re-encoded from its decoded form, sorted by name then value."""
    pairs = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in query
        if name not in exclude
    )
    return "&".join(f"{name}={value}" if value else name for name, value in pairs)


def canonical_headers(headers: Mapping[str, str], additional: list[str]) -> str:
    """x-oss-*, content-type, content-md5 and the listed additional headers present."""
    names = sorted(
        name
        for name in headers
        if name.startswith("x-oss-") or name in _ALWAYS_SIGNED or name in additional
    )
    return "".join(f"{name}:{headers[name]}\n" for name in names)


def canonical_request(
    request: SignedRequest, additional: list[str], exclude: frozenset[str] = frozenset()
) -> str:
    """The canonical request of spec 4.4; `additional` is sorted and lower-case."""
    return "\n".join(
        [
            request.method,
            canonical_uri(request.bucket, request.key),
            canonical_query(request.query, exclude),
            canonical_headers(request.headers, additional),
            ";".join(additional),
            request.headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD),
        ]
    )


def string_to_sign(stamp: str, scope: str, canonical: str) -> str:
    """Algorithm, x-oss-date, scope and the hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(utf8(canonical)).hexdigest()
    return f"{V4_ALGORITHM}\n{stamp}\n{scope}\n{digest}"


def sign(key: bytes, text: str) -> str:
    """Lower-case hex HMAC-SHA256 under a derived signing key."""
    return hmac.new(key, utf8(text), hashlib.sha256).hexdigest()


def parse_additional_headers(value: str | None) -> list[str]:
    """The sorted, lower-cased, de-duplicated names of an AdditionalHeaders list."""
    if value is None:
        return []
    names = value.split(";")
    if not all(name.strip() for name in names):
        raise ServiceError(
            "InvalidArgument", f"AdditionalHeaders {value!r} contains an empty header name."
        )
    return sorted({name.strip().lower() for name in names})


def verify_header(
    request: SignedRequest, keys: KeyRing, now: float, credentials: str
) -> Authenticated:
    """Verify `Authorization: OSS4-HMAC-SHA256 Credential=...,Signature=...`."""
    fields: dict[str, str] = {}
    # oss2 separates the items with ", ", the v2 SDK with ","; either order is allowed.
    for item in credentials.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals or name not in _AUTHORIZATION_FIELDS or name in fields:
            raise ServiceError(
                "InvalidArgument",
                f"The Authorization item {item.strip()!r} is not one of Credential=,"
                " AdditionalHeaders= or Signature=, or appears twice.",
            )
        fields[name] = value
    if not fields.get("Credential") or not fields.get("Signature"):
        raise ServiceError(
            "InvalidArgument", "The Authorization header needs both Credential= and Signature=."
        )
    credential = parse_credential(fields["Credential"])
    additional = parse_additional_headers(fields.get("AdditionalHeaders"))
    stamp = request.headers.get("x-oss-date")
    if not stamp:
        raise ServiceError(
            "AccessDenied", f"The x-oss-date header is required with {V4_ALGORITHM}."
        )
    seconds = parse_iso_basic(stamp, "x-oss-date header")
    check_scope_date(credential, stamp)
    check_skew(stamp, seconds, now)
    token = request.headers.get("x-oss-security-token")
    return _verify(request, keys, credential, fields["Signature"], stamp, additional, "v4", token)


def verify_presigned(request: SignedRequest, keys: KeyRing, now: float) -> Authenticated:
    """Verify a URL signed with `x-oss-signature-version=OSS4-HMAC-SHA256` (spec 4.5)."""
    query = request.query
    credential = parse_credential(required_query(query, "x-oss-credential"))
    stamp = required_query(query, "x-oss-date")
    expires = required_query(query, "x-oss-expires")
    provided = required_query(query, "x-oss-signature")
    additional = parse_additional_headers(query_value(query, "x-oss-additional-headers"))
    if not (expires.isascii() and expires.isdigit()) or not (
        1 <= int(expires) <= MAX_PRESIGN_EXPIRES
    ):
        raise ServiceError(
            "InvalidArgument",
            f"x-oss-expires {expires!r} must be a number of seconds from 1 to"
            f" {MAX_PRESIGN_EXPIRES}.",
        )
    seconds = parse_iso_basic(stamp, "x-oss-date parameter")
    check_scope_date(credential, stamp)
    if now > seconds + int(expires):
        raise request_expired(seconds + int(expires), now)
    if now < seconds - MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(
            "AccessDenied",
            f"Request is not valid yet: x-oss-date {stamp} is more than 15 minutes ahead of"
            " the server time.",
        )
    token = query_value(query, "x-oss-security-token")
    return _verify(request, keys, credential, provided, stamp, additional, "v4-presigned", token)


def _verify(
    request: SignedRequest,
    keys: KeyRing,
    credential: Credential,
    provided: str,
    stamp: str,
    additional: list[str],
    scheme: str,
    token: str | None,
) -> Authenticated:
    key = lookup_key(keys, credential.key_id)
    canonical = canonical_request(request, additional, frozenset({"x-oss-signature"}))
    text = string_to_sign(stamp, credential.scope, canonical)
    derived = signing_key(key.secret, credential.date, credential.region, credential.product)
    if same_signature(sign(derived, text), provided):
        return Authenticated(key, scheme, token)
    raise signature_mismatch(credential.key_id, provided, text, canonical)
