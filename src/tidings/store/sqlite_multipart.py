"""The SQL of multipart uploads: initiate, parts, complete, abort and listings."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tidings.errors import ServiceError
from tidings.object_models import NewObject, Part, Upload, UploadPage, WriteOutcome
from tidings.store.sqlite_listing import after_prefix
from tidings.store.sqlite_objects import put_version, release_blob

UPLOAD_COLUMNS = (
    "id, bucket_id, key, upload_id, initiated_ms, storage_class, acl, headers, meta, tags"
)
PART_COLUMNS = "part_number, blob_id, size, etag, crc64, last_modified_ms"


def upload_from_row(row: tuple[Any, ...]) -> Upload:
    """An `Upload` from a row of UPLOAD_COLUMNS."""
    return Upload(
        id=row[0],
        bucket_id=row[1],
        key=row[2],
        upload_id=row[3],
        initiated_ms=row[4],
        storage_class=row[5],
        acl=row[6],
        headers=json.loads(row[7]),
        meta=json.loads(row[8]),
        tags=json.loads(row[9]),
    )


def _part(row: tuple[Any, ...]) -> Part:
    return Part(row[0], row[1], row[2], row[3], int(row[4]), row[5])


def no_such_upload(upload_id: str) -> ServiceError:
    """The upload ID names no upload in progress."""
    return ServiceError(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload"
        " may have been aborted or completed.",
        {"UploadId": upload_id},
    )


def initiate(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    upload_id: str,
    now_ms: int,
    template: NewObject,
) -> Upload:
    """Start an upload; `template` carries the attributes of the final object."""
    if conn.execute("SELECT 1 FROM buckets WHERE id = ?", (bucket_id,)).fetchone() is None:
        raise ServiceError("NoSuchBucket", "The specified bucket does not exist.")
    cursor = conn.execute(
        "INSERT INTO multipart_uploads (bucket_id, key, upload_id, initiated_ms,"
        " storage_class, acl, headers, meta, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            bucket_id,
            key,
            upload_id,
            now_ms,
            template.storage_class,
            template.acl,
            json.dumps(template.headers),
            json.dumps(template.meta),
            json.dumps(template.tags),
        ),
    )
    row = conn.execute(
        f"SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE id = ?", (cursor.lastrowid,)
    )
    return upload_from_row(row.fetchone())


def get_upload(conn: sqlite3.Connection, bucket_id: int, key: str, upload_id: str) -> Upload | None:
    """The upload in progress with this id for this key, or None."""
    row = conn.execute(
        f"SELECT {UPLOAD_COLUMNS} FROM multipart_uploads"
        " WHERE upload_id = ? AND bucket_id = ? AND key = ?",
        (upload_id, bucket_id, key),
    ).fetchone()
    return upload_from_row(row) if row else None


def put_part(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    upload_id: str,
    part: Part,
) -> list[str]:
    """Store (or replace) a part; returns the blobs released by a replaced part."""
    upload = get_upload(conn, bucket_id, key, upload_id)
    if upload is None:
        raise no_such_upload(upload_id)
    released: list[str] = []
    old = conn.execute(
        "SELECT blob_id FROM multipart_parts WHERE upload_pk = ? AND part_number = ?",
        (upload.id, part.number),
    ).fetchone()
    if old is not None:
        release_blob(conn, old[0], released)
    conn.execute(
        "INSERT OR REPLACE INTO multipart_parts (upload_pk, part_number, blob_id, size, etag,"
        " crc64, last_modified_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            upload.id,
            part.number,
            part.blob_id,
            part.size,
            part.etag,
            str(part.crc64),
            part.last_modified_ms,
        ),
    )
    return released


def list_parts(
    conn: sqlite3.Connection, upload_pk: int, after_number: int, limit: int
) -> list[Part]:
    """Parts with a number above `after_number`, ascending."""
    rows = conn.execute(
        f"SELECT {PART_COLUMNS} FROM multipart_parts WHERE upload_pk = ? AND part_number > ?"
        " ORDER BY part_number LIMIT ?",
        (upload_pk, after_number, limit),
    )
    return [_part(row) for row in rows]


def _drop_upload(conn: sqlite3.Connection, upload: Upload, released: list[str]) -> None:
    for (blob_id,) in conn.execute(
        "SELECT blob_id FROM multipart_parts WHERE upload_pk = ?", (upload.id,)
    ).fetchall():
        release_blob(conn, blob_id, released)
    conn.execute("DELETE FROM multipart_parts WHERE upload_pk = ?", (upload.id,))
    conn.execute("DELETE FROM multipart_uploads WHERE id = ?", (upload.id,))


def abort(conn: sqlite3.Connection, bucket_id: int, key: str, upload_id: str) -> list[str]:
    """Forget an upload and its parts; returns the parts' blobs to delete."""
    upload = get_upload(conn, bucket_id, key, upload_id)
    if upload is None:
        raise no_such_upload(upload_id)
    released: list[str] = []
    _drop_upload(conn, upload, released)
    return released


def complete(
    conn: sqlite3.Connection,
    bucket_id: int,
    key: str,
    upload_id: str,
    used_parts: list[Part],
    new: NewObject,
    new_version_id: str,
    now_ms: int,
    forbid_overwrite: bool,
) -> WriteOutcome:
    """Make the composed object current and end the upload, in one transaction.

    `used_parts` are the parts the composed blob was built from; they must still be the
    parts stored under their numbers (a concurrent re-upload of a part in between makes
    the completion fail rather than silently use different bytes).
    """
    upload = get_upload(conn, bucket_id, key, upload_id)
    if upload is None:
        raise no_such_upload(upload_id)
    for part in used_parts:
        row = conn.execute(
            "SELECT blob_id FROM multipart_parts WHERE upload_pk = ? AND part_number = ?",
            (upload.id, part.number),
        ).fetchone()
        if row is None or row[0] != part.blob_id:
            raise ServiceError(
                "InvalidPart",
                f"Part {part.number} changed while the upload was being completed.",
            )
    outcome = put_version(conn, bucket_id, key, new, new_version_id, now_ms, forbid_overwrite)
    released = list(outcome.released_blobs)
    _drop_upload(conn, upload, released)
    return WriteOutcome(outcome.version, outcome.previous, released)


def list_uploads(
    conn: sqlite3.Connection,
    bucket_id: int,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    limit: int,
) -> UploadPage:
    """Uploads by key then initiation time (ListMultipartUploads)."""
    uploads: list[Upload] = []
    prefixes: list[str] = []
    rows = conn.execute(
        f"SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE bucket_id = ?"
        " AND key >= ? ORDER BY key, initiated_ms, id",
        (bucket_id, prefix),
    )
    skip_before: bytes | None = None
    if delimiter and key_marker.startswith(prefix) and key_marker.endswith(delimiter):
        skip_before = after_prefix(key_marker)  # the previous page ended with this prefix
    marker_seen = not upload_id_marker
    last = ("", "")
    for row in rows:
        upload = upload_from_row(row)
        if not upload.key.startswith(prefix):
            if upload.key > prefix:
                break
            continue
        if key_marker and (
            upload.key < key_marker or (upload.key == key_marker and not upload_id_marker)
        ):
            continue
        if upload.key == key_marker and not marker_seen:
            marker_seen = upload.upload_id == upload_id_marker
            continue
        if skip_before is not None and upload.key.encode("utf-8") < skip_before:
            continue
        if len(uploads) + len(prefixes) == limit:
            return UploadPage(uploads, prefixes, True, last[0], last[1])
        index = upload.key.find(delimiter, len(prefix)) if delimiter else -1
        if index >= 0:
            common = upload.key[: index + len(delimiter)]
            prefixes.append(common)
            skip_before = after_prefix(common)
            last = (common, "")
            continue
        uploads.append(upload)
        last = (upload.key, upload.upload_id)
    return UploadPage(uploads, prefixes, False, "", "")


def stale_uploads(conn: sqlite3.Connection, bucket_id: int, limit: int) -> list[Upload]:
    """A bucket's uploads, oldest first (for lifecycle's AbortMultipartUpload)."""
    rows = conn.execute(
        f"SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE bucket_id = ?"
        " ORDER BY initiated_ms LIMIT ?",
        (bucket_id, limit),
    )
    return [upload_from_row(row) for row in rows]
