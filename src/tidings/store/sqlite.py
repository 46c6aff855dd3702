"""The embedded store: SQLite in WAL mode.

Writes go through one `GroupCommitWriter` connection; reads run on a small pool of
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
    AttemptRecord,
    AttemptResult,
    DeadLetterPolicy,
    DeadLetterRoute,
    Delivery,
    DeliveryFilter,
    DeliveryRecord,
    HandleOutcome,
    NewMessage,
    NewTopicMessage,
    Published,
    Queue,
    QueueAttributes,
    QueueCounts,
    QueueHandoff,
    ReceiveResult,
    StoredMessage,
    Subscription,
    SubscriptionSpec,
    Topic,
    TopicAttributes,
)
from tidings.store import sqlite_ledger as ledger_ops
from tidings.store import sqlite_ops as ops
from tidings.store import sqlite_publish as publish_ops
from tidings.store import sqlite_topics as topic_ops
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
        self.writer = GroupCommitWriter(self._connect_writer)
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="tidings-reader")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        # A write op that dirties more than a few pages (a PUT with its event: object,
        # topic message, delivery and queue rows) would otherwise spill its savepoint's
        # journal to a temporary file: open, writes and unlink on every op.
        conn.execute("PRAGMA temp_store = MEMORY")
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

    async def read(self, op: Callable[..., T], *args: Any) -> T:
        """Run `op(read-only connection, *args)` on the reader pool (for sibling stores)."""
        return await self._read(op, *args)

    async def open(self) -> None:
        """Create the database if needed, switch to WAL and apply migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            apply_migrations(conn)
        finally:
            conn.close()
        self.writer.start()

    async def close(self) -> None:
        """Commit queued writes, then close every connection."""
        await self.writer.stop()
        self._readers.shutdown(wait=True)

    async def get_setting(self, name: str) -> str | None:
        """An account-level setting, or None when unset."""
        return await self._read(ops.get_setting, name)

    async def put_setting(self, name: str, value: str) -> None:
        """Set an account-level setting."""
        await self.writer.run(ops.put_setting, name, value)

    async def create_queue(
        self,
        name: str,
        attributes: QueueAttributes,
        dead_letter: DeadLetterPolicy | None,
        now_s: int,
    ) -> tuple[Queue, bool]:
        """Create a queue, or return the existing one; the flag says whether it was created."""
        return await self.writer.run(ops.create_queue, name, attributes, dead_letter, now_s)

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
        return await self.writer.run(ops.update_queue, name, attributes, dead_letter, now_s)

    async def delete_queue(self, name: str) -> bool:
        """Delete a queue and all its messages; False when there was none."""
        return await self.writer.run(ops.delete_queue, name)

    async def list_queues(self, prefix: str, start_after: str | None, limit: int) -> list[Queue]:
        """Queues whose name starts with `prefix`, after `start_after`, by name."""
        return await self._read(ops.list_queues, prefix, start_after, limit)

    async def queue_counts(self, queue_id: int, now_ms: int) -> QueueCounts:
        """How many live messages the queue holds in each state at `now_ms`."""
        return await self._read(ops.queue_counts, queue_id, now_ms)

    async def enqueue(self, queue_id: int, messages: list[NewMessage]) -> None:
        """Append messages to a queue, all or none; `QueueNotExist` if it is gone."""
        await self.writer.run(ops.enqueue, queue_id, messages)

    async def receive(
        self,
        queue_id: int,
        limit: int,
        now_ms: int,
        visibility_ms: int,
        dead_letter: DeadLetterRoute | None,
    ) -> ReceiveResult:
        """Take up to `limit` visible messages; see `Store.receive`."""
        return await self.writer.run(
            ops.receive, queue_id, limit, now_ms, visibility_ms, dead_letter
        )

    async def peek(self, queue_id: int, limit: int, now_ms: int) -> list[StoredMessage]:
        """Up to `limit` visible messages, without changing them."""
        return await self._read(ops.peek, queue_id, limit, now_ms)

    async def delete_messages(
        self, queue_id: int, handles: list[tuple[int, int]], now_ms: int
    ) -> list[HandleOutcome]:
        """Delete messages by (seq, receipt generation); one outcome per handle."""
        return await self.writer.run(ops.delete_messages, queue_id, handles, now_ms)

    async def change_visibility(
        self, queue_id: int, seq: int, receipt_gen: int, now_ms: int, visible_ms: int
    ) -> HandleOutcome:
        """Make a received message invisible until `visible_ms`, with a new receipt."""
        return await self.writer.run(
            ops.change_visibility, queue_id, seq, receipt_gen, now_ms, visible_ms
        )

    async def purge(self, queue_id: int) -> int:
        """Delete every message of a queue; returns how many."""
        return await self.writer.run(ops.purge, queue_id)

    async def expire(self, now_ms: int, limit: int) -> int:
        """Delete up to `limit` messages whose retention ended; returns how many."""
        return await self.writer.run(ops.expire, now_ms, limit)

    # -- topics ---------------------------------------------------------------------------

    async def create_topic(
        self, name: str, attributes: TopicAttributes, now_s: int
    ) -> tuple[Topic, bool]:
        """Create a topic, or return the existing one."""
        return await self.writer.run(topic_ops.create_topic, name, attributes, now_s)

    async def get_topic(self, name: str) -> Topic | None:
        """The topic called `name`, or None."""
        return await self._read(topic_ops.get_topic, name)

    async def update_topic(
        self, name: str, attributes: TopicAttributes, now_s: int
    ) -> Topic | None:
        """Replace a topic's attributes."""
        return await self.writer.run(topic_ops.update_topic, name, attributes, now_s)

    async def delete_topic(self, name: str, now_ms: int) -> bool:
        """Delete a topic and its subscriptions."""
        return await self.writer.run(topic_ops.delete_topic, name, now_ms)

    async def list_topics(self, prefix: str, start_after: str | None, limit: int) -> list[Topic]:
        """Topics by name."""
        return await self._read(topic_ops.list_topics, prefix, start_after, limit)

    async def topic_message_count(self, topic_id: int) -> int:
        """Published messages of the topic with a delivery still pending."""
        return await self._read(topic_ops.topic_message_count, topic_id)

    async def subscribe(
        self, topic_id: int, name: str, spec: SubscriptionSpec, now_s: int
    ) -> tuple[Subscription, bool] | None:
        """Create a subscription or return the existing one."""
        return await self.writer.run(topic_ops.subscribe, topic_id, name, spec, now_s)

    async def get_subscription(self, topic_id: int, name: str) -> Subscription | None:
        """A topic's subscription, or None."""
        return await self._read(topic_ops.get_subscription, topic_id, name)

    async def set_notify_strategy(
        self, topic_id: int, name: str, strategy: str, now_s: int
    ) -> Subscription | None:
        """Change a subscription's retry strategy."""
        return await self.writer.run(topic_ops.set_notify_strategy, topic_id, name, strategy, now_s)

    async def unsubscribe(self, topic_id: int, name: str, now_ms: int) -> bool:
        """Delete a subscription."""
        return await self.writer.run(topic_ops.unsubscribe, topic_id, name, now_ms)

    async def list_subscriptions(
        self, topic_id: int, prefix: str, start_after: str | None, limit: int
    ) -> list[Subscription]:
        """A topic's subscriptions by name."""
        return await self._read(topic_ops.list_subscriptions, topic_id, prefix, start_after, limit)

    async def publish(
        self,
        topic_id: int,
        message: NewTopicMessage,
        now_ms: int,
        inline: dict[int, tuple[int, NewMessage]],
    ) -> Published | None:
        """Store a message with a leased delivery per matching subscription."""
        done = await self.writer.run(publish_ops.publish, topic_id, message, now_ms, inline)
        return done[0] if done else None

    async def release_leases(self, now_ms: int) -> int:
        """Make deliveries in flight at the last stop due now."""
        return await self.writer.run(topic_ops.release_leases, now_ms)

    async def release_deliveries(self, delivery_ids: list[int]) -> None:
        """Give leases back so that any engine may claim these deliveries."""
        await self.writer.run(topic_ops.release_deliveries, delivery_ids)

    async def claim_due(self, now_ms: int, limit: int) -> list[Delivery]:
        """Lease up to `limit` due deliveries."""
        return await self.writer.run(topic_ops.claim_due, now_ms, limit)

    async def next_due_ms(self) -> int | None:
        """When the next unleased pending delivery is due."""
        return await self._read(topic_ops.next_due_ms)

    async def record_attempts(self, results: list[AttemptResult]) -> None:
        """Record attempts and move their deliveries on."""
        await self.writer.run(topic_ops.record_attempts, results)

    async def hand_off_to_queues(self, handoffs: list[QueueHandoff]) -> list[int]:
        """Complete deliveries to queue endpoints."""
        return await self.writer.run(topic_ops.hand_off_to_queues, handoffs)

    async def expire_topic_messages(self, now_ms: int) -> int:
        """Fail deliveries of expired messages and drop the messages."""
        return await self.writer.run(topic_ops.expire_messages, now_ms)

    async def prune_ledger(self, before_ms: int) -> int:
        """Forget finished deliveries last updated before `before_ms`."""
        return await self.writer.run(ledger_ops.prune_ledger, before_ms)

    async def list_deliveries(self, selection: DeliveryFilter, limit: int) -> list[DeliveryRecord]:
        """Ledger entries, newest first."""
        return await self._read(ledger_ops.list_deliveries, selection, limit)

    async def get_delivery(
        self, delivery_id: int
    ) -> tuple[DeliveryRecord, list[AttemptRecord]] | None:
        """A ledger entry with its attempts."""
        return await self._read(ledger_ops.get_delivery, delivery_id)

    async def replay(self, selection: DeliveryFilter, now_ms: int) -> int:
        """Schedule matching deliveries again."""
        return await self.writer.run(ledger_ops.replay, selection, now_ms)
