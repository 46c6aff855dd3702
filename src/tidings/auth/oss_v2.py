"""Legacy OSS signature V2 (`OSS2`, HMAC-SHA256): Authorization header and presigned URLs
(spec 4.6). Only oss2's `AuthV2` produces it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from tidings.auth.keys import KeyRing
from tidings.auth.oss import (
    Authenticated,
    SignedRequest,
    check_request_time,
    lookup_key,
    query_value,
    request_expired,
    required_query,
    same_signature,
    signature_mismatch,
    utf8,
)
from tidings.auth.oss_v4 import parse_additional_headers, uri_encode
from tidings.errors import ServiceError

_AUTHORIZATION_FIELDS = frozenset({"AccessKeyId", "AdditionalHeaders", "Signature"})


def canonical_resource(
    bucket: str | None,
    key: str | None,
    query: list[tuple[str, str]],
    exclude: frozenset[str] = frozenset(),
) -> str:
    """The encoded path ('/' encoded too) and every query parameter, sorted."""
    path = "/" if bucket is None else f"/{bucket}/{key or ''}"
    pairs = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in query
        if name not in exclude
    )
    resource = uri_encode(path, keep_slash=False)
    if not pairs:
        return resource
    return resource + "?" + "&".join(f"{name}={value}" if value else name for name, value in pairs)


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    date_value: str,
    additional: list[str],
    resource: str,
) -> str:
    """The V2 StringToSign; `additional` is sorted and lower-case."""
    signed = sorted(name for name in headers if name.startswith("x-oss-") or name in additional)
    canonical = "".join(f"{name}:{headers[name]}\n" for name in signed)
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{date_value}\n{canonical}{';'.join(additional)}\n{resource}"
    )


def sign(secret: str, text: str) -> str:
    """Base64 of HMAC-SHA256 of `text` under `secret`."""
    digest = hmac.new(utf8(secret), utf8(text), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_header(
    request: SignedRequest, keys: KeyRing, now: float, credentials: str
) -> Authenticated:
    """Verify `Authorization: OSS2 AccessKeyId:<id>[,AdditionalHeaders:<h>],Signature:<s>`."""
    fields: dict[str, str] = {}
    for item in credentials.split(","):
        name, colon, value = item.strip().partition(":")
        if not colon or name not in _AUTHORIZATION_FIELDS or name in fields:
            raise ServiceError(
                "InvalidArgument",
                f"The Authorization item {item.strip()!r} is not one of AccessKeyId:,"
                " AdditionalHeaders: or Signature:, or appears twice.",
            )
        fields[name] = value
    if not fields.get("AccessKeyId") or not fields.get("Signature"):
        raise ServiceError(
            "InvalidArgument", "The Authorization header needs both AccessKeyId: and Signature:."
        )
    additional = parse_additional_headers(fields.get("AdditionalHeaders"))
    # oss2's AuthV2 always fills the date slot from Date, never from x-oss-date.
    date_value = request.headers.get("date", "")
    check_request_time(date_value, now)
    token = request.headers.get("x-oss-security-token")
    key_id, provided = fields["AccessKeyId"], fields["Signature"]
    return _verify(request, keys, key_id, provided, date_value, additional, "v2", token)


def verify_presigned(request: SignedRequest, keys: KeyRing, now: float) -> Authenticated:
    """Verify a URL signed with `x-oss-signature-version=OSS2`; `x-oss-expires` is absolute."""
    query = request.query
    key_id = required_query(query, "x-oss-access-key-id")
    expires = required_query(query, "x-oss-expires")
    provided = required_query(query, "x-oss-signature")
    additional = parse_additional_headers(query_value(query, "x-oss-additional-headers"))
    if not (expires.isascii() and expires.isdigit()):
        raise ServiceError(
            "InvalidArgument", f"x-oss-expires {expires!r} is not a number of Unix seconds."
        )
    if now > int(expires):
        raise request_expired(int(expires), now)
    token = query_value(query, "security-token")
    return _verify(request, keys, key_id, provided, expires, additional, "v2-presigned", token)


def _verify(
    request: SignedRequest,
    keys: KeyRing,
    key_id: str,
    provided: str,
    date_value: str,
    additional: list[str],
    scheme: str,
    token: str | None,
) -> Authenticated:
    key = lookup_key(keys, key_id)
    resource = canonical_resource(
        request.bucket, request.key, request.query, frozenset({"x-oss-signature"})
    )
    text = string_to_sign(request.method, request.headers, date_value, additional, resource)
    if same_signature(sign(key.secret, text), provided):
        return Authenticated(key, scheme, token)
    raise signature_mismatch(key_id, provided, text)
