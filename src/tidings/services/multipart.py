"""Multipart uploads: initiate, upload (or copy) parts, complete, abort, list.

Completion composes the listed parts' blobs into one blob by hard links (no byte is
copied or re-read: the CRC-64 is combined from the parts' CRCs), then commits the
object and ends the upload in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from tidings.blobs.base import BlobInfo, BlobStore
from tidings.clock import Clock
from tidings.errors import ServiceError, invalid_argument
from tidings.object_models import (
    MULTIPART,
    NORMAL,
    Bucket,
    NewObject,
    ObjectVersion,
    Part,
    Upload,
    WriteOutcome,
)
from tidings.services.blob_gc import BlobCollector
from tidings.services.object_events import Facts, ObjectEvents, Origin, pending_events, written
from tidings.services.object_rules import MAX_OBJECT_SIZE, check_key, new_upload_id, new_version_id
from tidings.services.objects import ObjectAttrs, check_md5
from tidings.store.sqlite_multipart import no_such_upload
from tidings.store.sqlite_object_store import SqliteObjectStore

INITIATE = "ObjectCreated:InitiateMultipartUpload"
UPLOAD_PART = "ObjectCreated:UploadPart"
COPY_PART = "ObjectCreated:UploadPartCopy"
COMPLETE = "ObjectCreated:CompleteMultipartUpload"
ABORT = "ObjectRemoved:AbortMultipartUpload"

MAX_PART_NUMBER = 10_000
MIN_PART_SIZE = 100 * 1024


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """A part as the CompleteMultipartUpload request names it."""

    number: int
    etag: str


def check_part_number(value: str | None) -> int:
    """A part number from the query: 1-10000."""
    if (
        value is None
        or not (value.isascii() and value.isdigit())  # str.isdigit() alone takes "²"
        or not 1 <= int(value) <= MAX_PART_NUMBER
    ):
        raise ServiceError(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive.",
            {"ArgumentName": "partNumber", "ArgumentValue": value or ""},
        )
    return int(value)


def select_parts(requested: list[CompletedPart], uploaded: dict[int, Part]) -> list[Part]:
    """The uploaded parts a completion names, checked as OSS checks them.

    Numbers strictly ascending (InvalidPartOrder), each uploaded with that ETag
    (InvalidPart), every part but the last at least 100 KiB (EntityTooSmall).
    """
    if not requested:
        raise ServiceError("MalformedXML", "The completion must name at least one part.")
    chosen: list[Part] = []
    previous = 0
    for item in requested:
        if item.number <= previous:
            raise ServiceError("InvalidPartOrder", "The list of parts was not in ascending order.")
        previous = item.number
        part = uploaded.get(item.number)
        if part is None or part.etag.upper() != item.etag.strip().strip('"').upper():
            raise ServiceError(
                "InvalidPart",
                f"Part {item.number} was not uploaded, or its ETag does not match.",
                {"PartNumber": str(item.number), "ETag": item.etag},
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise ServiceError(
                "EntityTooSmall",
                f"Part {part.number} is {part.size} bytes; every part but the last must be"
                f" at least {MIN_PART_SIZE} bytes.",
                {"PartNumber": str(part.number)},
            )
    return chosen


class MultipartService:
    """The multipart operations of the OSS API, independent of HTTP."""

    def __init__(
        self,
        store: SqliteObjectStore,
        blobs: BlobStore,
        clock: Clock,
        collector: BlobCollector,
        events: ObjectEvents | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.clock = clock
        self.collector = collector
        self.events = events

    async def initiate(
        self, bucket: Bucket, key: str, attrs: ObjectAttrs, origin: Origin | None = None
    ) -> Upload:
        """InitiateMultipartUpload: remember the final object's attributes."""
        check_key(key)
        template = NewObject(
            blob_id=None,
            size=0,
            etag="",
            crc64=0,
            object_type=MULTIPART,
            storage_class=attrs.storage_class or bucket.storage_class,
            acl=attrs.acl,
            headers=attrs.headers,
            meta=attrs.meta,
            tags=attrs.tags,
        )
        pending = await pending_events(
            self.events, bucket, key, INITIATE, origin, lambda _: Facts(key, 0, 0, "")
        )
        upload = await self.store.initiate_upload(
            bucket.id,
            key,
            new_upload_id(),
            self.clock.now_ms(),
            template,
            outbox=pending.outbox if pending else None,
        )
        if pending:
            pending.done()
        return upload

    async def get(self, bucket: Bucket, key: str, upload_id: str) -> Upload:
        """An upload in progress, or NoSuchUpload."""
        upload = await self.store.get_upload(bucket.id, key, upload_id)
        if upload is None:
            raise no_such_upload(upload_id)
        return upload

    async def upload_part(
        self,
        bucket: Bucket,
        key: str,
        upload_id: str,
        number: int,
        body: AsyncIterator[bytes],
        *,
        expected_size: int | None,
        content_md5: str | None,
        origin: Origin | None = None,
    ) -> Part:
        """UploadPart: store the part's bytes (replacing an earlier part of that number)."""
        await self.get(bucket, key, upload_id)
        info = await self.blobs.write(body, expected_size=expected_size, max_size=MAX_OBJECT_SIZE)
        try:
            check_md5(content_md5, info)
        except ServiceError:
            await self.blobs.delete(info.blob_id)
            raise
        return await self._store_part(bucket, key, upload_id, number, info, origin, UPLOAD_PART)

    async def copy_part(
        self,
        bucket: Bucket,
        key: str,
        upload_id: str,
        number: int,
        source: ObjectVersion,
        start: int,
        end: int,
        origin: Origin | None = None,
    ) -> Part:
        """UploadPartCopy: bytes [start, end) of `source` become a part."""
        await self.get(bucket, key, upload_id)
        whole = start == 0 and end == source.size
        if source.blob_id is not None and whole and source.object_type == NORMAL:
            # A Normal object's ETag is the MD5 of its bytes: link them, read nothing.
            info = await self.blobs.compose([source.blob_id])
            info = BlobInfo(info.blob_id, info.size, source.etag.lower(), info.crc64)
        else:
            chunks = self._range(source, start, end)
            info = await self.blobs.write(chunks, expected_size=end - start)
        return await self._store_part(bucket, key, upload_id, number, info, origin, COPY_PART)

    async def _range(self, source: ObjectVersion, start: int, end: int) -> AsyncIterator[bytes]:
        if start == end:
            return
        if source.blob_id is not None:
            async for chunk in self.blobs.read(source.blob_id, start, end):
                yield chunk
            return
        # A small object keeps its bytes in its row.
        body = source.body or await self.store.read_body(source.seq)
        if body is None:
            raise ServiceError("NoSuchKey", "The copy source was removed meanwhile.")
        yield body[start:end]

    async def _store_part(
        self,
        bucket: Bucket,
        key: str,
        upload_id: str,
        number: int,
        info: BlobInfo,
        origin: Origin | None,
        event_name: str,
    ) -> Part:
        part = Part(
            number=number,
            blob_id=info.blob_id,
            size=info.size,
            etag=info.md5_hex.upper(),
            crc64=info.crc64,
            last_modified_ms=self.clock.now_ms(),
        )
        facts = Facts(key, part.size, 0, part.etag)
        try:
            pending = await pending_events(
                self.events, bucket, key, event_name, origin, lambda _: facts
            )
            released = await self.store.put_part(
                bucket.id, key, upload_id, part, outbox=pending.outbox if pending else None
            )
        except BaseException:
            await self.blobs.delete(info.blob_id)
            raise
        if pending:
            pending.done()
        self.collector.released(released)
        return part

    async def list_parts(self, upload: Upload, after_number: int, limit: int) -> list[Part]:
        """ListParts: parts above `after_number`."""
        return await self.store.list_parts(upload.id, after_number, limit)

    async def all_parts(self, upload: Upload) -> dict[int, Part]:
        """Every uploaded part by number."""
        parts: dict[int, Part] = {}
        after = 0
        while True:
            page = await self.store.list_parts(upload.id, after, 1000)
            parts.update((part.number, part) for part in page)
            if len(page) < 1000:
                return parts
            after = page[-1].number

    async def complete(
        self,
        bucket: Bucket,
        key: str,
        upload_id: str,
        requested: list[CompletedPart] | None,
        *,
        acl: str | None = None,
        forbid_overwrite: bool = False,
        origin: Origin | None = None,
    ) -> WriteOutcome:
        """CompleteMultipartUpload; `requested` None means every part (x-oss-complete-all)."""
        upload = await self.get(bucket, key, upload_id)
        uploaded = await self.all_parts(upload)
        if requested is None:
            if not uploaded:
                raise invalid_argument("The upload has no parts to complete.")
            requested = [CompletedPart(n, p.etag) for n, p in sorted(uploaded.items())]
        parts = select_parts(requested, uploaded)
        composed = await self.blobs.compose([part.blob_id for part in parts])
        new = NewObject(
            blob_id=composed.blob_id,
            size=composed.size,
            etag=composed.etag,
            crc64=composed.crc64,
            object_type=MULTIPART,
            storage_class=upload.storage_class,
            acl=acl or upload.acl,
            headers=upload.headers,
            meta=upload.meta,
            tags=upload.tags,
        )
        now_ms = self.clock.now_ms()
        try:
            pending = await pending_events(self.events, bucket, key, COMPLETE, origin, written)
            outcome = await self.store.complete_upload(
                bucket.id,
                key,
                upload_id,
                parts,
                new,
                new_version_id(now_ms),
                now_ms,
                forbid_overwrite,
                outbox=pending.outbox if pending else None,
            )
        except BaseException:
            await self.blobs.delete(composed.blob_id)
            raise
        if pending:
            pending.done()
        self.collector.released(outcome.released_blobs)
        return outcome

    async def abort(
        self, bucket: Bucket, key: str, upload_id: str, origin: Origin | None = None
    ) -> None:
        """AbortMultipartUpload: drop the upload and its parts."""
        pending = await pending_events(
            self.events, bucket, key, ABORT, origin, lambda _: Facts(key, 0, 0, "")
        )
        released = await self.store.abort_upload(
            bucket.id, key, upload_id, outbox=pending.outbox if pending else None
        )
        if pending:
            pending.done()
        self.collector.released(released)
