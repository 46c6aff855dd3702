"""OSS signature V1 (HMAC-SHA1): the `OSS` Authorization header and presigned URLs
(spec 4.2, 4.3)."""

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
from tidings.errors import ServiceError

# Spec 4.2's union of both SDKs' lists and the documented set, plus the names oss2 2.19
# and the v2 SDK's per-operation metadata add beyond it (accessPoint, objectInfo,
# metadataConfiguration, ...). A name wrongly listed here only matters when that
# parameter is sent, and both SDKs agree on every name an implemented operation sends.
SUBRESOURCES_FULL = frozenset(
    {
        "acl", "append", "asyncFetch", "bucketArchiveDirectRead", "bucketInfo", "callback",
        "callback-var", "cleanRestoredObject", "cloudboxes", "cname", "comp",
        "continuation-token", "cors", "delete", "encryption", "endTime", "group",
        "httpsConfig", "img", "inventory", "inventoryId", "legalHold", "lifecycle", "link",
        "live", "location", "logging", "metaQuery", "objectMeta", "objectWorm",
        "overwriteConfig", "partNumber", "policy", "policyStatus", "position",
        "publicAccessBlock", "qos", "qosInfo", "quota", "redundancyTransition", "referer",
        "regionList", "replication", "replicationLocation", "replicationProgress",
        "requestPayment", "resourceGroup", "resourcePool", "response-cache-control",
        "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires", "restore",
        "retention", "rtc", "seal", "security-token", "sequential", "startTime", "stat",
        "status", "style", "styleName", "symlink", "tagging", "transferAcceleration",
        "uploadId", "uploads", "versionId", "versioning", "versions", "vod", "website", "worm",
        "wormExtend", "wormId", "x-oss-ac-forward-allow", "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-access-point-name",
        "x-oss-async-process", "x-oss-process", "x-oss-request-payer",
        "x-oss-redundancy-transition-taskid", "x-oss-target-redundancy-type",
        "x-oss-traffic-limit", "x-oss-write-get-object-response",
        # in oss2 2.19's list (the v2 SDK adds accessPoint* per operation)
        "accessPoint", "accessPointPolicy", "objectInfo", "qosRequester",
        "requesterQosInfo", "resourcePoolBuckets", "resourcePoolInfo",
        # v2 SDK per-operation sub-resources only
        "MetaQuery", "dataPipeline", "metadataConfiguration", "metadataInventoryTable",
        "metadataJournalTable", "userDefinedLogFieldsConfig",
    }
)  # fmt: skip
# The v2 SDK in V1 mode leaves x-oss-process and x-oss-async-process out (spec 4.2).
SUBRESOURCES_REDUCED = frozenset(n for n in SUBRESOURCES_FULL if not n.startswith("x-oss-"))
# They carry the signature itself, so they cannot be part of what it signs.
_PRESIGN_PARAMS = frozenset({"OSSAccessKeyId", "Expires", "Signature"})


def canonical_resource(
    bucket: str | None,
    key: str | None,
    query: list[tuple[str, str]],
    subresources: frozenset[str] = SUBRESOURCES_FULL,
) -> str:
    """`CanonicalizedResource`: decoded path, then the sub-resources sorted by name."""
    path = "/" if bucket is None else f"/{bucket}/{key or ''}"
    picked = sorted(
        (name, value)
        for name, value in query
        if name in subresources and name not in _PRESIGN_PARAMS
    )
    if not picked:
        return path
    return path + "?" + "&".join(f"{name}={value}" if value else name for name, value in picked)


def string_to_sign(method: str, headers: Mapping[str, str], date_value: str, resource: str) -> str:
    """The V1 StringToSign; `headers` have lower-case names."""
    oss_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-oss-"))
    )
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{date_value}\n{oss_headers}{resource}"
    )


def sign(secret: str, text: str) -> str:
    """Base64 of HMAC-SHA1 of `text` under `secret` (also the V1 PostObject signature)."""
    return base64.b64encode(hmac.new(utf8(secret), utf8(text), hashlib.sha1).digest()).decode()


def verify_header(
    request: SignedRequest, keys: KeyRing, now: float, credentials: str
) -> Authenticated:
    """Verify `Authorization: OSS <AccessKeyId>:<Signature>`; `credentials` follows 'OSS '."""
    key_id, colon, provided = credentials.strip().partition(":")
    if not colon or not key_id or not provided:
        raise ServiceError(
            "InvalidArgument",
            "The Authorization header must look like 'OSS AccessKeyId:Signature'.",
        )
    headers = request.headers
    date_value = headers.get("x-oss-date") or headers.get("date") or ""
    check_request_time(date_value, now)
    # oss2 sends the STS token as a signed x-oss- header, the v2 SDK as an unsigned one.
    token = headers.get("x-oss-security-token") or headers.get("security-token")
    return _verify(request, keys, key_id, provided, date_value, "v1", token)


def verify_presigned(request: SignedRequest, keys: KeyRing, now: float) -> Authenticated:
    """Verify a URL carrying `OSSAccessKeyId`, `Expires` and `Signature` (spec 4.3)."""
    key_id = required_query(request.query, "OSSAccessKeyId")
    expires = required_query(request.query, "Expires")
    provided = required_query(request.query, "Signature")
    if not (expires.isascii() and expires.isdigit()):
        raise ServiceError(
            "InvalidArgument", f"Expires {expires!r} is not a number of Unix seconds."
        )
    if now > int(expires):
        raise request_expired(int(expires), now)
    token = query_value(request.query, "security-token")
    return _verify(request, keys, key_id, provided, expires, "v1-presigned", token)


def _verify(
    request: SignedRequest,
    keys: KeyRing,
    key_id: str,
    provided: str,
    date_value: str,
    scheme: str,
    token: str | None,
) -> Authenticated:
    key = lookup_key(keys, key_id)
    texts = [
        string_to_sign(
            request.method,
            request.headers,
            date_value,
            canonical_resource(request.bucket, request.key, request.query, subresources),
        )
        for subresources in (SUBRESOURCES_FULL, SUBRESOURCES_REDUCED)
    ]
    # Usually both candidates are the same text; sign it once then.
    if any(same_signature(sign(key.secret, text), provided) for text in dict.fromkeys(texts)):
        return Authenticated(key, scheme, token)
    raise signature_mismatch(key_id, provided, texts[0])
