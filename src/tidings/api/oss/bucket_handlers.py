"""Service- and bucket-level operations of the OSS API (spec section 9)."""

from __future__ import annotations

from tidings.api.oss import listing
from tidings.api.oss.call import OssCall
from tidings.api.oss.context import OssContext, Reply
from tidings.api.oss.lifecycle_xml import parse_lifecycle, render_lifecycle
from tidings.api.oss.wire import XML_TYPE, document, el, iso8601, owner
from tidings.api.xml import fields, local_name, malformed, parse, text
from tidings.errors import ServiceError
from tidings.object_models import Bucket
from tidings.services.lifecycle_rules import config_from_json, config_to_json
from tidings.services.object_rules import check_tags, parse_int

DEFAULT_MAX_BUCKETS = 100


def _xml(root: str, parts: list[str]) -> Reply:
    return Reply(200, [("Content-Type", XML_TYPE)], document(root, parts))


def _account(call: OssCall) -> str:
    assert call.auth.key is not None  # the dispatcher refused anonymous callers
    return call.auth.key.account_id


async def _bucket(context: OssContext, call: OssCall) -> Bucket:
    assert call.bucket is not None
    return await context.buckets.get(call.bucket)


def _endpoints(context: OssContext, call: OssCall) -> list[str]:
    host = call.host or "127.0.0.1"
    return [
        el("ExtranetEndpoint", host),
        el("IntranetEndpoint", host),
        el("Location", context.location),
    ]


async def list_buckets(context: OssContext, call: OssCall) -> Reply:
    """ListBuckets (GetService)."""
    params = call.params
    prefix = params.get("prefix", "")
    marker = params.get("marker", "")
    limit = parse_int(params.get("max-keys"), "max-keys", 1, 1000, DEFAULT_MAX_BUCKETS)
    found = await context.buckets.list(_account(call), prefix, marker, limit + 1)
    page, truncated = found[:limit], len(found) > limit
    parts = [
        el("Prefix", prefix),
        el("Marker", marker),
        el("MaxKeys", limit),
        el("IsTruncated", truncated),
    ]
    if truncated:
        parts.append(el("NextMarker", page[-1].name))
    parts.append(owner(_account(call)))
    entries = [
        "<Bucket>"
        + el("CreationDate", iso8601(b.created_ms))
        + "".join(_endpoints(context, call))
        + el("Name", b.name)
        + el("Region", context.region)
        + el("StorageClass", b.storage_class)
        + "</Bucket>"
        for b in page
    ]
    parts.append("<Buckets>" + "".join(entries) + "</Buckets>")
    return _xml("ListAllMyBucketsResult", parts)


async def put_bucket(context: OssContext, call: OssCall) -> Reply:
    """PutBucket: create (or, for the owner, update the ACL of) a bucket."""
    assert call.bucket is not None
    storage_class, redundancy = "Standard", "LRS"
    body = await call.read_body()
    if body.strip():
        root = parse(body)
        if local_name(root) != "CreateBucketConfiguration":
            raise malformed("the root element must be CreateBucketConfiguration.")
        children = fields(root)
        storage_class = text(children.get("StorageClass")) or storage_class
        redundancy = text(children.get("DataRedundancyType")) or redundancy
    await context.buckets.create(
        call.bucket,
        _account(call),
        call.headers.get("x-oss-acl", "private"),
        storage_class,
        redundancy,
    )
    return Reply(200, [("Location", f"/{call.bucket}")])


async def delete_bucket(context: OssContext, call: OssCall) -> Reply:
    """DeleteBucket: only when empty."""
    assert call.bucket is not None
    await context.buckets.delete(call.bucket)
    return Reply(204)


async def head_bucket(context: OssContext, call: OssCall) -> Reply:
    """HEAD on a bucket: 200 when it exists."""
    await _bucket(context, call)
    return Reply(200)


async def get_info(context: OssContext, call: OssCall) -> Reply:
    """GetBucketInfo."""
    bucket = await _bucket(context, call)
    parts = [
        el("AccessMonitor", "Disabled"),
        el("CreationDate", iso8601(bucket.created_ms)),
        *_endpoints(context, call),
        el("StorageClass", bucket.storage_class),
        el("TransferAcceleration", "Disabled"),
        el("CrossRegionReplication", "Disabled"),
        el("DataRedundancyType", bucket.redundancy),
        el("Name", bucket.name),
        el("ResourceGroupId", "rg-default"),
        owner(bucket.owner),
        f"<AccessControlList>{el('Grant', bucket.acl)}</AccessControlList>",
        el("Comment", ""),
    ]
    if bucket.versioning:
        parts.append(el("Versioning", bucket.versioning))
    parts.append(
        "<ServerSideEncryptionRule><SSEAlgorithm>None</SSEAlgorithm></ServerSideEncryptionRule>"
    )
    parts.append("<BucketPolicy><LogBucket></LogBucket><LogPrefix></LogPrefix></BucketPolicy>")
    return _xml("BucketInfo", ["<Bucket>" + "".join(parts) + "</Bucket>"])


async def get_location(context: OssContext, call: OssCall) -> Reply:
    """GetBucketLocation."""
    await _bucket(context, call)
    return Reply(
        200, [("Content-Type", XML_TYPE)], document("LocationConstraint", [context.location])
    )


_STAT_FIELDS = [
    ("Storage", "Storage"),
    ("ObjectCount", "ObjectCount"),
    ("MultipartUploadCount", "MultipartUploadCount"),
    ("LiveChannelCount", ""),
    ("LastModifiedTime", "LastModified"),
    ("StandardStorage", "StandardStorage"),
    ("StandardObjectCount", "StandardCount"),
    ("InfrequentAccessStorage", "IAStorage"),
    ("InfrequentAccessRealStorage", "IAStorage"),
    ("InfrequentAccessObjectCount", "IACount"),
    ("ArchiveStorage", "ArchiveStorage"),
    ("ArchiveRealStorage", "ArchiveStorage"),
    ("ArchiveObjectCount", "ArchiveCount"),
    ("ColdArchiveStorage", "ColdArchiveStorage"),
    ("ColdArchiveRealStorage", "ColdArchiveStorage"),
    ("ColdArchiveObjectCount", "ColdArchiveCount"),
    ("DeepColdArchiveStorage", "DeepColdArchiveStorage"),
    ("DeepColdArchiveRealStorage", "DeepColdArchiveStorage"),
    ("DeepColdArchiveObjectCount", "DeepColdArchiveCount"),
    ("MultipartPartCount", "MultipartPartCount"),
    ("DeleteMarkerCount", "DeleteMarkerCount"),
]


async def get_stat(context: OssContext, call: OssCall) -> Reply:
    """GetBucketStat."""
    bucket = await _bucket(context, call)
    stats = await context.buckets.stats(bucket)
    stats["LastModified"] = stats.get("LastModified", 0) // 1000
    return _xml("BucketStat", [el(name, stats.get(key, 0)) for name, key in _STAT_FIELDS])


def _acl_document(account: str, grant: str) -> Reply:
    return _xml(
        "AccessControlPolicy",
        [owner(account), f"<AccessControlList>{el('Grant', grant)}</AccessControlList>"],
    )


async def get_acl(context: OssContext, call: OssCall) -> Reply:
    """GetBucketAcl."""
    bucket = await _bucket(context, call)
    return _acl_document(bucket.owner, bucket.acl)


async def put_acl(context: OssContext, call: OssCall) -> Reply:
    """PutBucketAcl (the ACL travels in `x-oss-acl`)."""
    assert call.bucket is not None
    acl = call.headers.get("x-oss-acl")
    if acl is None:
        raise ServiceError("MissingArgument", "PutBucketAcl needs the x-oss-acl header.")
    await context.buckets.set_acl(call.bucket, acl)
    return Reply(200)


async def get_versioning(context: OssContext, call: OssCall) -> Reply:
    """GetBucketVersioning (no Status when versioning was never enabled)."""
    bucket = await _bucket(context, call)
    parts = [el("Status", bucket.versioning)] if bucket.versioning else []
    return _xml("VersioningConfiguration", parts)


async def put_versioning(context: OssContext, call: OssCall) -> Reply:
    """PutBucketVersioning: Enabled or Suspended."""
    assert call.bucket is not None
    root = parse(await call.read_body())
    if local_name(root) != "VersioningConfiguration":
        raise malformed("the root element must be VersioningConfiguration.")
    status = text(fields(root).get("Status"))
    if status is None:
        raise malformed("VersioningConfiguration needs a Status.")
    await context.buckets.set_versioning(call.bucket, status.strip())
    return Reply(200)


async def list_objects(context: OssContext, call: OssCall) -> Reply:
    """ListObjects / ListObjectsV2."""
    return await listing.list_objects(context, call, await _bucket(context, call))


async def list_versions(context: OssContext, call: OssCall) -> Reply:
    """ListObjectVersions."""
    return await listing.list_versions(context, call, await _bucket(context, call))


async def get_lifecycle(context: OssContext, call: OssCall) -> Reply:
    """GetBucketLifecycle: the stored rules, or NoSuchLifecycle."""
    bucket = await _bucket(context, call)
    if not bucket.lifecycle:
        raise ServiceError(
            "NoSuchLifecycle",
            "The lifecycle configuration does not exist.",
            {"BucketName": bucket.name},
        )
    body = render_lifecycle(config_from_json(bucket.lifecycle))
    return Reply(200, [("Content-Type", XML_TYPE)], body)


async def put_lifecycle(context: OssContext, call: OssCall) -> Reply:
    """PutBucketLifecycle: replace the whole configuration."""
    assert call.bucket is not None
    overlap = call.headers.get("x-oss-allow-same-action-overlap", "").lower() == "true"
    config = parse_lifecycle(await call.read_body(), overlap)
    await context.buckets.set_lifecycle(call.bucket, config_to_json(config))
    return Reply(200)


async def delete_lifecycle(context: OssContext, call: OssCall) -> Reply:
    """DeleteBucketLifecycle (also when there is none)."""
    assert call.bucket is not None
    await context.buckets.set_lifecycle(call.bucket, None)
    return Reply(204)


def parse_tagging(body: bytes) -> dict[str, str]:
    """A `<Tagging><TagSet><Tag><Key/><Value/></Tag>…` document as a dict."""
    root = parse(body)
    if local_name(root) != "Tagging":
        raise malformed("the root element must be Tagging.")
    tag_set = fields(root).get("TagSet")
    pairs: list[tuple[str, str]] = []
    for tag in tag_set if tag_set is not None else []:
        if local_name(tag) != "Tag":
            continue
        children = fields(tag)
        pairs.append((text(children.get("Key")) or "", text(children.get("Value")) or ""))
    return check_tags(pairs)


def render_tagging(tags: dict[str, str]) -> bytes:
    """The tagging document; an empty set is `<TagSet/>`'s equivalent."""
    inner = "".join(
        f"<Tag>{el('Key', key)}{el('Value', value)}</Tag>" for key, value in tags.items()
    )
    return document("Tagging", [f"<TagSet>{inner}</TagSet>"])


async def get_tags(context: OssContext, call: OssCall) -> Reply:
    """GetBucketTags: NoSuchTagSet when the bucket has none."""
    bucket = await _bucket(context, call)
    if not bucket.tags:
        raise ServiceError("NoSuchTagSet", "The bucket has no tags.", {"BucketName": bucket.name})
    return Reply(200, [("Content-Type", XML_TYPE)], render_tagging(bucket.tags))


async def put_tags(context: OssContext, call: OssCall) -> Reply:
    """PutBucketTags: replace the tags."""
    assert call.bucket is not None
    await context.buckets.set_tags(call.bucket, parse_tagging(await call.read_body()))
    return Reply(200)


async def delete_tags(context: OssContext, call: OssCall) -> Reply:
    """DeleteBucketTags: all, or only the keys listed in `tagging=k1,k2`."""
    bucket = await _bucket(context, call)
    names = [n for n in call.params.get("tagging", "").split(",") if n]
    remaining = {k: v for k, v in bucket.tags.items() if names and k not in names}
    await context.buckets.set_tags(bucket.name, remaining or None)
    return Reply(204)
