"""The SQL of object versions: writes, deletes, lookups and attribute changes.

Every write op runs inside the writer's transaction, so "read the current version,
decide, write" is atomic: two PUTs of one key, or an append racing a PUT, serialise
here. Buckets are in `sqlite_buckets`, listings in `sqlite_listing`, multipart uploads in
`sqlite_multipart`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

from tidings.errors import ServiceError, position_not_equal
from tidings.object_models import (
    APPENDABLE,
    NORMAL,
    NULL_VERSION,
    VERSIONING_ENABLED,
    VERSIONING_NEVER,
    Bucket,
    DeleteOutcome,
    NewObject,
    ObjectVersion,
    Restore,
    WriteOutcome,
)
from tidings.store.sqlite_buckets import BUCKET_COLUMNS, bucket_from_row
from tidings.store.writer import bounded

VERSION_COLUMNS = (
    "id, bucket_id, key, version_id, is_current, is_delete_marker, blob_id, size, etag,"
    " crc64, object_type, storage_class, acl, last_modified_ms, noncurrent_since_ms,"
    " headers, meta, tags, transition_ms, restore_state, restore_ready_ms,"
    " restore_expiry_ms, restore_days, restore_tier"
)


def version_from_row(row: tuple[Any, ...]) -> ObjectVersion:
    """An `ObjectVersion` from a row of VERSION_COLUMNS."""
    return ObjectVersion(
        seq=row[0],
        bucket_id=row[1],
        key=row[2],
        version_id=row[3],
        is_current=bool(row[4]),
        is_delete_marker=bool(row[5]),
        blob_id=row[6],
        size=row[7],
        etag=row[8],
        crc64=int(row[9]),
        object_type=row[10],
        storage_class=row[11],
        acl=row[12],
        last_modified_ms=row[13],
        noncurrent_since_ms=row[14],
        headers=json.loads(row[15]),
        meta=json.loads(row[16]),
        tags=json.loads(row[17]),
        transition_ms=row[18],
        restore=Restore(row[19], row[20], row[21], row[22], row[23]),
    )


# -- versions ---------------------------------------------------------------------------


def _bucket_for_write(conn: sqlite3.Connection, bucket_id: int) -> Bucket:
    row = conn.execute(f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE id = ?", (bucket_id,))
    found = row.fetchone()
    if found is None:
        raise ServiceError("NoSuchBucket", "The specified bucket does not exist.")
    return bucket_from_row(found)


def current_version(conn: sqlite3.Connection, bucket_id: int, key: str) -> ObjectVersion | None:
    """The current version (or delete marker) of a key, or None."""
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM object_versions"
        " WHERE bucket_id = ? AND key = ? AND is_current = 1",
        (bucket_id, key),
    ).fetchone()
    return version_from_row(row) if row else None


def read_body(conn: sqlite3.Connection, seq: int) -> bytes | None:
    """The bytes a small object keeps in its row (None: it has a blob, or is gone)."""
    row = conn.execute("SELECT body FROM object_versions WHERE id = ?", (seq,)).fetchone()
    return bytes(row[0]) if row is not None and row[0] is not None else None


def get_version_with_body(
    conn: sqlite3.Connection, bucket_id: int, key: str, version_id: str | None
) -> ObjectVersion | None:
    """Like `get_version`, with a small object's bytes loaded (one read for a GET)."""
    where = "is_current = 1" if version_id is None else "version_id = ?"
    args: tuple[Any, ...] = (bucket_id, key) if version_id is None else (bucket_id, key, version_id)
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS}, body FROM object_versions"
        f" WHERE bucket_id = ? AND key = ? AND {where}",
        args,
    ).fetchone()
    if row is None:
        return None
    version = version_from_row(row)
    body = row[len(row) - 1]
    return replace(version, body=bytes(body)) if body is not None else version


def get_version(
    conn: sqlite3.Connection, bucket_id: int, key: str, version_id: str | None
) -> ObjectVersion | None:
    """A version by id, or the current one when `version_id` is None."""
    if version_id is None:
        return current_version(conn, bucket_id, key)
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM object_versions"
        " WHERE bucket_id = ? AND key = ? AND version_id = ?",
        (bucket_id, key, version_id),
    ).fetchone()
    return version_from_row(row) if row else None


def release_blob(conn: sqlite3.Connection, blob_id: str | None, released: list[str]) -> None:
    """Hand a blob no row refers to any more to the collector (noted in `released`)."""
    if blob_id is None:
        return
    conn.execute("INSERT OR IGNORE INTO blob_garbage (blob_id) VALUES (?)", (blob_id,))
    released.append(blob_id)


def _insert_version(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    version_id: str,
    new: NewObject | None,
    now_ms: int,
) -> ObjectVersion:
    """Insert a current version (or a delete marker when `new` is None).

    The version is built from what was inserted rather than read back: every statement
    costs the writer a round of the GIL, which the event loop is competing for.
    """
    if new is None:
        cursor = conn.execute(
            "INSERT INTO object_versions (bucket_id, key, version_id, is_current,"
            " is_delete_marker, last_modified_ms) VALUES (?, ?, ?, 1, 1, ?)",
            (bucket_id, key, version_id, now_ms),
        )
        assert cursor.lastrowid is not None
        return ObjectVersion(
            cursor.lastrowid, bucket_id, key, version_id, True, True, None, 0, "", 0,
            NORMAL, "Standard", "default", now_ms,
        )  # fmt: skip
    cursor = conn.execute(
        "INSERT INTO object_versions (bucket_id, key, version_id, is_current, blob_id, size,"
        " etag, crc64, object_type, storage_class, acl, last_modified_ms, headers, meta, tags,"
        " body) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            bucket_id,
            key,
            version_id,
            new.blob_id,
            new.size,
            new.etag,
            str(new.crc64),
            new.object_type,
            new.storage_class,
            new.acl,
            now_ms,
            json.dumps(new.headers),
            json.dumps(new.meta),
            json.dumps(new.tags),
            new.body,
        ),
    )
    assert cursor.lastrowid is not None
    return ObjectVersion(
        seq=cursor.lastrowid,
        bucket_id=bucket_id,
        key=key,
        version_id=version_id,
        is_current=True,
        is_delete_marker=False,
        blob_id=new.blob_id,
        size=new.size,
        etag=new.etag,
        crc64=new.crc64,
        object_type=new.object_type,
        storage_class=new.storage_class,
        acl=new.acl,
        last_modified_ms=now_ms,
        headers=dict(new.headers),
        meta=dict(new.meta),
        tags=dict(new.tags),
    )


def _displace(
    conn: sqlite3.Connection,
    bucket: Bucket,
    key: str,
    now_ms: int,
    released: list[str],
) -> tuple[ObjectVersion | None, str | None]:
    """Make room for a new current version of `key`.

    Returns the displaced current version and the version id the new one must take:
    None (the caller generates one) when versioning is enabled, else `null`, in which
    case any existing `null` version is removed for good.
    """
    rows = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM object_versions WHERE bucket_id = ? AND key = ?"
        " AND (is_current = 1 OR version_id = ?)",
        (bucket.id, key, NULL_VERSION),
    ).fetchall()
    found = [version_from_row(row) for row in rows]
    current = next((v for v in found if v.is_current), None)
    null = next((v for v in found if v.version_id == NULL_VERSION), None)
    if bucket.versioning == VERSIONING_ENABLED:
        version_id = None
    else:
        version_id = NULL_VERSION
        if null is not None:
            conn.execute("DELETE FROM object_versions WHERE id = ?", (null.seq,))
            release_blob(conn, null.blob_id, released)
    if current is not None and not (version_id is not None and current is null):
        conn.execute(
            "UPDATE object_versions SET is_current = 0, noncurrent_since_ms = ?"
            " WHERE id = ? AND is_current = 1",
            (now_ms, current.seq),
        )
    return current, version_id


@bounded
def put_version(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    new: NewObject,
    new_version_id: str,
    now_ms: int,
    forbid_overwrite: bool,
) -> WriteOutcome:
    """Make `new` the current version of `key`, as the bucket's versioning state says.

    `new_version_id` is used when versioning is enabled; otherwise the version is
    `null` and replaces any earlier `null` version.
    """
    bucket = _bucket_for_write(conn, bucket_id)
    if forbid_overwrite and bucket.versioning != VERSIONING_ENABLED:
        existing = current_version(conn, bucket_id, key)
        if existing is not None and not existing.is_delete_marker:
            raise ServiceError(
                "FileAlreadyExists",
                "The object already exists and x-oss-forbid-overwrite is true.",
                {"Key": key},
            )
    released: list[str] = []
    previous, version_id = _displace(conn, bucket, key, now_ms, released)
    version = _insert_version(conn, bucket_id, key, version_id or new_version_id, new, now_ms)
    return WriteOutcome(version, previous, released)


@bounded
def append(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    position: int,
    new: NewObject,
    new_version_id: str,
    now_ms: int,
) -> WriteOutcome:
    """Append: `new` is the whole object after the append (its blob holds all bytes).

    Creates an Appendable object at position 0, or replaces the body of the current
    appendable version in place when `position` equals its size.
    """
    _bucket_for_write(conn, bucket_id)
    current = current_version(conn, bucket_id, key)
    if current is None or current.is_delete_marker:
        if position != 0:
            raise position_not_equal(0)
        return put_version(conn, bucket_id, key, new, new_version_id, now_ms, False)
    if current.object_type != APPENDABLE:
        raise ServiceError(
            "ObjectNotAppendable", "The object is not appendable.", {"Key": current.key}
        )
    if position != current.size:
        raise position_not_equal(current.size)
    released: list[str] = []
    release_blob(conn, current.blob_id, released)
    conn.execute(
        "UPDATE object_versions SET blob_id = ?, size = ?, etag = ?, crc64 = ?,"
        " last_modified_ms = ?, body = NULL WHERE id = ?",
        (new.blob_id, new.size, new.etag, str(new.crc64), now_ms, current.seq),
    )
    updated = get_version(conn, bucket_id, key, current.version_id)
    assert updated is not None
    return WriteOutcome(updated, current, released)


@bounded
def delete_object(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    version_id: str | None,
    marker_version_id: str,
    now_ms: int,
) -> DeleteOutcome:
    """DeleteObject with the semantics of the bucket's versioning state (spec 7.5)."""
    bucket = _bucket_for_write(conn, bucket_id)
    released: list[str] = []
    if version_id is not None:
        target = get_version(conn, bucket_id, key, version_id)
        if target is None:
            return DeleteOutcome(None, None, False)
        conn.execute("DELETE FROM object_versions WHERE id = ?", (target.seq,))
        release_blob(conn, target.blob_id, released)
        if target.is_current:
            _promote_latest(conn, bucket_id, key)
        if target.is_delete_marker:
            return DeleteOutcome(None, target, False, released)
        return DeleteOutcome(target, None, False, released)
    if bucket.versioning == VERSIONING_NEVER:
        current = current_version(conn, bucket_id, key)
        if current is None:
            return DeleteOutcome(None, None, False)
        conn.execute("DELETE FROM object_versions WHERE id = ?", (current.seq,))
        release_blob(conn, current.blob_id, released)
        return DeleteOutcome(current, None, False, released)
    previous, null_id = _displace(conn, bucket, key, now_ms, released)
    marker = _insert_version(conn, bucket_id, key, null_id or marker_version_id, None, now_ms)
    # Suspended versioning removes the `null` version for good; otherwise the current
    # version only becomes a previous one behind the marker.
    permanent = null_id is not None and previous is not None and previous.version_id == null_id
    return DeleteOutcome(previous, marker, True, released, permanent)


def delete_objects(
    conn: sqlite3.Connection,
    bucket_id: int,
    items: list[tuple[str, str | None, str]],
    now_ms: int,
) -> list[DeleteOutcome]:
    """DeleteMultipleObjects in one transaction: (key, version id, marker id) per item."""
    return [
        delete_object(conn, bucket_id, key, version_id, marker_id, now_ms)
        for key, version_id, marker_id in items
    ]


def _promote_latest(conn: sqlite3.Connection, bucket_id: int, key: str) -> None:
    """After the current version was removed, the newest remaining one becomes current."""
    conn.execute(
        "UPDATE object_versions SET is_current = 1, noncurrent_since_ms = NULL WHERE id = ("
        " SELECT max(id) FROM object_versions WHERE bucket_id = ? AND key = ?)",
        (bucket_id, key),
    )


def update_version(
    conn: sqlite3.Connection, seq: int, changes: dict[str, Any]
) -> ObjectVersion | None:
    """Change settable attributes of one version in place (ACL, tags, storage class,
    restore state, stored headers); None when the version is gone."""
    allowed = {
        "acl",
        "tags",
        "storage_class",
        "transition_ms",
        "headers",
        "meta",
        "restore_state",
        "restore_ready_ms",
        "restore_expiry_ms",
        "restore_days",
        "restore_tier",
        "last_modified_ms",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not settable: {sorted(unknown)}")
    values = [json.dumps(v) if isinstance(v, dict) else v for v in changes.values()]
    assignments = ", ".join(f"{name} = ?" for name in changes)
    cursor = conn.execute(f"UPDATE object_versions SET {assignments} WHERE id = ?", (*values, seq))
    if cursor.rowcount == 0:
        return None
    row = conn.execute(f"SELECT {VERSION_COLUMNS} FROM object_versions WHERE id = ?", (seq,))
    return version_from_row(row.fetchone())


def take_garbage(conn: sqlite3.Connection, limit: int) -> list[str]:
    """Blob ids waiting to be deleted from the blob store."""
    return [row[0] for row in conn.execute("SELECT blob_id FROM blob_garbage LIMIT ?", (limit,))]


def forget_garbage(conn: sqlite3.Connection, blob_ids: list[str]) -> None:
    """Blobs that are gone from the blob store."""
    conn.executemany("DELETE FROM blob_garbage WHERE blob_id = ?", [(b,) for b in blob_ids])


def referenced_blobs(conn: sqlite3.Connection) -> set[str]:
    """Every blob id a row refers to (for the start-up orphan sweep)."""
    found = {
        row[0]
        for row in conn.execute("SELECT blob_id FROM object_versions WHERE blob_id IS NOT NULL")
    }
    found.update(row[0] for row in conn.execute("SELECT blob_id FROM multipart_parts"))
    return found
