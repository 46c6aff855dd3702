"""The SQL of VOD message callbacks: one configuration row per VOD application."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass
from typing import Any

from tidings.store.sqlite import SqliteStore


@dataclass(frozen=True, slots=True)
class VodCallback:
    """A SetMessageCallback configuration, field for field (spec event-sources §4.1).

    `callback_type` is `HTTP` (POST to `callback_url`, signed when `auth_switch` is `on`)
    or `MNS` (a message into the queue `mns_queue_name`; `mns_endpoint` is kept only to
    echo the configuration back: locally the queue is always this server's).
    """

    app_id: str
    callback_type: str
    callback_url: str = ""
    event_type_list: str = "ALL"
    auth_switch: str = "off"
    auth_key: str = ""
    mns_endpoint: str = ""
    mns_queue_name: str = ""


_COLUMNS = (
    "app_id, callback_type, callback_url, event_type_list, auth_switch, auth_key,"
    " mns_endpoint, mns_queue_name"
)


def _callback(row: tuple[Any, ...]) -> VodCallback:
    return VodCallback(*row)


def get_callback(conn: sqlite3.Connection, app_id: str) -> VodCallback | None:
    """The application's configuration, or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM vod_callbacks WHERE app_id = ?", (app_id,)
    ).fetchone()
    return None if row is None else _callback(row)


def list_callbacks(conn: sqlite3.Connection) -> list[VodCallback]:
    """Every application's configuration, by AppId."""
    return [
        _callback(row)
        for row in conn.execute(f"SELECT {_COLUMNS} FROM vod_callbacks ORDER BY app_id")
    ]


def put_callback(conn: sqlite3.Connection, callback: VodCallback, now_ms: int) -> None:
    """Set (replace) the application's configuration."""
    conn.execute(
        f"INSERT OR REPLACE INTO vod_callbacks ({_COLUMNS}, updated_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*astuple(callback), now_ms),
    )


def delete_callback(conn: sqlite3.Connection, app_id: str) -> bool:
    """Remove the application's configuration; False when there was none."""
    return conn.execute("DELETE FROM vod_callbacks WHERE app_id = ?", (app_id,)).rowcount > 0


class SqliteVodCallbackStore:
    """VOD callback configurations in the SQLite database, sharing its writer and readers."""

    def __init__(self, db: SqliteStore) -> None:
        self.db = db

    async def get(self, app_id: str) -> VodCallback | None:
        """The application's configuration, or None."""
        return await self.db.read(get_callback, app_id)

    async def list(self) -> list[VodCallback]:
        """Every configuration."""
        return await self.db.read(list_callbacks)

    async def put(self, callback: VodCallback, now_ms: int) -> None:
        """Set (replace) a configuration."""
        await self.db.writer.run(put_callback, callback, now_ms)

    async def delete(self, app_id: str) -> bool:
        """Remove a configuration; False when there was none."""
        return await self.db.writer.run(delete_callback, app_id)
