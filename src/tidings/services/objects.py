"""Objects: write, read, delete, copy and append, on the blob store and the metadata store.

A body is streamed into a new blob first; the metadata row that makes it visible is
committed only after the blob is durable, and a blob the commit did not adopt is
deleted. So no half-written object is ever visible, and a crash leaves at worst an
unreferenced blob for the start-up sweep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from tidings.blobs.base import BlobInfo, BlobStore, BodyTooLong, IncompleteBody
from tidings.blobs.checksums import crc64
from tidings.clock import Clock
from tidings.errors import ServiceError, position_not_equal
from tidings.models import Outbox, Publication
from tidings.object_models import (
    APPENDABLE,
    NORMAL,
    RESTORED,
    Bucket,
    DeleteOutcome,
    NewObject,
    ObjectVersion,
    WriteOutcome,
)
from tidings.services import conditions
from tidings.services.blob_gc import BlobCollector
from tidings.services.object_events import (
    ObjectEvents,
    Origin,
    appended,
    pending_events,
    read,
    removed,
    written,
)
from tidings.services.object_rules import (
    ARCHIVE_CLASSES,
    MAX_OBJECT_SIZE,
    appendable_etag,
    check_key,
    new_version_id,
)
from tidings.services.restore import effective_restore, request_restore
from tidings.store.sqlite_object_store import SqliteObjectStore


@dataclass(frozen=True, slots=True)
class ObjectAttrs:
    """Attributes a write gives the new object (see NewObject)."""

    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    acl: str = "default"
    storage_class: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def no_such_key(key: str, marker: ObjectVersion | None = None) -> ServiceError:
    """The key has no current version (or it is a delete marker)."""
    headers = {}
    if marker is not None:
        headers = {"x-oss-delete-marker": "true", "x-oss-version-id": marker.version_id}
    return ServiceError("NoSuchKey", "The specified key does not exist.", {"Key": key}, headers)


def check_md5_bytes(content_md5: str, body: bytes) -> None:
    """Compare a Content-MD5 header with a body held in memory."""
    _compare_md5(content_md5, hashlib.md5(body).hexdigest())


def check_md5(content_md5: str | None, info: BlobInfo) -> None:
    """Compare a Content-MD5 header with the received body's MD5."""
    if content_md5 is not None:
        _compare_md5(content_md5, info.md5_hex)


def _compare_md5(content_md5: str, md5_hex: str) -> None:
    try:
        expected = base64.b64decode(content_md5, validate=True)
    except (binascii.Error, ValueError):
        expected = b""
    if len(expected) != 16:
        raise ServiceError("InvalidDigest", "The Content-MD5 you specified is not valid.")
    if expected.hex() != md5_hex:
        raise ServiceError(
            "InvalidDigest", "The Content-MD5 you specified did not match what was received."
        )


# Bodies up to this size live in the object's row: a PUT is then one group-committed
# transaction instead of a file create, fsync, rename and directory fsync, and a GET
# one read. Larger bodies stream through the blob store.
INLINE_MAX_BYTES = 64 * 1024

PUT_OBJECT = "ObjectCreated:PutObject"
POST_OBJECT = "ObjectCreated:PostObject"
COPY_OBJECT = "ObjectCreated:CopyObject"
APPEND_OBJECT = "ObjectCreated:AppendObject"
GET_OBJECT = "ObjectDownloaded:GetObject"
DELETE_OBJECT = "ObjectRemoved:DeleteObject"
DELETE_OBJECTS = "ObjectRemoved:DeleteObjects"


class ObjectService:
    """The object operations of the OSS API, independent of HTTP."""

    def __init__(
        self,
        store: SqliteObjectStore,
        blobs: BlobStore,
        clock: Clock,
        collector: BlobCollector,
        max_object_size: int = MAX_OBJECT_SIZE,
        events: ObjectEvents | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock
        self.collector = collector
        self.max_object_size = max_object_size
        # Set once the rules are wired up: every change then stores its events with it.
        self.events = events

    def new_object(
        self, bucket: Bucket, info: BlobInfo, attrs: ObjectAttrs, etag: str | None = None
    ) -> NewObject:
        """A Normal object of a written blob with the given attributes."""
        return NewObject(
            blob_id=info.blob_id,
            size=info.size,
            etag=etag or info.etag,
            crc64=info.crc64,
            object_type=NORMAL,
            storage_class=attrs.storage_class or bucket.storage_class,
            acl=attrs.acl,
            headers=attrs.headers,
            meta=attrs.meta,
            tags=attrs.tags,
        )

    async def write_blob(
        self, body: AsyncIterator[bytes], expected_size: int | None, content_md5: str | None
    ) -> BlobInfo:
        """Stream a body into a new blob (not yet visible), checking its Content-MD5."""
        info = await self.blobs.write(
            body, expected_size=expected_size, max_size=self.max_object_size
        )
        try:
            check_md5(content_md5, info)
        except ServiceError:
            await self.blobs.delete(info.blob_id)
            raise
        return info

    async def put(
        self,
        bucket: Bucket,
        key: str,
        body: AsyncIterator[bytes],
        *,
        expected_size: int | None,
        attrs: ObjectAttrs,
        content_md5: str | None = None,
        forbid_overwrite: bool = False,
        origin: Origin | None = None,
    ) -> WriteOutcome:
        """PutObject: stream the body into a blob (or, when small, into the object's row),
        then make it the current version."""
        check_key(key)
        if expected_size is not None and expected_size <= INLINE_MAX_BYTES:
            data, info = await self.read_small(body, expected_size, content_md5)
            new = replace(self.new_object(bucket, info, attrs), blob_id=None, body=data)
        else:
            info = await self.write_blob(body, expected_size, content_md5)
            new = self.new_object(bucket, info, attrs)
        return await self.commit_blob(bucket, key, new, forbid_overwrite, origin, PUT_OBJECT)

    async def commit_blob(
        self,
        bucket: Bucket,
        key: str,
        new: NewObject,
        forbid_overwrite: bool = False,
        origin: Origin | None = None,
        event_name: str = PUT_OBJECT,
    ) -> WriteOutcome:
        """Make a written blob the current version of `key` (with the event `event_name`
        when a rule wants it); delete the blob if that fails."""
        now_ms = self.clock.now_ms()
        try:
            pending = await pending_events(self.events, bucket, key, event_name, origin, written)
            outcome = await self.store.put_version(
                bucket.id,
                key,
                new,
                new_version_id(now_ms),
                now_ms,
                forbid_overwrite,
                outbox=pending.outbox if pending else None,
            )
        except BaseException:
            if new.blob_id is not None:
                await self.blobs.delete(new.blob_id)
            raise
        if pending:
            pending.done()
        self.collector.released(outcome.released_blobs)
        return outcome

    async def record_read(
        self, bucket: Bucket, version: ObjectVersion, start: int, end: int, origin: Origin | None
    ) -> None:
        """The ObjectDownloaded:GetObject event of a read, committed before the response."""
        pending = await pending_events(
            self.events,
            bucket,
            version.key,
            GET_OBJECT,
            origin,
            lambda _: read(version, start, end),
        )
        if pending:
            await self.store.record_events(pending.outbox)
            pending.done()

    async def head(
        self, bucket: Bucket, key: str, version_id: str | None, with_body: bool = False
    ) -> ObjectVersion:
        """The version a GET/HEAD addresses; NoSuchKey / NoSuchVersion / MethodNotAllowed.

        `with_body` also loads a small object's bytes, so a GET needs a single read.
        """
        check_key(key)
        if with_body:
            version = await self.store.get_version_with_body(bucket.id, key, version_id)
        else:
            version = await self.store.get_version(bucket.id, key, version_id)
        if version is None:
            if version_id is None:
                raise no_such_key(key)
            raise ServiceError(
                "NoSuchVersion",
                "The specified version does not exist.",
                {"Key": key, "VersionId": version_id},
            )
        if version.is_delete_marker:
            if version_id is None:
                raise no_such_key(key, version)
            raise ServiceError(
                "MethodNotAllowed",
                "The specified version is a delete marker.",
                {"Key": key},
                {"x-oss-delete-marker": "true", "x-oss-version-id": version.version_id},
            )
        return replace(version, restore=effective_restore(version, self.clock.now_ms()))

    def check_readable(self, version: ObjectVersion) -> None:
        """Data of an archive-class object needs a completed restore."""
        if version.storage_class in ARCHIVE_CLASSES and version.restore.state != RESTORED:
            raise ServiceError(
                "InvalidObjectState",
                f"The operation is not valid for the object's state: a {version.storage_class}"
                " object must be restored (RestoreObject) before its data can be read.",
                {"Key": version.key},
            )

    async def open(
        self,
        bucket: Bucket,
        key: str,
        version_id: str | None,
        preconditions: conditions.Conditions,
    ) -> ObjectVersion:
        """The version a GET reads, after checking conditions and archive state."""
        version = await self.head(bucket, key, version_id, with_body=True)
        conditions.check(preconditions, version.etag, version.last_modified_ms)
        self.check_readable(version)
        return version

    def read(
        self, version: ObjectVersion, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of a version's body."""
        if version.blob_id is not None:
            return self.blobs.read(version.blob_id, start, end)
        return self._read_inline(version, start, end)

    async def _read_inline(
        self, version: ObjectVersion, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        body = version.body
        if body is None and version.size > 0:
            body = await self.store.read_body(version.seq)
            if body is None:
                raise no_such_key(version.key)  # overwritten or deleted meanwhile
        if body:
            yield body[start:end]

    async def read_small(
        self, body: AsyncIterator[bytes], expected_size: int, content_md5: str | None
    ) -> tuple[bytes, BlobInfo]:
        """A small body read whole (it goes into the object's row), with its checksums."""
        chunks: list[bytes] = []
        received = 0
        async for chunk in body:
            received += len(chunk)
            if received > expected_size:
                raise BodyTooLong(expected_size)
            chunks.append(chunk)
        if received < expected_size:
            raise IncompleteBody(expected_size, received)
        data = b"".join(chunks)
        info = BlobInfo("", len(data), hashlib.md5(data).hexdigest(), crc64(data))
        check_md5(content_md5, info)
        return data, info

    async def delete(
        self, bucket: Bucket, key: str, version_id: str | None, origin: Origin | None = None
    ) -> DeleteOutcome:
        """DeleteObject (idempotent); an event only when something was removed."""
        check_key(key)
        now_ms = self.clock.now_ms()
        pending = await pending_events(self.events, bucket, key, DELETE_OBJECT, origin, removed)
        outcome = await self.store.delete_object(
            bucket.id,
            key,
            version_id,
            new_version_id(now_ms),
            now_ms,
            outbox=pending.outbox if pending else None,
        )
        if pending:
            pending.done()
        self.collector.released(outcome.released_blobs)
        return outcome

    async def delete_many(
        self, bucket: Bucket, items: list[tuple[str, str | None]], origin: Origin | None = None
    ) -> list[DeleteOutcome]:
        """DeleteMultipleObjects: every item in one transaction, in request order, with one
        event per key actually removed."""
        for key, _ in items:
            check_key(key)
        now_ms = self.clock.now_ms()
        per_key = [
            await pending_events(self.events, bucket, key, DELETE_OBJECTS, origin, removed)
            for key, _ in items
        ]
        wanted = [p for p in per_key if p is not None]
        outbox = None
        if wanted:

            def build(outcomes: list[DeleteOutcome]) -> list[Publication]:
                built: list[Publication] = []
                for pending, outcome in zip(per_key, outcomes, strict=True):
                    if pending is not None:
                        built.extend(pending.outbox.build(outcome))
                return built

            outbox = Outbox(build)
        outcomes = await self.store.delete_objects(
            bucket.id, [(k, v, new_version_id(now_ms)) for k, v in items], now_ms, outbox=outbox
        )
        if outbox is not None:
            wanted[0].emission.committed(outbox.published)
        for outcome in outcomes:
            self.collector.released(outcome.released_blobs)
        return outcomes

    async def copy(
        self,
        source: ObjectVersion,
        dest_bucket: Bucket,
        dest_key: str,
        attrs: ObjectAttrs,
        forbid_overwrite: bool = False,
        origin: Origin | None = None,
    ) -> WriteOutcome:
        """CopyObject: a new version sharing the source's bytes (hard links, no copy)."""
        check_key(dest_key)
        self.check_readable(source)
        blob_id = None
        body = None
        if source.blob_id is not None:
            blob_id = (await self.blobs.compose([source.blob_id])).blob_id
        elif source.size > 0:
            body = (
                source.body if source.body is not None else await self.store.read_body(source.seq)
            )
            if body is None:
                raise no_such_key(source.key)  # overwritten or deleted meanwhile
        new = NewObject(
            blob_id=blob_id,
            size=source.size,
            etag=source.etag,
            crc64=source.crc64,
            object_type=source.object_type if source.object_type != APPENDABLE else NORMAL,
            storage_class=attrs.storage_class or dest_bucket.storage_class,
            acl=attrs.acl,
            headers=attrs.headers,
            meta=attrs.meta,
            tags=attrs.tags,
            body=body,
        )
        return await self.commit_blob(
            dest_bucket, dest_key, new, forbid_overwrite, origin, COPY_OBJECT
        )

    async def append(
        self,
        bucket: Bucket,
        key: str,
        position: int,
        body: AsyncIterator[bytes],
        *,
        expected_size: int | None,
        attrs: ObjectAttrs,
        content_md5: str | None = None,
        origin: Origin | None = None,
    ) -> WriteOutcome:
        """AppendObject: the new bytes are composed after the current ones without a copy."""
        check_key(key)
        current = await self.store.get_version(bucket.id, key, None)
        if current is not None and not current.is_delete_marker:
            if current.object_type != APPENDABLE:
                raise ServiceError(
                    "ObjectNotAppendable", "The object is not appendable.", {"Key": key}
                )
            if position != current.size:
                raise position_not_equal(current.size)
        elif position != 0:
            raise position_not_equal(0)
        limit = self.max_object_size - position
        info = await self.blobs.write(body, expected_size=expected_size, max_size=limit)
        try:
            check_md5(content_md5, info)
        except ServiceError:
            await self.blobs.delete(info.blob_id)
            raise
        whole = info
        if position > 0 and current is not None and current.blob_id is not None:
            whole = await self.blobs.compose([current.blob_id, info.blob_id])
            await self.blobs.delete(info.blob_id)
        if position > 0 and current is not None:
            new = NewObject(
                blob_id=whole.blob_id,
                size=whole.size,
                etag=appendable_etag(whole.crc64, whole.size),
                crc64=whole.crc64,
                object_type=APPENDABLE,
                storage_class=current.storage_class,
                acl=current.acl,
                headers=current.headers,
                meta=current.meta,
                tags=current.tags,
            )
        else:
            new = replace(
                self.new_object(bucket, info, attrs, appendable_etag(info.crc64, info.size)),
                object_type=APPENDABLE,
            )
        now_ms = self.clock.now_ms()
        try:
            pending = await pending_events(
                self.events, bucket, key, APPEND_OBJECT, origin, appended(position)
            )
            outcome = await self.store.append(
                bucket.id,
                key,
                position,
                new,
                new_version_id(now_ms),
                now_ms,
                outbox=pending.outbox if pending else None,
            )
        except BaseException:
            if new.blob_id is not None:
                await self.blobs.delete(new.blob_id)
            raise
        if pending:
            pending.done()
        self.collector.released(outcome.released_blobs)
        return outcome

    async def restore(
        self, version: ObjectVersion, days: int, tier: str | None
    ) -> tuple[int, ObjectVersion]:
        """RestoreObject: the status (202 started, 200 extended) and the updated version."""
        status, changes = request_restore(version, days, tier, self.clock.now_ms())
        return status, await self.update(version, **changes)

    async def update(self, version: ObjectVersion, **changes: object) -> ObjectVersion:
        """Change attributes of a version in place (ACL, tags, storage class, restore)."""
        updated = await self.store.update_version(version.seq, dict(changes))
        if updated is None:
            raise no_such_key(version.key)
        return updated
