"""Multipart upload operations of the OSS API (spec section 8)."""

from __future__ import annotations

from tidings.api.oss.call import OssCall
from tidings.api.oss.callback import COMPLETE_MULTIPART_UPLOAD, requested_callback, with_callback
from tidings.api.oss.context import OssContext, Reply
from tidings.api.oss.object_handlers import (
    attrs_from_headers,
    copy_source,
    version_header,
)
from tidings.api.oss.ranges import parse_range
from tidings.api.oss.wire import XML_TYPE, Encoder, document, el, iso8601
from tidings.api.oss.wire import quoted_etag as quoted
from tidings.api.xml import fields, local_name, malformed, parse, text
from tidings.errors import invalid_argument
from tidings.object_models import Bucket
from tidings.services.multipart import CompletedPart, check_part_number
from tidings.services.object_rules import OBJECT_ACLS, check_choice, parse_bool, parse_int


def _key(call: OssCall) -> str:
    assert call.key is not None
    return call.key


async def _bucket(context: OssContext, call: OssCall) -> Bucket:
    assert call.bucket is not None
    return await context.buckets.get(call.bucket)


def _xml(root: str, parts: list[str], headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(200, [("Content-Type", XML_TYPE), *(headers or [])], document(root, parts))


async def initiate(context: OssContext, call: OssCall) -> Reply:
    """InitiateMultipartUpload."""
    bucket = await _bucket(context, call)
    attrs = attrs_from_headers(call, bucket)
    upload = await context.multipart.initiate(bucket, _key(call), attrs, call.origin)
    encode = Encoder(call.params.get("encoding-type"))
    return _xml(
        "InitiateMultipartUploadResult",
        [
            encode.element(),
            el("Bucket", bucket.name),
            el("Key", encode(upload.key)),
            el("UploadId", upload.upload_id),
        ],
    )


async def upload_part(context: OssContext, call: OssCall) -> Reply:
    """UploadPart, or UploadPartCopy with `x-oss-copy-source`."""
    bucket = await _bucket(context, call)
    number = check_part_number(call.params.get("partNumber"))
    upload_id = call.params["uploadId"]
    if "x-oss-copy-source" in call.headers:
        source_bucket, source = await copy_source(context, call)
        span = (0, source.size)
        wanted = call.headers.get("x-oss-copy-source-range")
        if wanted is not None:
            parsed = parse_range(wanted, source.size, standard=True)
            span = parsed if parsed is not None else span
        part = await context.multipart.copy_part(
            bucket, _key(call), upload_id, number, source, span[0], span[1], call.origin
        )
        headers = [("ETag", quoted(part.etag)), ("x-oss-hash-crc64ecma", str(part.crc64))]
        if source_bucket.versioning:
            headers.append(("x-oss-copy-source-version-id", source.version_id))
        return _xml(
            "CopyPartResult",
            [el("LastModified", iso8601(part.last_modified_ms)), el("ETag", quoted(part.etag))],
            headers,
        )
    part = await context.multipart.upload_part(
        bucket,
        _key(call),
        upload_id,
        number,
        call.body_stream(),
        expected_size=call.declared_size(),
        content_md5=call.headers.get("content-md5"),
        origin=call.origin,
    )
    return Reply(200, [("ETag", quoted(part.etag)), ("x-oss-hash-crc64ecma", str(part.crc64))])


def _completion(body: bytes) -> list[CompletedPart]:
    root = parse(body)
    if local_name(root) != "CompleteMultipartUpload":
        raise malformed("the root element must be CompleteMultipartUpload.")
    parts: list[CompletedPart] = []
    for node in root:
        if local_name(node) != "Part":
            continue
        children = fields(node)
        number = (text(children.get("PartNumber")) or "").strip()
        etag = text(children.get("ETag"))
        if not (number.isascii() and number.isdigit()) or etag is None:
            raise malformed("every Part needs a PartNumber and an ETag.")
        parts.append(CompletedPart(int(number), etag))
    return parts


async def complete(context: OssContext, call: OssCall) -> Reply:
    """CompleteMultipartUpload (or `x-oss-complete-all: yes` with an empty body)."""
    callback = requested_callback(call)  # a bad one is refused before the upload completes
    bucket = await _bucket(context, call)
    body = await call.read_body()
    requested: list[CompletedPart] | None
    if call.headers.get("x-oss-complete-all", "").lower() == "yes":
        if body.strip():
            raise invalid_argument("x-oss-complete-all does not take a body.")
        requested = None
    else:
        requested = _completion(body)
    acl = call.headers.get("x-oss-object-acl")
    if acl is not None:
        check_choice(acl, OBJECT_ACLS, "x-oss-object-acl")
    outcome = await context.multipart.complete(
        bucket,
        _key(call),
        call.params["uploadId"],
        requested,
        acl=acl,
        forbid_overwrite=parse_bool(call.headers.get("x-oss-forbid-overwrite")),
        origin=call.origin,
    )
    version = outcome.version
    encode = Encoder(call.params.get("encoding-type"))
    headers = [
        ("ETag", quoted(version.etag)),
        ("x-oss-hash-crc64ecma", str(version.crc64)),
        *version_header(bucket, version),
    ]
    location = f"http://{call.host}/{bucket.name}/{version.key}"
    reply = _xml(
        "CompleteMultipartUploadResult",
        [
            encode.element(),
            el("Location", location),
            el("Bucket", bucket.name),
            el("Key", encode(version.key)),
            el("ETag", quoted(version.etag)),
        ],
        headers,
    )
    return with_callback(call, callback, reply, bucket.name, version, COMPLETE_MULTIPART_UPLOAD)


async def abort(context: OssContext, call: OssCall) -> Reply:
    """AbortMultipartUpload."""
    bucket = await _bucket(context, call)
    await context.multipart.abort(bucket, _key(call), call.params["uploadId"], call.origin)
    return Reply(204)


async def list_parts(context: OssContext, call: OssCall) -> Reply:
    """ListParts."""
    bucket = await _bucket(context, call)
    upload = await context.multipart.get(bucket, _key(call), call.params["uploadId"])
    limit = parse_int(call.params.get("max-parts"), "max-parts", 1, 1000, 1000)
    marker = parse_int(call.params.get("part-number-marker"), "part-number-marker", 0, 10_000, 0)
    found = await context.multipart.list_parts(upload, marker, limit + 1)
    page, truncated = found[:limit], len(found) > limit
    encode = Encoder(call.params.get("encoding-type"))
    parts = [
        encode.element(),
        el("Bucket", bucket.name),
        el("Key", encode(upload.key)),
        el("UploadId", upload.upload_id),
        el("StorageClass", upload.storage_class),
        el("PartNumberMarker", marker),
        el("NextPartNumberMarker", page[-1].number if page else 0),
        el("MaxParts", limit),
        el("IsTruncated", truncated),
    ]
    for part in page:
        parts.append(
            "<Part>"
            + el("PartNumber", part.number)
            + el("LastModified", iso8601(part.last_modified_ms))
            + el("ETag", quoted(part.etag))
            + el("HashCrc64ecma", str(part.crc64))
            + el("Size", part.size)
            + "</Part>"
        )
    return _xml("ListPartsResult", parts)


async def list_uploads(context: OssContext, call: OssCall) -> Reply:
    """ListMultipartUploads."""
    bucket = await _bucket(context, call)
    params = call.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    key_marker = params.get("key-marker", "")
    upload_id_marker = params.get("upload-id-marker", "")
    limit = parse_int(params.get("max-uploads"), "max-uploads", 1, 1000, 1000)
    page = await context.multipart.store.list_uploads(
        bucket.id, prefix, delimiter, key_marker, upload_id_marker, limit
    )
    encode = Encoder(params.get("encoding-type"))
    parts = [
        el("Bucket", bucket.name),
        encode.element(),
        el("KeyMarker", encode(key_marker)),
        el("UploadIdMarker", upload_id_marker),
        el("NextKeyMarker", encode(page.next_key_marker)),
        el("NextUploadIdMarker", page.next_upload_id_marker),
        el("Delimiter", encode(delimiter)),
        el("Prefix", encode(prefix)),
        el("MaxUploads", limit),
        el("IsTruncated", page.truncated),
    ]
    for upload in page.uploads:
        parts.append(
            "<Upload>"
            + el("Key", encode(upload.key))
            + el("UploadId", upload.upload_id)
            + el("Initiated", iso8601(upload.initiated_ms))
            + "</Upload>"
        )
    parts.extend(
        f"<CommonPrefixes>{el('Prefix', encode(p))}</CommonPrefixes>" for p in page.prefixes
    )
    return _xml("ListMultipartUploadsResult", parts)
