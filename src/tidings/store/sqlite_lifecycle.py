"""The SQL of the lifecycle scheduler: bounded scans, and one transaction per batch.

Scans run on the reader pool and return at most `limit` rows after a keyset marker, so
a pass never holds a whole bucket. A batch write re-reads every row it is about to
change and skips any that differs from what the scan saw (a new PUT, a tag change, an
append, a restore request in between): the decision was made on the old row, and the
next pass judges the new one. Deletes reuse `delete_object` and aborts `abort`, so a
lifecycle action has exactly the semantics of the API call it stands for.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal

from tidings.object_models import Bucket, ObjectVersion, Upload
from tidings.store.sqlite_buckets import BUCKET_COLUMNS, bucket_from_row
from tidings.store.sqlite_listing import after_prefix
from tidings.store.sqlite_multipart import UPLOAD_COLUMNS, get_upload, upload_from_row
from tidings.store.sqlite_multipart import abort as abort_upload
from tidings.store.sqlite_objects import (
    VERSION_COLUMNS,
    delete_object,
    update_version,
    version_from_row,
)

# What a batch can do to a version; the names match `lifecycle_rules.ActionKind`.
EXPIRE = "expire"
TRANSITION = "transition"
REMOVE_DELETE_MARKER = "remove_delete_marker"
EXPIRE_NONCURRENT = "expire_noncurrent"
TRANSITION_NONCURRENT = "transition_noncurrent"

RestorePhase = Literal["ongoing", "done"]
# The stored time at which a restore in each phase needs writing down, per phase.
_PHASE_TIME = {"ongoing": "restore_ready_ms", "done": "restore_expiry_ms"}

# Whether nothing but this row remains of its key (what ExpiredObjectDeleteMarker asks).
_ONLY_VERSION = (
    "NOT EXISTS (SELECT 1 FROM object_versions o WHERE o.bucket_id = object_versions.bucket_id"
    " AND o.key = object_versions.key AND o.id != object_versions.id)"
)


@dataclass(frozen=True, slots=True)
class ScannedVersion:
    """A version as a lifecycle scan saw it."""

    version: ObjectVersion
    only_version_left: bool


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One lifecycle action on the version `seen`, decided from that very row."""

    seen: ScannedVersion
    kind: str
    rule_id: str
    storage_class: str | None = None  # the new class of a transition
    marker_version_id: str = ""  # the id of a delete marker an expiration may add


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """A planned change that was made; `marker` is the delete marker it added, if any."""

    change: PlannedChange
    marker: ObjectVersion | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one batch changed, and the blobs it released."""

    applied: list[AppliedChange] = field(default_factory=list)
    released_blobs: list[str] = field(default_factory=list)


def lifecycle_buckets(conn: sqlite3.Connection, after_id: int, limit: int) -> list[Bucket]:
    """Buckets with a lifecycle configuration and an id above `after_id`, by id."""
    rows = conn.execute(
        f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE lifecycle IS NOT NULL AND id > ?"
        " ORDER BY id LIMIT ?",
        (after_id, limit),
    )
    return [bucket_from_row(row) for row in rows]


def version_batch(
    conn: sqlite3.Connection,
    bucket_id: int,
    prefix: str,
    after: tuple[str, int],
    limit: int,
) -> list[ScannedVersion]:
    """Versions whose key starts with `prefix`, after (key, seq) `after`, by key then seq.

    The range is an index seek on (bucket_id, key, id); keys compare as bytes, so the
    end of the prefix is bound as raw bytes like the listings do.
    """
    sql = (
        f"SELECT {VERSION_COLUMNS}, is_delete_marker = 1 AND {_ONLY_VERSION}"
        " FROM object_versions WHERE bucket_id = ? AND key >= ? AND (key, id) > (?, ?)"
    )
    args: list[Any] = [bucket_id, prefix, after[0], after[1]]
    if prefix:
        sql += " AND key < CAST(? AS TEXT)"
        args.append(after_prefix(prefix))
    rows = conn.execute(sql + " ORDER BY key, id LIMIT ?", (*args, limit))
    return [ScannedVersion(version_from_row(row[:-1]), bool(row[-1])) for row in rows]


def _unchanged(conn: sqlite3.Connection, seen: ScannedVersion) -> bool:
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS}, {_ONLY_VERSION} FROM object_versions WHERE id = ?",
        (seen.version.seq,),
    ).fetchone()
    if row is None or version_from_row(row[:-1]) != seen.version:
        return False
    return not seen.version.is_delete_marker or bool(row[-1]) == seen.only_version_left


def apply_changes(
    conn: sqlite3.Connection, bucket_id: int, changes: list[PlannedChange], now_ms: int
) -> BatchOutcome:
    """Apply a batch of lifecycle actions in this one transaction (see module docstring).

    Transitions change the class in place and set transition_ms; content, ETag, CRC and
    Last-Modified stay. An expiration is a DeleteObject without a version id (a delete
    marker in a versioned or suspended bucket); the other removals delete one version.
    """
    outcome = BatchOutcome()
    for change in changes:
        if not _unchanged(conn, change.seen):
            continue
        version = change.seen.version
        if change.kind in (TRANSITION, TRANSITION_NONCURRENT):
            columns = {"storage_class": change.storage_class, "transition_ms": now_ms}
            update_version(conn, version.seq, columns)
            outcome.applied.append(AppliedChange(change))
            continue
        if change.kind == EXPIRE:
            deleted = delete_object(
                conn, bucket_id, version.key, None, change.marker_version_id, now_ms
            )
        elif change.kind in (EXPIRE_NONCURRENT, REMOVE_DELETE_MARKER):
            deleted = delete_object(conn, bucket_id, version.key, version.version_id, "", now_ms)
        else:
            raise ValueError(f"not a lifecycle action: {change.kind}")
        marker = deleted.marker if deleted.marker_created else None
        outcome.applied.append(AppliedChange(change, marker))
        outcome.released_blobs.extend(deleted.released_blobs)
    return outcome


def upload_batch(
    conn: sqlite3.Connection,
    bucket_id: int,
    initiated_until_ms: int,
    after: tuple[int, int],
    limit: int,
) -> list[Upload]:
    """Uploads initiated at or before `initiated_until_ms`, after (initiated, pk), oldest
    first."""
    rows = conn.execute(
        f"SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE bucket_id = ?"
        " AND initiated_ms <= ? AND (initiated_ms, id) > (?, ?)"
        " ORDER BY initiated_ms, id LIMIT ?",
        (bucket_id, initiated_until_ms, after[0], after[1], limit),
    )
    return [upload_from_row(row) for row in rows]


def abort_uploads(
    conn: sqlite3.Connection, bucket_id: int, uploads: list[Upload]
) -> tuple[list[Upload], list[str]]:
    """Abort these uploads in one transaction; ones completed or aborted since are skipped.

    Returns the uploads aborted and the blobs of their parts to delete.
    """
    aborted: list[Upload] = []
    released: list[str] = []
    for upload in uploads:
        if get_upload(conn, bucket_id, upload.key, upload.upload_id) is None:
            continue
        released.extend(abort_upload(conn, bucket_id, upload.key, upload.upload_id))
        aborted.append(upload)
    return aborted, released


def restores_due(
    conn: sqlite3.Connection,
    phase: RestorePhase,
    now_ms: int,
    after: tuple[int, int],
    limit: int,
) -> list[tuple[str, ObjectVersion]]:
    """(bucket name, version) of restores in `phase` whose next step is due by `now_ms`.

    `ongoing` ones are ready, `done` ones expired. Ordered by that time then seq, after
    `after`; each phase reads its own partial index.
    """
    column = _PHASE_TIME[phase]
    rows = conn.execute(
        f"SELECT (SELECT b.name FROM buckets b WHERE b.id = object_versions.bucket_id),"
        f" {VERSION_COLUMNS} FROM object_versions WHERE restore_state = '{phase}'"
        f" AND {column} <= ? AND ({column}, id) > (?, ?) ORDER BY {column}, id LIMIT ?",
        (now_ms, after[0], after[1], limit),
    )
    return [(row[0], version_from_row(row[1:])) for row in rows]


def settle_restores(
    conn: sqlite3.Connection, changes: list[tuple[ObjectVersion, dict[str, Any]]]
) -> list[tuple[ObjectVersion, ObjectVersion]]:
    """Write down restore steps: (version as read, restore columns) for each.

    Returns (before, after) of each version changed; one changed since it was read (a
    new RestoreObject, a delete) is skipped for the next pass.
    """
    settled: list[tuple[ObjectVersion, ObjectVersion]] = []
    for version, columns in changes:
        if not _unchanged(conn, ScannedVersion(version, False)):
            continue
        updated = update_version(conn, version.seq, columns)
        assert updated is not None  # the row was just read in this transaction
        settled.append((version, updated))
    return settled
