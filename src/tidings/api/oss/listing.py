"""ListObjects (V1, V2) and ListObjectVersions: parameters in, documents out."""

from __future__ import annotations

import base64
import binascii

from tidings.api.oss.call import OssCall
from tidings.api.oss.context import OssContext, Reply
from tidings.api.oss.wire import (
    XML_TYPE,
    Encoder,
    document,
    el,
    http_date,
    iso8601,
    owner,
    quoted_etag,
)
from tidings.errors import ServiceError
from tidings.object_models import RESTORED, RESTORING, Bucket, ListPage, ObjectVersion
from tidings.services.object_rules import parse_int
from tidings.services.restore import effective_restore

DEFAULT_MAX_KEYS = 100
MAX_KEYS = 1000


def encode_token(marker: str) -> str:
    """A continuation token: URL-safe base64 of the marker, no padding."""
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii").rstrip("=")


def decode_token(token: str) -> str:
    """The marker inside a continuation token; InvalidArgument for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise ServiceError(
            "InvalidArgument",
            "The continuation token is not valid.",
            {"ArgumentName": "continuation-token", "ArgumentValue": token},
        ) from None


def restore_text(version: ObjectVersion, now_ms: int) -> str | None:
    """The `x-oss-restore` / `<RestoreInfo>` text of an archive version, if any."""
    restore = effective_restore(version, now_ms)
    if restore.state == RESTORING:
        return 'ongoing-request="true"'
    if restore.state == RESTORED and restore.expiry_ms is not None:
        return f'ongoing-request="false", expiry-date="{http_date(restore.expiry_ms)}"'
    return None


def _contents(version: ObjectVersion, encode: Encoder, with_owner: bool, account: str) -> str:
    parts = [
        el("Key", encode(version.key)),
        el("LastModified", iso8601(version.last_modified_ms)),
        el("ETag", quoted_etag(version.etag)),
        el("Type", version.object_type),
        el("Size", version.size),
        el("StorageClass", version.storage_class),
    ]
    if with_owner:
        parts.append(owner(account))
    return "<Contents>" + "".join(parts) + "</Contents>"


def _prefixes(page: ListPage, encode: Encoder) -> str:
    return "".join(
        f"<CommonPrefixes>{el('Prefix', encode(prefix))}</CommonPrefixes>"
        for prefix in page.prefixes
    )


async def list_objects(context: OssContext, call: OssCall, bucket: Bucket) -> Reply:
    """ListObjects (V1) or, with `list-type=2`, ListObjectsV2."""
    params = call.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    limit = parse_int(params.get("max-keys"), "max-keys", 1, MAX_KEYS, DEFAULT_MAX_KEYS)
    encode = Encoder(params.get("encoding-type"))
    v2 = params.get("list-type") == "2"
    if v2:
        token = params.get("continuation-token")
        start_after = params.get("start-after", "")
        marker = decode_token(token) if token else start_after
    else:
        marker = params.get("marker", "")
    page = await context.objects.store.list_objects(bucket.id, prefix, delimiter, marker, limit)
    head = [el("Name", bucket.name), el("Prefix", encode(prefix))]
    if v2:
        head += [
            el("MaxKeys", limit),
            el("Delimiter", encode(delimiter)),
            el("StartAfter", encode(params.get("start-after", ""))),
            el("ContinuationToken", params.get("continuation-token", "")),
        ]
    else:
        head += [
            el("Marker", encode(marker)),
            el("MaxKeys", limit),
            el("Delimiter", encode(delimiter)),
        ]
    head.append(encode.element())
    head.append(el("IsTruncated", page.truncated))
    if page.truncated:
        if v2:
            head.append(el("NextContinuationToken", encode_token(page.next_marker)))
        else:
            head.append(el("NextMarker", encode(page.next_marker)))
    if v2:
        head.append(el("KeyCount", len(page.objects) + len(page.prefixes)))
    with_owner = not v2 or params.get("fetch-owner", "").lower() == "true"
    body = [_contents(v, encode, with_owner, bucket.owner) for v in page.objects]
    body.append(_prefixes(page, encode))
    return Reply(200, [("Content-Type", XML_TYPE)], document("ListBucketResult", [*head, *body]))


async def list_versions(context: OssContext, call: OssCall, bucket: Bucket) -> Reply:
    """ListObjectVersions: versions and delete markers, by key then newest first."""
    params = call.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    key_marker = params.get("key-marker", "")
    version_marker = params.get("version-id-marker", "")
    limit = parse_int(params.get("max-keys"), "max-keys", 1, MAX_KEYS, DEFAULT_MAX_KEYS)
    encode = Encoder(params.get("encoding-type"))
    page = await context.objects.store.list_versions(
        bucket.id, prefix, delimiter, key_marker, version_marker, limit
    )
    parts = [
        el("Name", bucket.name),
        el("Prefix", encode(prefix)),
        el("KeyMarker", encode(key_marker)),
        el("VersionIdMarker", encode(version_marker)),
        el("MaxKeys", limit),
        el("Delimiter", encode(delimiter)),
        encode.element(),
        el("IsTruncated", page.truncated),
    ]
    if page.truncated:
        parts.append(el("NextKeyMarker", encode(page.next_marker)))
        parts.append(el("NextVersionIdMarker", encode(page.next_version_marker)))
    for version in page.objects:
        common = [
            el("Key", encode(version.key)),
            el("VersionId", version.version_id),
            el("IsLatest", version.is_current),
            el("LastModified", iso8601(version.last_modified_ms)),
        ]
        if version.is_delete_marker:
            parts.append(
                "<DeleteMarker>" + "".join(common) + owner(bucket.owner) + "</DeleteMarker>"
            )
            continue
        detail = [
            el("ETag", quoted_etag(version.etag)),
            el("Type", version.object_type),
            el("Size", version.size),
            el("StorageClass", version.storage_class),
            owner(bucket.owner),
        ]
        parts.append("<Version>" + "".join(common + detail) + "</Version>")
    parts.append(_prefixes(page, encode))
    return Reply(200, [("Content-Type", XML_TYPE)], document("ListVersionsResult", parts))
