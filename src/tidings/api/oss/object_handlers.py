"""Object-level operations of the OSS API (spec section 7), except multipart."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import unquote

from tidings.api.oss.bucket_handlers import parse_tagging, render_tagging
from tidings.api.oss.call import OssCall
from tidings.api.oss.callback import PUT_OBJECT as PUT_OBJECT_CALLBACK
from tidings.api.oss.callback import requested_callback, with_callback
from tidings.api.oss.context import OssContext, Reply
from tidings.api.oss.listing import restore_text
from tidings.api.oss.ranges import parse_range
from tidings.api.oss.wire import XML_TYPE, Encoder, document, el, http_date, iso8601, owner
from tidings.api.oss.wire import quoted_etag as quoted
from tidings.api.xml import fields, local_name, malformed, parse, text
from tidings.errors import ServiceError
from tidings.object_models import APPENDABLE, Bucket, ObjectVersion
from tidings.services import access, conditions
from tidings.services.object_rules import (
    OBJECT_ACLS,
    STORAGE_CLASSES,
    check_choice,
    parse_bool,
    parse_tagging_header,
    stored_headers,
    user_meta,
)
from tidings.services.objects import ObjectAttrs, check_md5_bytes, no_such_key

MAX_DELETE_OBJECTS = 1000
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def _account(call: OssCall) -> str | None:
    return call.auth.key.account_id if call.auth.key is not None else None


def _key(call: OssCall) -> str:
    assert call.key is not None
    return call.key


async def _bucket(context: OssContext, call: OssCall) -> Bucket:
    assert call.bucket is not None
    return await context.buckets.get(call.bucket)


def version_header(bucket: Bucket, version: ObjectVersion) -> list[tuple[str, str]]:
    """`x-oss-version-id`, on buckets that have ever had versioning."""
    return [("x-oss-version-id", version.version_id)] if bucket.versioning else []


def attrs_from_headers(call: OssCall, bucket: Bucket) -> ObjectAttrs:
    """The attributes a write request gives its object (spec 6.1)."""
    headers = call.headers
    storage_class = headers.get("x-oss-storage-class")
    if storage_class is not None:
        check_choice(storage_class, STORAGE_CLASSES, "x-oss-storage-class")
    acl = check_choice(headers.get("x-oss-object-acl", "default"), OBJECT_ACLS, "x-oss-object-acl")
    tagging = headers.get("x-oss-tagging")
    return ObjectAttrs(
        headers=stored_headers(headers, _key(call)),
        meta=user_meta(headers),
        acl=acl,
        storage_class=storage_class,
        tags=parse_tagging_header(tagging) if tagging else {},
    )


def object_headers(
    context: OssContext, bucket: Bucket, version: ObjectVersion
) -> list[tuple[str, str]]:
    """The headers GET and HEAD describe a version with."""
    headers = [
        ("ETag", quoted(version.etag)),
        ("Last-Modified", http_date(version.last_modified_ms)),
        ("Accept-Ranges", "bytes"),
        ("x-oss-object-type", version.object_type),
        ("x-oss-storage-class", version.storage_class),
        ("x-oss-hash-crc64ecma", str(version.crc64)),
    ]
    headers.extend(version.headers.items())
    headers.extend((f"x-oss-meta-{name}", value) for name, value in version.meta.items())
    if version.tags:
        headers.append(("x-oss-tagging-count", str(len(version.tags))))
    if version.object_type == APPENDABLE:
        headers.append(("x-oss-next-append-position", str(version.size)))
    restore = restore_text(version, context.clock.now_ms())
    if restore is not None:
        headers.append(("x-oss-restore", restore))
    if version.transition_ms is not None:
        headers.append(("x-oss-transition-time", http_date(version.transition_ms)))
    headers.extend(version_header(bucket, version))
    return headers


def _conditions(call: OssCall, prefix: str = "") -> conditions.Conditions:
    headers = call.headers
    return conditions.Conditions(
        if_match=headers.get(f"{prefix}if-match"),
        if_none_match=headers.get(f"{prefix}if-none-match"),
        if_modified_since=headers.get(f"{prefix}if-modified-since"),
        if_unmodified_since=headers.get(f"{prefix}if-unmodified-since"),
    )


async def _readable(
    context: OssContext, call: OssCall, bucket: Bucket, with_body: bool = False
) -> ObjectVersion:
    """The addressed version, once the caller may read it (the object's ACL counts)."""
    account = _account(call)
    try:
        version = await context.objects.head(
            bucket, _key(call), call.params.get("versionId"), with_body
        )
    except ServiceError:
        access.require(account, bucket, None, write=False)
        raise
    access.require(account, bucket, version.acl, write=False)
    return version


async def get_object(context: OssContext, call: OssCall) -> Reply:
    """GetObject: whole or one range, with conditions and response overrides."""
    if call.has("x-oss-process"):
        raise ServiceError("NotImplemented", "Image processing (x-oss-process) is not built yet.")
    bucket = await _bucket(context, call)
    version = await _readable(context, call, bucket, with_body=True)
    conditions.check(_conditions(call), version.etag, version.last_modified_ms)
    context.objects.check_readable(version)
    headers = object_headers(context, bucket, version)
    standard = call.headers.get("x-oss-range-behavior", "").lower() == "standard"
    span = parse_range(call.headers.get("range"), version.size, standard)
    status = 200
    start, end = 0, version.size
    if span is not None:
        status = 206
        start, end = span
        headers.append(("Content-Range", f"bytes {start}-{end - 1}/{version.size}"))
        if not context.crc_on_ranges:
            headers = [h for h in headers if h[0] != "x-oss-hash-crc64ecma"]
    overrides = {
        name: call.params[param] for param, name in _OVERRIDES.items() if param in call.params
    }
    if overrides:
        headers = [h for h in headers if h[0] not in overrides]
        headers.extend(overrides.items())
    if version.body is not None:  # a small object read with its row: no stream needed
        await context.objects.record_read(bucket, version, start, end, call.origin)
        return Reply(status, headers, version.body[start:end])
    stream = await _primed(context.objects.read(version, start, end))
    await context.objects.record_read(bucket, version, start, end, call.origin)
    return Reply(status, headers, stream=stream, length=end - start)


async def _primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pull the first chunk now, so a missing blob fails before any header is sent."""
    iterator = aiter(chunks)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        first = b""

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in iterator:
            yield chunk

    return rest()


async def head_object(context: OssContext, call: OssCall) -> Reply:
    """HeadObject: GetObject's headers and conditions, no body."""
    bucket = await _bucket(context, call)
    version = await _readable(context, call, bucket)
    conditions.check(_conditions(call), version.etag, version.last_modified_ms)
    return Reply(200, object_headers(context, bucket, version), length=version.size)


async def get_meta(context: OssContext, call: OssCall) -> Reply:
    """GetObjectMeta: the lightweight HEAD (GET accepted too)."""
    bucket = await _bucket(context, call)
    version = await _readable(context, call, bucket)
    headers = [
        ("ETag", quoted(version.etag)),
        ("Last-Modified", http_date(version.last_modified_ms)),
        ("x-oss-hash-crc64ecma", str(version.crc64)),
        *version_header(bucket, version),
    ]
    if version.transition_ms is not None:
        headers.append(("x-oss-transition-time", http_date(version.transition_ms)))
    return Reply(200, headers, length=version.size)


def _write_headers(bucket: Bucket, version: ObjectVersion) -> list[tuple[str, str]]:
    return [
        ("ETag", quoted(version.etag)),
        ("x-oss-hash-crc64ecma", str(version.crc64)),
        *version_header(bucket, version),
    ]


async def put_or_copy(context: OssContext, call: OssCall) -> Reply:
    """PutObject, or CopyObject when `x-oss-copy-source` is present."""
    if "x-oss-copy-source" in call.headers:
        return await copy_object(context, call)
    callback = requested_callback(call)  # a bad one is refused before anything is stored
    bucket = await _bucket(context, call)
    attrs = attrs_from_headers(call, bucket)
    outcome = await context.objects.put(
        bucket,
        _key(call),
        call.body_stream(),
        expected_size=call.declared_size(),
        attrs=attrs,
        content_md5=call.headers.get("content-md5"),
        forbid_overwrite=parse_bool(call.headers.get("x-oss-forbid-overwrite")),
        origin=call.origin,
    )
    version = outcome.version
    md5 = base64.b64encode(bytes.fromhex(version.etag)).decode("ascii")
    reply = Reply(200, [*_write_headers(bucket, version), ("Content-MD5", md5)])
    return with_callback(call, callback, reply, bucket.name, version, PUT_OBJECT_CALLBACK)


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id) of `x-oss-copy-source: /bucket/url-encoded-key[?versionId=]`."""
    source, _, query = value.partition("?")
    version_id = None
    if query.startswith("versionId="):
        version_id = unquote(query[len("versionId=") :])
    source = source[1:] if source.startswith("/") else source
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise ServiceError(
            "InvalidArgument",
            "x-oss-copy-source must be /<bucket>/<url-encoded key>[?versionId=<id>].",
            {"ArgumentName": "x-oss-copy-source", "ArgumentValue": value},
        )
    return bucket, unquote(key), version_id


async def copy_source(context: OssContext, call: OssCall) -> tuple[Bucket, ObjectVersion]:
    """The source version of a copy, checked: exists, readable by the caller, conditions."""
    name, key, version_id = parse_copy_source(call.headers["x-oss-copy-source"])
    bucket = await context.buckets.get(name)
    account = _account(call)
    try:
        source = await context.objects.head(bucket, key, version_id)
    except ServiceError as error:
        access.require(account, bucket, None, write=False)
        if error.code == "MethodNotAllowed":
            raise no_such_key(key) from None
        raise
    access.require(account, bucket, source.acl, write=False)
    try:
        conditions.check(
            _conditions(call, "x-oss-copy-source-"), source.etag, source.last_modified_ms
        )
    except ServiceError as error:
        if error.code == conditions.NOT_MODIFIED:
            raise ServiceError(
                "PreconditionFailed", "At least one of the preconditions failed."
            ) from None
        raise
    context.objects.check_readable(source)
    return bucket, source


async def copy_object(context: OssContext, call: OssCall) -> Reply:
    """CopyObject: COPY or REPLACE metadata, Copy or Replace tags."""
    bucket = await _bucket(context, call)
    source_bucket, source = await copy_source(context, call)
    requested = attrs_from_headers(call, bucket)
    replace_meta = call.headers.get("x-oss-metadata-directive", "COPY").upper() == "REPLACE"
    replace_tags = call.headers.get("x-oss-tagging-directive", "Copy").lower() == "replace"
    attrs = ObjectAttrs(
        headers=requested.headers if replace_meta else dict(source.headers),
        meta=requested.meta if replace_meta else dict(source.meta),
        acl=requested.acl,
        storage_class=requested.storage_class,
        tags=requested.tags if replace_tags else dict(source.tags),
    )
    outcome = await context.objects.copy(
        source,
        bucket,
        _key(call),
        attrs,
        parse_bool(call.headers.get("x-oss-forbid-overwrite")),
        call.origin,
    )
    version = outcome.version
    headers = [*_write_headers(bucket, version), ("Content-Type", XML_TYPE)]
    if source_bucket.versioning:
        headers.append(("x-oss-copy-source-version-id", source.version_id))
    body = document(
        "CopyObjectResult",
        [el("ETag", quoted(version.etag)), el("LastModified", iso8601(version.last_modified_ms))],
    )
    return Reply(200, headers, body)


async def append_object(context: OssContext, call: OssCall) -> Reply:
    """AppendObject: `position` must equal the object's length."""
    raw = call.params.get("position")
    if raw is None:
        raise ServiceError("MissingArgument", "AppendObject needs the position parameter.")
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit() alone takes "²" and "١"
        raise ServiceError(
            "InvalidArgument",
            "position must be a non-negative integer.",
            {"ArgumentName": "position", "ArgumentValue": raw},
        )
    bucket = await _bucket(context, call)
    outcome = await context.objects.append(
        bucket,
        _key(call),
        int(raw),
        call.body_stream(),
        expected_size=call.declared_size(),
        attrs=attrs_from_headers(call, bucket),
        content_md5=call.headers.get("content-md5"),
        origin=call.origin,
    )
    version = outcome.version
    headers = [
        *_write_headers(bucket, version),
        ("x-oss-next-append-position", str(version.size)),
    ]
    return Reply(200, headers)


async def delete_object(context: OssContext, call: OssCall) -> Reply:
    """DeleteObject: 204 whatever there was; marker headers only when true."""
    bucket = await _bucket(context, call)
    outcome = await context.objects.delete(
        bucket, _key(call), call.params.get("versionId"), call.origin
    )
    headers: list[tuple[str, str]] = []
    if outcome.marker is not None:
        headers.append(("x-oss-delete-marker", "true"))
        headers.append(("x-oss-version-id", outcome.marker.version_id))
    elif call.params.get("versionId") is not None:
        headers.append(("x-oss-version-id", call.params["versionId"]))
    return Reply(204, headers)


def _delete_request(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    root = parse(body)
    if local_name(root) != "Delete":
        raise malformed("the root element must be Delete.")
    quiet = (text(fields(root).get("Quiet")) or "false").strip().lower() == "true"
    items: list[tuple[str, str | None]] = []
    for node in root:
        if local_name(node) != "Object":
            continue
        children = fields(node)
        key = text(children.get("Key"))
        if not key:
            raise malformed("every Object needs a Key.")
        items.append((key, text(children.get("VersionId"))))
    if not items or len(items) > MAX_DELETE_OBJECTS:
        raise malformed(f"a Delete request names 1 to {MAX_DELETE_OBJECTS} objects.")
    return quiet, items


async def delete_multiple(context: OssContext, call: OssCall) -> Reply:
    """DeleteMultipleObjects: Content-MD5 required, quiet mode lists nothing."""
    if "content-md5" not in call.headers:
        raise ServiceError("MissingArgument", "DeleteMultipleObjects needs a Content-MD5 header.")
    body = await call.read_body()
    check_md5_bytes(call.headers["content-md5"], body)
    quiet, items = _delete_request(body)
    bucket = await _bucket(context, call)
    outcomes = await context.objects.delete_many(bucket, items, call.origin)
    encode = Encoder(call.params.get("encoding-type"))
    parts = [encode.element()]
    if not quiet:
        for (key, version_id), outcome in zip(items, outcomes, strict=True):
            entry = [el("Key", encode(key))]
            if version_id is not None:
                entry.append(el("VersionId", version_id))
            if outcome.marker is not None:
                entry.append(el("DeleteMarker", True))
                entry.append(el("DeleteMarkerVersionId", outcome.marker.version_id))
            parts.append("<Deleted>" + "".join(entry) + "</Deleted>")
    return Reply(200, [("Content-Type", XML_TYPE)], document("DeleteResult", parts))


async def _owned_version(context: OssContext, call: OssCall) -> tuple[Bucket, ObjectVersion]:
    bucket = await _bucket(context, call)
    version = await context.objects.head(bucket, _key(call), call.params.get("versionId"))
    return bucket, version


async def get_acl(context: OssContext, call: OssCall) -> Reply:
    """GetObjectAcl."""
    bucket, version = await _owned_version(context, call)
    body = document(
        "AccessControlPolicy",
        [owner(bucket.owner), f"<AccessControlList>{el('Grant', version.acl)}</AccessControlList>"],
    )
    return Reply(200, [("Content-Type", XML_TYPE), *version_header(bucket, version)], body)


async def put_acl(context: OssContext, call: OssCall) -> Reply:
    """PutObjectAcl (the ACL travels in `x-oss-object-acl`)."""
    acl = call.headers.get("x-oss-object-acl")
    if acl is None:
        raise ServiceError("MissingArgument", "PutObjectAcl needs the x-oss-object-acl header.")
    check_choice(acl, OBJECT_ACLS, "x-oss-object-acl")
    bucket, version = await _owned_version(context, call)
    await context.objects.update(version, acl=acl)
    return Reply(200, version_header(bucket, version))


async def get_tags(context: OssContext, call: OssCall) -> Reply:
    """GetObjectTagging (an empty TagSet when untagged)."""
    bucket, version = await _owned_version(context, call)
    headers = [("Content-Type", XML_TYPE), *version_header(bucket, version)]
    return Reply(200, headers, render_tagging(version.tags))


async def put_tags(context: OssContext, call: OssCall) -> Reply:
    """PutObjectTagging: replace every tag."""
    tags = parse_tagging(await call.read_body())
    bucket, version = await _owned_version(context, call)
    await context.objects.update(version, tags=tags)
    return Reply(200, version_header(bucket, version))


async def delete_tags(context: OssContext, call: OssCall) -> Reply:
    """DeleteObjectTagging."""
    bucket, version = await _owned_version(context, call)
    await context.objects.update(version, tags={})
    return Reply(204, version_header(bucket, version))


async def restore(context: OssContext, call: OssCall) -> Reply:
    """RestoreObject: 202 started, 200 extended, 409 in progress."""
    days, tier = 1, None
    body = await call.read_body()
    if body.strip():
        root = parse(body)
        if local_name(root) != "RestoreRequest":
            raise malformed("the root element must be RestoreRequest.")
        children = fields(root)
        raw_days = text(children.get("Days"))
        if raw_days is not None:
            if not (raw_days.strip().isascii() and raw_days.strip().isdigit()):
                raise malformed("Days must be a positive integer.")
            days = int(raw_days)
        job = children.get("JobParameters")
        if job is not None:
            tier = text(fields(job).get("Tier"))
    bucket, version = await _owned_version(context, call)
    status, version = await context.objects.restore(version, days, tier)
    headers = version_header(bucket, version)
    if tier:
        headers.append(("x-oss-object-restore-priority", tier))
    return Reply(status, headers)
