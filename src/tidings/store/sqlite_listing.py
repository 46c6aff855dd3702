"""Listing objects and versions: prefix, delimiter, markers and pages, in key byte order.

Keys are compared as BINARY text, which for UTF-8 is byte order. A common prefix is
returned once and then skipped in one index seek: the first key after every key that
starts with it is "the prefix with its last byte incremented", bound as raw bytes and
cast to TEXT so SQLite compares it with memcmp like any key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from tidings.object_models import ListPage, ObjectVersion
from tidings.store.sqlite_objects import VERSION_COLUMNS, version_from_row

# Rows fetched per query while filling a page; a page of delimiter-collapsed keys may
# need several queries, a plain page needs one.
_BATCH = 256


def after_prefix(prefix: str) -> bytes:
    """The smallest byte string greater than every string that starts with `prefix`.

    UTF-8 never contains the byte 0xFF, so incrementing the last byte never carries.
    """
    raw = prefix.encode("utf-8")
    return raw[:-1] + bytes([raw[-1] + 1])


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    index = key.find(delimiter, len(prefix))
    if index < 0:
        return None
    return key[: index + len(delimiter)]


def _start(prefix: str, delimiter: str, marker: str) -> tuple[bytes, bool]:
    """Where a listing starts: (bound, inclusive)."""
    if marker < prefix:
        return prefix.encode("utf-8"), True
    if delimiter and _common_prefix(marker, prefix, delimiter) == marker:
        # The previous page ended with this common prefix: skip all of its keys.
        return after_prefix(marker), True
    return marker.encode("utf-8"), False


def _current_rows(
    conn: sqlite3.Connection, bucket_id: int, bound: bytes, inclusive: bool
) -> Iterator[ObjectVersion]:
    op = ">=" if inclusive else ">"
    rows = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM object_versions WHERE bucket_id = ? AND is_current = 1"
        f" AND is_delete_marker = 0 AND key {op} CAST(? AS TEXT) ORDER BY key LIMIT ?",
        (bucket_id, bound, _BATCH),
    )
    for row in rows.fetchall():
        yield version_from_row(row)


def list_objects(
    conn: sqlite3.Connection,
    bucket_id: int,
    prefix: str,
    delimiter: str,
    marker: str,
    limit: int,
) -> ListPage:
    """Current, non-deleted objects after `marker` (ListObjects V1 and V2 semantics)."""
    objects: list[ObjectVersion] = []
    prefixes: list[str] = []
    bound, inclusive = _start(prefix, delimiter, marker)
    last = ""
    while True:
        fetched = 0
        restart = False
        for version in _current_rows(conn, bucket_id, bound, inclusive):
            fetched += 1
            if not version.key.startswith(prefix):
                return ListPage(objects, prefixes, False, "")
            if len(objects) + len(prefixes) == limit:
                return ListPage(objects, prefixes, True, last)
            common = _common_prefix(version.key, prefix, delimiter)
            if common is not None:
                prefixes.append(common)
                last = common
                bound, inclusive = after_prefix(common), True
                restart = True
                break
            objects.append(version)
            last = version.key
            bound, inclusive = version.key.encode("utf-8"), False
        if not restart and fetched < _BATCH:
            return ListPage(objects, prefixes, False, "")


def _version_rows(
    conn: sqlite3.Connection,
    bucket_id: int,
    bound: bytes,
    inclusive: bool,
    same_key_before: int | None,
) -> list[ObjectVersion]:
    if same_key_before is not None:
        rows = conn.execute(
            f"SELECT {VERSION_COLUMNS} FROM object_versions WHERE bucket_id = ?"
            " AND key = CAST(? AS TEXT) AND id < ? ORDER BY id DESC LIMIT ?",
            (bucket_id, bound, same_key_before, _BATCH),
        )
    else:
        op = ">=" if inclusive else ">"
        rows = conn.execute(
            f"SELECT {VERSION_COLUMNS} FROM object_versions WHERE bucket_id = ?"
            f" AND key {op} CAST(? AS TEXT) ORDER BY key, id DESC LIMIT ?",
            (bucket_id, bound, _BATCH),
        )
    return [version_from_row(row) for row in rows.fetchall()]


def list_versions(
    conn: sqlite3.Connection,
    bucket_id: int,
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_marker: str,
    limit: int,
) -> ListPage:
    """Every version and delete marker, by key then newest first (ListObjectVersions)."""
    objects: list[ObjectVersion] = []
    prefixes: list[str] = []
    same_key_before: int | None = None
    if version_marker and key_marker >= prefix:
        row = conn.execute(
            "SELECT id FROM object_versions WHERE bucket_id = ? AND key = ? AND version_id = ?",
            (bucket_id, key_marker, version_marker),
        ).fetchone()
        bound, inclusive = key_marker.encode("utf-8"), False
        if row is not None:
            same_key_before = row[0]
    else:
        bound, inclusive = _start(prefix, delimiter, key_marker)
    last: tuple[str, str] = ("", "")
    while True:
        batch = _version_rows(conn, bucket_id, bound, inclusive, same_key_before)
        restart = False
        for version in batch:
            if not version.key.startswith(prefix):
                return ListPage(objects, prefixes, False, "")
            if len(objects) + len(prefixes) == limit:
                return ListPage(objects, prefixes, True, last[0], last[1])
            common = _common_prefix(version.key, prefix, delimiter)
            if common is not None:
                prefixes.append(common)
                last = (common, "")
                bound, inclusive, same_key_before = after_prefix(common), True, None
                restart = True
                break
            objects.append(version)
            last = (version.key, version.version_id)
            if same_key_before is not None:
                same_key_before = version.seq
        if restart:
            continue
        if same_key_before is not None and len(batch) == _BATCH:
            continue
        if same_key_before is not None:
            # The marker's key is exhausted; go on with the keys after it.
            same_key_before = None
            bound, inclusive = bound, False
            continue
        if len(batch) < _BATCH:
            return ListPage(objects, prefixes, False, "")
        tail = batch[-1]
        # Resume inside the last key of a full batch: its older versions come next.
        bound, inclusive, same_key_before = tail.key.encode("utf-8"), False, tail.seq
