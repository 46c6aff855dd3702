"""The SQL of buckets: create, look up, list, change, delete, and their statistics.

Object versions are in `sqlite_objects`, which checks a bucket inside each write.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tidings.errors import ServiceError
from tidings.object_models import Bucket

BUCKET_COLUMNS = (
    "id, name, owner, created_ms, acl, storage_class, redundancy, versioning, lifecycle, tags"
)


def bucket_from_row(row: tuple[Any, ...]) -> Bucket:
    """A `Bucket` from a row of BUCKET_COLUMNS."""
    return Bucket(
        id=row[0],
        name=row[1],
        owner=row[2],
        created_ms=row[3],
        acl=row[4],
        storage_class=row[5],
        redundancy=row[6],
        versioning=row[7],
        lifecycle=row[8],
        tags=json.loads(row[9]) if row[9] else {},
    )


def no_such_bucket(name: str) -> ServiceError:
    """The bucket named in the request does not exist."""
    return ServiceError(
        "NoSuchBucket", "The specified bucket does not exist.", {"BucketName": name}
    )


def create_bucket(
    conn: sqlite3.Connection,
    name: str,
    owner: str,
    acl: str,
    storage_class: str,
    redundancy: str,
    now_ms: int,
    max_buckets: int,
) -> tuple[Bucket, bool]:
    """Create a bucket, or update the ACL of the caller's existing one.

    Returns the bucket and whether it was created. Another owner's bucket, or a
    different storage class or redundancy type for an existing one, is a conflict.
    """
    row = conn.execute(f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?", (name,)).fetchone()
    if row is not None:
        existing = bucket_from_row(row)
        if (
            existing.owner != owner
            or existing.storage_class != storage_class
            or existing.redundancy != redundancy
        ):
            raise ServiceError(
                "BucketAlreadyExists",
                "The requested bucket name is not available, or its storage class or"
                " redundancy type cannot be changed.",
                {"BucketName": name},
            )
        conn.execute("UPDATE buckets SET acl = ? WHERE id = ?", (acl, existing.id))
        return get_bucket_by_id(conn, existing.id), False
    (count,) = conn.execute("SELECT count(*) FROM buckets WHERE owner = ?", (owner,)).fetchone()
    if count >= max_buckets:
        raise ServiceError(
            "TooManyBuckets", f"You have attempted to create more than {max_buckets} buckets."
        )
    cursor = conn.execute(
        "INSERT INTO buckets (name, owner, created_ms, acl, storage_class, redundancy)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (name, owner, now_ms, acl, storage_class, redundancy),
    )
    assert cursor.lastrowid is not None
    return get_bucket_by_id(conn, cursor.lastrowid), True


def get_bucket_by_id(conn: sqlite3.Connection, bucket_id: int) -> Bucket:
    """The bucket with this internal id (it must exist)."""
    row = conn.execute(f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE id = ?", (bucket_id,))
    return bucket_from_row(row.fetchone())


def get_bucket(conn: sqlite3.Connection, name: str) -> Bucket | None:
    """The bucket called `name`, or None."""
    row = conn.execute(f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?", (name,)).fetchone()
    return bucket_from_row(row) if row else None


def list_buckets(
    conn: sqlite3.Connection, owner: str, prefix: str, marker: str, limit: int
) -> list[Bucket]:
    """The owner's buckets whose name starts with `prefix`, after `marker`, by name."""
    rows = conn.execute(
        f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE owner = ? AND name > ?"
        " AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
        (owner, marker, len(prefix), prefix, limit),
    )
    return [bucket_from_row(row) for row in rows]


def delete_bucket(conn: sqlite3.Connection, name: str) -> None:
    """Delete an empty bucket; NoSuchBucket or BucketNotEmpty otherwise."""
    bucket = get_bucket(conn, name)
    if bucket is None:
        raise no_such_bucket(name)
    for table in ("object_versions", "multipart_uploads"):
        found = conn.execute(f"SELECT 1 FROM {table} WHERE bucket_id = ? LIMIT 1", (bucket.id,))
        if found.fetchone():
            raise ServiceError(
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty: delete every object,"
                " previous version, delete marker and multipart upload first.",
                {"BucketName": name},
            )
    conn.execute("DELETE FROM buckets WHERE id = ?", (bucket.id,))


def update_bucket(conn: sqlite3.Connection, name: str, column: str, value: Any) -> Bucket:
    """Set one settable column (acl, versioning, lifecycle, tags) of a bucket."""
    if column not in ("acl", "versioning", "lifecycle", "tags"):
        raise ValueError(f"not a settable bucket column: {column}")
    cursor = conn.execute(f"UPDATE buckets SET {column} = ? WHERE name = ?", (value, name))
    if cursor.rowcount == 0:
        raise no_such_bucket(name)
    bucket = get_bucket(conn, name)
    assert bucket is not None
    return bucket


def bucket_stats(conn: sqlite3.Connection, bucket_id: int) -> dict[str, int]:
    """Sizes and counts for GetBucketStat, by storage class and kind."""
    stats: dict[str, int] = {}
    rows = conn.execute(
        "SELECT storage_class, is_delete_marker, count(*), coalesce(sum(size), 0),"
        " coalesce(max(last_modified_ms), 0)"
        " FROM object_versions WHERE bucket_id = ? GROUP BY storage_class, is_delete_marker",
        (bucket_id,),
    )
    for storage_class, marker, count, size, last in rows:
        if marker:
            stats["DeleteMarkerCount"] = stats.get("DeleteMarkerCount", 0) + count
            continue
        stats[f"{storage_class}Count"] = stats.get(f"{storage_class}Count", 0) + count
        stats[f"{storage_class}Storage"] = stats.get(f"{storage_class}Storage", 0) + size
        stats["ObjectCount"] = stats.get("ObjectCount", 0) + count
        stats["Storage"] = stats.get("Storage", 0) + size
        stats["LastModified"] = max(stats.get("LastModified", 0), last)
    (uploads,) = conn.execute(
        "SELECT count(*) FROM multipart_uploads WHERE bucket_id = ?", (bucket_id,)
    ).fetchone()
    (parts,) = conn.execute(
        "SELECT count(*) FROM multipart_parts JOIN multipart_uploads u ON u.id = upload_pk"
        " WHERE u.bucket_id = ?",
        (bucket_id,),
    ).fetchone()
    stats["MultipartUploadCount"] = uploads
    stats["MultipartPartCount"] = parts
    return stats
