"""The embedded store: SQLite in WAL mode.

Writes go through one `GroupCommitWriter` thread; reads run on a small pool of
read-only connections, which WAL lets proceed while a write is in progress. With
`synchronous=FULL` (the default) a returned write has been fsynced. The SQL itself is
in `sqlite_ops`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tidings.models import (
    DeadLetterPolicy,
    DeadLetterRoute,
    HandleOutcome,
    NewMessage,
    Queue,
    QueueAttributes,
    QueueCounts,
    ReceiveResult,
    StoredMessage,
)
from tidings.store import sqlite_ops as ops
from tidings.store.migrations import apply_migrations
from tidings.store.writer import GroupCommitWriter

T = TypeVar("T")

READER_THREADS = 2
BUSY_TIMEOUT_MS = 10_000


class SqliteStore:
    """A `Store` on one SQLite database file."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer = GroupCommitWriter(self._connect_writer)
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="tidings-reader")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    async def _read(self, op: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            return op(self._reader(), *args)

        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    async def open(self) -> None:
        """Create the database if needed, switch to WAL and apply migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            apply_migrations(conn)
        finally:
            conn.close()
        self._writer.start()

    async def close(self) -> None:
        """Commit queued writes, then close every connection."""
        await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
        self._readers.shutdown(wait=True)

    async def get_setting(self, name: str) -> str | None:
        """An account-level setting, or None when unset."""
        return await self._read(ops.get_setting, name)

    async def put_setting(self, name: str, value: str) -> None:
        """Set an account-level setting."""
        await self._writer.run(ops.put_setting, name, value)

    async def create_queue(
        self,
        name: str,
        attributes: QueueAttributes,
        dead_letter: DeadLetterPolicy | None,
        now_s: int,
    ) -> tuple[Queue, bool]:
        """Create a queue, or return the existing one; the flag says whether it was created."""
        return await self._writer.run(ops.create_queue, name, attributes, dead_letter, now_s)

    async def get_queue(self, name: str) -> Queue | None:
        """The queue called `name`, or None."""
        return await self._read(ops.get_queue, name)

    async def update_queue(
        self,
        name: str,
        attributes: QueueAttributes,
        dead_letter: DeadLetterPolicy | None,
        now_s: int,
    ) -> Queue | None:
        """Replace a queue's attributes; None when the queue does not exist."""
        return await self._writer.run(ops.update_queue, name, attributes, dead_letter, now_s)

    async def delete_queue(self, name: str) -> bool:
        """Delete a queue and all its messages; False when there was none."""
        return await self._writer.run(ops.delete_queue, name)

    async def list_queues(self, prefix: str, start_after: str | None, limit: int) -> list[Queue]:
        """Queues whose name starts with `prefix`, after `start_after`, by name."""
        return await self._read(ops.list_queues, prefix, start_after, limit)

    async def queue_counts(self, queue_id: int, now_ms: int) -> QueueCounts:
        """How many live messages the queue holds in each state at `now_ms`."""
        return await self._read(ops.queue_counts, queue_id, now_ms)

    async def enqueue(self, queue_id: int, messages: list[NewMessage]) -> None:
        """Append messages to a queue, all or none; `QueueNotExist` if it is gone."""
        await self._writer.run(ops.enqueue, queue_id, messages)

    async def receive(
        self,
        queue_id: int,
        limit: int,
        now_ms: int,
        visibility_ms: int,
        dead_letter: DeadLetterRoute | None,
    ) -> ReceiveResult:
        """Take up to `limit` visible messages; see `Store.receive`."""
        return await self._writer.run(
            ops.receive, queue_id, limit, now_ms, visibility_ms, dead_letter
        )

    async def peek(self, queue_id: int, limit: int, now_ms: int) -> list[StoredMessage]:
        """Up to `limit` visible messages, without changing them."""
        return await self._read(ops.peek, queue_id, limit, now_ms)

    async def delete_messages(
        self, queue_id: int, handles: list[tuple[int, int]], now_ms: int
    ) -> list[HandleOutcome]:
        """Delete messages by (seq, receipt generation); one outcome per handle."""
        return await self._writer.run(ops.delete_messages, queue_id, handles, now_ms)

    async def change_visibility(
        self, queue_id: int, seq: int, receipt_gen: int, now_ms: int, visible_ms: int
    ) -> HandleOutcome:
        """Make a received message invisible until `visible_ms`, with a new receipt."""
        return await self._writer.run(
            ops.change_visibility, queue_id, seq, receipt_gen, now_ms, visible_ms
        )

    async def purge(self, queue_id: int) -> int:
        """Delete every message of a queue; returns how many."""
        return await self._writer.run(ops.purge, queue_id)

    async def expire(self, now_ms: int, limit: int) -> int:
        """Delete up to `limit` messages whose retention ended; returns how many."""
        return await self._writer.run(ops.expire, now_ms, limit)
