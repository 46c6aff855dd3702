"""The object store's metadata on the embedded SQLite store.

Shares the database, the group-commit writer and the reader pool of `SqliteStore`, so
an object change and the rows that describe it (later: its event rows) commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from tidings.models import Outbox
from tidings.object_models import (
    Bucket,
    DeleteOutcome,
    ListPage,
    NewObject,
    ObjectVersion,
    Part,
    Upload,
    UploadPage,
    WriteOutcome,
)
from tidings.store import sqlite_buckets as buckets
from tidings.store import sqlite_lifecycle as lifecycle
from tidings.store import sqlite_listing as listing
from tidings.store import sqlite_multipart as multipart
from tidings.store import sqlite_objects as ops
from tidings.store.sqlite import SqliteStore
from tidings.store.sqlite_publish import publish_batch
from tidings.store.writer import at_group_end, bounded, is_bounded

T = TypeVar("T")


def _with_outbox(op: Callable[..., T], outbox: Outbox | None) -> Callable[..., T]:
    """`op`, followed in the same transaction by storing the events its result causes
    (with the rest of the group's publications; `outbox.published` is filled then)."""
    if outbox is None:
        return op

    def run(conn: sqlite3.Connection, *args: Any) -> T:
        result = op(conn, *args)
        for publication in outbox.build(result):
            item = (publication, publication.message.publish_ms, outbox.published)
            at_group_end(publish_batch, item)
        return result

    return bounded(run) if is_bounded(op) else run


@bounded
def _no_change(conn: sqlite3.Connection) -> None:
    return None


class SqliteObjectStore:
    """Buckets, object versions and multipart uploads in the SQLite database."""

    def __init__(self, db: SqliteStore) -> None:
        self.db = db

    # -- buckets -------------------------------------------------------------------------

    async def create_bucket(
        self,
        name: str,
        owner: str,
        acl: str,
        storage_class: str,
        redundancy: str,
        now_ms: int,
        max_buckets: int,
    ) -> tuple[Bucket, bool]:
        """Create a bucket (or update the owner's existing one); see `buckets.create_bucket`."""
        return await self.db.writer.run(
            buckets.create_bucket, name, owner, acl, storage_class, redundancy, now_ms, max_buckets
        )

    async def get_bucket(self, name: str) -> Bucket | None:
        """The bucket called `name`, or None."""
        return await self.db.read(buckets.get_bucket, name)

    async def list_buckets(self, owner: str, prefix: str, marker: str, limit: int) -> list[Bucket]:
        """The owner's buckets by name."""
        return await self.db.read(buckets.list_buckets, owner, prefix, marker, limit)

    async def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket."""
        await self.db.writer.run(buckets.delete_bucket, name)

    async def update_bucket(self, name: str, column: str, value: Any) -> Bucket:
        """Set one of acl, versioning, lifecycle, tags."""
        return await self.db.writer.run(buckets.update_bucket, name, column, value)

    async def bucket_stats(self, bucket_id: int) -> dict[str, int]:
        """Counts and sizes for GetBucketStat."""
        return await self.db.read(buckets.bucket_stats, bucket_id)

    # -- versions --------------------------------------------------------------------------

    async def get_version_with_body(
        self, bucket_id: int, key: str, version_id: str | None
    ) -> ObjectVersion | None:
        """Like `get_version`, with a small object's bytes loaded."""
        return await self.db.read(ops.get_version_with_body, bucket_id, key, version_id)

    async def read_body(self, seq: int) -> bytes | None:
        """The bytes a small object keeps in its row."""
        return await self.db.read(ops.read_body, seq)

    async def get_version(
        self, bucket_id: int, key: str, version_id: str | None
    ) -> ObjectVersion | None:
        """A version by id, or the current version (possibly a delete marker)."""
        return await self.db.read(ops.get_version, bucket_id, key, version_id)

    async def put_version(
        self,
        bucket_id: int,
        key: str,
        new: NewObject,
        new_version_id: str,
        now_ms: int,
        forbid_overwrite: bool = False,
        outbox: Outbox | None = None,
    ) -> WriteOutcome:
        """Store a new current version."""
        return await self.db.writer.run(
            _with_outbox(ops.put_version, outbox),
            bucket_id,
            key,
            new,
            new_version_id,
            now_ms,
            forbid_overwrite,
        )

    async def append(
        self,
        bucket_id: int,
        key: str,
        position: int,
        new: NewObject,
        new_version_id: str,
        now_ms: int,
        outbox: Outbox | None = None,
    ) -> WriteOutcome:
        """Create or extend an appendable object."""
        return await self.db.writer.run(
            _with_outbox(ops.append, outbox), bucket_id, key, position, new, new_version_id, now_ms
        )

    async def delete_object(
        self,
        bucket_id: int,
        key: str,
        version_id: str | None,
        marker_version_id: str,
        now_ms: int,
        outbox: Outbox | None = None,
    ) -> DeleteOutcome:
        """Delete a key or one of its versions."""
        return await self.db.writer.run(
            _with_outbox(ops.delete_object, outbox),
            bucket_id,
            key,
            version_id,
            marker_version_id,
            now_ms,
        )

    async def delete_objects(
        self,
        bucket_id: int,
        items: list[tuple[str, str | None, str]],
        now_ms: int,
        outbox: Outbox | None = None,
    ) -> list[DeleteOutcome]:
        """Delete several keys or versions in one transaction."""
        return await self.db.writer.run(
            _with_outbox(ops.delete_objects, outbox), bucket_id, items, now_ms
        )

    async def record_events(self, outbox: Outbox) -> None:
        """Store events that go with no change of their own (a read's)."""
        await self.db.writer.run(_with_outbox(_no_change, outbox))

    async def update_version(self, seq: int, changes: dict[str, Any]) -> ObjectVersion | None:
        """Change attributes of one version in place."""
        return await self.db.writer.run(ops.update_version, seq, changes)

    async def list_objects(
        self, bucket_id: int, prefix: str, delimiter: str, marker: str, limit: int
    ) -> ListPage:
        """One page of current objects."""
        return await self.db.read(listing.list_objects, bucket_id, prefix, delimiter, marker, limit)

    async def list_versions(
        self,
        bucket_id: int,
        prefix: str,
        delimiter: str,
        key_marker: str,
        version_marker: str,
        limit: int,
    ) -> ListPage:
        """One page of versions and delete markers."""
        return await self.db.read(
            listing.list_versions, bucket_id, prefix, delimiter, key_marker, version_marker, limit
        )

    # -- multipart -------------------------------------------------------------------------

    async def initiate_upload(
        self,
        bucket_id: int,
        key: str,
        upload_id: str,
        now_ms: int,
        template: NewObject,
        outbox: Outbox | None = None,
    ) -> Upload:
        """Start a multipart upload."""
        return await self.db.writer.run(
            _with_outbox(multipart.initiate, outbox), bucket_id, key, upload_id, now_ms, template
        )

    async def get_upload(self, bucket_id: int, key: str, upload_id: str) -> Upload | None:
        """An upload in progress, or None."""
        return await self.db.read(multipart.get_upload, bucket_id, key, upload_id)

    async def put_part(
        self, bucket_id: int, key: str, upload_id: str, part: Part, outbox: Outbox | None = None
    ) -> list[str]:
        """Store or replace a part."""
        return await self.db.writer.run(
            _with_outbox(multipart.put_part, outbox), bucket_id, key, upload_id, part
        )

    async def list_parts(self, upload_pk: int, after_number: int, limit: int) -> list[Part]:
        """Parts above a number."""
        return await self.db.read(multipart.list_parts, upload_pk, after_number, limit)

    async def complete_upload(
        self,
        bucket_id: int,
        key: str,
        upload_id: str,
        used_parts: list[Part],
        new: NewObject,
        new_version_id: str,
        now_ms: int,
        forbid_overwrite: bool,
        outbox: Outbox | None = None,
    ) -> WriteOutcome:
        """Make the composed object current and end the upload."""
        return await self.db.writer.run(
            _with_outbox(multipart.complete, outbox),
            bucket_id,
            key,
            upload_id,
            used_parts,
            new,
            new_version_id,
            now_ms,
            forbid_overwrite,
        )

    async def abort_upload(
        self, bucket_id: int, key: str, upload_id: str, outbox: Outbox | None = None
    ) -> list[str]:
        """End an upload without an object."""
        return await self.db.writer.run(
            _with_outbox(multipart.abort, outbox), bucket_id, key, upload_id
        )

    async def list_uploads(
        self,
        bucket_id: int,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        limit: int,
    ) -> UploadPage:
        """One page of uploads in progress."""
        return await self.db.read(
            multipart.list_uploads,
            bucket_id,
            prefix,
            delimiter,
            key_marker,
            upload_id_marker,
            limit,
        )

    async def stale_uploads(self, bucket_id: int, limit: int) -> list[Upload]:
        """A bucket's uploads, oldest first."""
        return await self.db.read(multipart.stale_uploads, bucket_id, limit)

    # -- blob bookkeeping ------------------------------------------------------------------

    async def take_garbage(self, limit: int) -> list[str]:
        """Blob ids released by committed changes, still to delete."""
        return await self.db.read(ops.take_garbage, limit)

    async def forget_garbage(self, blob_ids: list[str]) -> None:
        """Blobs deleted from the blob store."""
        await self.db.writer.run(ops.forget_garbage, blob_ids)

    async def referenced_blobs(self) -> set[str]:
        """Every blob id a row refers to."""
        return await self.db.read(ops.referenced_blobs)

    # -- lifecycle scheduler ---------------------------------------------------------------

    async def lifecycle_buckets(self, after_id: int, limit: int) -> list[Bucket]:
        """Buckets with a lifecycle configuration, by id after `after_id`."""
        return await self.db.read(lifecycle.lifecycle_buckets, after_id, limit)

    async def lifecycle_versions(
        self, bucket_id: int, prefix: str, after: tuple[str, int], limit: int
    ) -> list[lifecycle.ScannedVersion]:
        """A batch of versions under `prefix` after (key, seq) `after`."""
        return await self.db.read(lifecycle.version_batch, bucket_id, prefix, after, limit)

    async def apply_lifecycle(
        self, bucket_id: int, changes: list[lifecycle.PlannedChange], now_ms: int
    ) -> lifecycle.BatchOutcome:
        """Apply a batch of lifecycle actions in one transaction."""
        return await self.db.writer.run(lifecycle.apply_changes, bucket_id, changes, now_ms)

    async def lifecycle_uploads(
        self, bucket_id: int, initiated_until_ms: int, after: tuple[int, int], limit: int
    ) -> list[Upload]:
        """A batch of uploads initiated by `initiated_until_ms`, oldest first."""
        return await self.db.read(
            lifecycle.upload_batch, bucket_id, initiated_until_ms, after, limit
        )

    async def abort_uploads(
        self, bucket_id: int, uploads: list[Upload]
    ) -> tuple[list[Upload], list[str]]:
        """Abort uploads in one transaction; returns those aborted and released blobs."""
        return await self.db.writer.run(lifecycle.abort_uploads, bucket_id, uploads)

    async def restores_due(
        self, phase: lifecycle.RestorePhase, now_ms: int, after: tuple[int, int], limit: int
    ) -> list[tuple[str, ObjectVersion]]:
        """(bucket name, version) of restores whose next step is due."""
        return await self.db.read(lifecycle.restores_due, phase, now_ms, after, limit)

    async def settle_restores(
        self, changes: list[tuple[ObjectVersion, dict[str, Any]]]
    ) -> list[tuple[ObjectVersion, ObjectVersion]]:
        """Write down restore steps in one transaction; returns (before, after) pairs."""
        return await self.db.writer.run(lifecycle.settle_restores, changes)
