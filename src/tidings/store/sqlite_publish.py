"""Storing publications: a topic message and one delivery per matching subscription.

Publishing is the outbox of the delivery engine: a PublishMessage, or an object change
with the events it causes, commits its messages and their deliveries in its own
transaction. Publications are not written one by one: each op registers its own with
the writer (`at_group_end`), and `publish_batch` stores every publication of the group
at once, after the last op and before the COMMIT, so the group's events share their
statements (one lookup of a topic's subscriptions, one multi-row insert per table)
instead of paying five each.

So a group's publications take effect after its other changes: a topic or queue that
another op of the same group deletes is gone for them too, as if they had come after
that op. The group's callers are answered together, after its commit, so that order is
one they could have seen anyway.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tidings.models import Delivery, NewMessage, NewTopicMessage, Publication, Published
from tidings.store.sqlite_ops import encode_properties, message_row
from tidings.store.sqlite_topics import (
    DELIVERED,
    PENDING,
    queue_exists,
    subscription_from_row,
)
from tidings.store.writer import at_group_end, bounded

# What `publish_batch` is given: a publication, its time, and the list that receives
# what it left to do (nothing when its topic is gone: the cloud loses such events too).
PublishItem = tuple[Publication, int, list[Published]]

# The topic's name and its subscriptions (columns as `_SUBSCRIPTION_COLUMNS` of
# sqlite_topics without topic id and name), in `list_subscriptions` order; s.id is NULL
# without any.
_TARGETS = (
    "SELECT t.name, s.id, s.name, s.endpoint, s.filter_tag, s.notify_strategy,"
    " s.notify_content_format, s.created_s, s.modified_s"
    " FROM topics t LEFT JOIN subscriptions s ON s.topic_id = t.id WHERE t.id = ?"
    " ORDER BY s.name"
)


@bounded
def publish(
    conn: sqlite3.Connection,
    topic_id: int,
    message: NewTopicMessage,
    now_ms: int,
    inline: dict[int, tuple[int, NewMessage]],
) -> list[Published]:
    """PublishMessage as a writer op: the returned list holds, once the group is stored,
    the publish's `Published` (empty when the topic is gone). See `publish_batch`."""
    done: list[Published] = []
    at_group_end(publish_batch, (Publication(topic_id, message, inline), now_ms, done))
    return done


def publish_batch(conn: sqlite3.Connection, items: list[PublishItem]) -> None:
    """Store publications, in order: each message with one delivery per subscription
    whose filter tag matches.

    `inline` maps subscription ids to (queue id, message) for queue endpoints the caller
    has already rendered: those are enqueued here and recorded as delivered (the ledger
    shows their one attempt, `sqlite_ledger.inline_attempt`). Every other matching
    subscription gets a delivery leased to the caller's engine; a restart releases
    leases, so a crash after the commit delays it but never loses it. A message with
    an ordering key behind a pending one of the same subscription and key is stored
    unleased: the engine's claim lets it go once its predecessor is done.
    """
    targets: dict[int, list[tuple[Any, ...]]] = {}
    for publication, _, _ in items:
        if publication.topic_id not in targets:
            targets[publication.topic_id] = conn.execute(
                _TARGETS, (publication.topic_id,)
            ).fetchall()
    live = [item for item in items if targets[item[0].topic_id]]
    if not live:
        return
    first_seq = _next_id(conn, "topic_messages")
    conn.executemany(
        "INSERT INTO topic_messages (seq, topic_id, message_id, body, body_md5, tag,"
        " attributes, properties, group_id, publish_ms, expire_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_topic_message_row(first_seq + n, p) for n, (p, _, _) in enumerate(live)],
    )
    plan = _DeliveryPlan(conn, _next_id(conn, "deliveries"))
    for n, (publication, now_ms, done) in enumerate(live):
        done.append(plan.add(first_seq + n, publication, now_ms, targets[publication.topic_id]))
    plan.store()


class _DeliveryPlan:
    """The deliveries (and queue copies) of one batch, decided in publish order."""

    def __init__(self, conn: sqlite3.Connection, first_id: int) -> None:
        self.conn = conn
        self.next_id = first_id
        self.deliveries: list[tuple[Any, ...]] = []
        self.queue_messages: list[tuple[Any, ...]] = []
        self._queues: dict[int, bool] = {}
        self._has_pending: dict[int, bool] = {}
        # (subscription, ordering key) pairs given a pending delivery in this batch.
        self._pending_here: set[tuple[int, str]] = set()

    def add(
        self, seq: int, publication: Publication, now_ms: int, rows: list[tuple[Any, ...]]
    ) -> Published:
        """Plan one stored message's deliveries; what they leave for after the commit."""
        message = publication.message
        topic_id = publication.topic_id
        topic_name = rows[0][0]
        key = message.ordering_key
        published = Published()
        for row in rows:
            if row[1] is None:  # the topic has no subscriptions
                break
            subscription_id, filter_tag = row[1], row[4]
            if filter_tag is not None and filter_tag != message.tag:
                continue
            blocked = key is not None and self._waits(subscription_id, key)
            handoff = None if blocked else publication.inline.get(subscription_id)
            # The queue may have been deleted since the caller looked it up: then the
            # delivery goes to the engine, which records the failure and retries.
            delivered = handoff is not None and self._queue_exists(handoff[0])
            delivery_id = self.next_id
            self.next_id += 1
            self.deliveries.append(
                (
                    delivery_id,
                    seq,
                    topic_id,
                    subscription_id,
                    topic_name,
                    row[2],
                    row[3],
                    message.message_id,
                    DELIVERED if delivered else PENDING,
                    0 if delivered or blocked else 1,
                    1 if delivered else 0,
                    now_ms,
                    now_ms,
                    now_ms,
                    key,
                )
            )
            if delivered:
                assert handoff is not None
                self.queue_messages.append(message_row(*handoff))
                published.filled_queues.add(handoff[0])
                continue
            if key is not None:
                self._pending_here.add((subscription_id, key))
            if not blocked:
                subscription = subscription_from_row((row[1], topic_id, topic_name, *row[2:]))
                published.deliveries.append(
                    Delivery(delivery_id, 0, topic_name, subscription, message)
                )
        return published

    def store(self) -> None:
        """Insert every planned delivery and queue copy."""
        self.conn.executemany(
            "INSERT INTO deliveries (id, topic_message_seq, topic_id, subscription_id,"
            " topic_name, subscription_name, endpoint, message_id, state, leased, attempts,"
            " next_attempt_ms, created_ms, updated_ms, ordering_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.deliveries,
        )
        if self.queue_messages:
            self.conn.executemany(
                "INSERT INTO messages (queue_id, message_id, body, body_md5, priority,"
                " enqueue_ms, visible_ms, expire_ms, group_id, properties)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.queue_messages,
            )

    def _waits(self, subscription_id: int, key: str) -> bool:
        """Whether an earlier delivery of this subscription and key is still pending."""
        if (subscription_id, key) in self._pending_here:
            return True
        # Usually nothing of the subscription is pending (every queue copy is done at
        # once): one look per subscription and batch then spares a look per message.
        # `state = 'pending'` is spelled out (not bound) so that the planner can prove
        # the partial index `deliveries_pending_by_subscription` applies.
        pending = self._has_pending.get(subscription_id)
        if pending is None:
            pending = self._has_pending[subscription_id] = _exists(
                self.conn,
                "SELECT 1 FROM deliveries WHERE subscription_id = ?"
                f" AND ordering_key IS NOT NULL AND state = '{PENDING}' LIMIT 1",
                (subscription_id,),
            )
        return pending and _exists(
            self.conn,
            "SELECT 1 FROM deliveries WHERE subscription_id = ? AND ordering_key = ?"
            f" AND state = '{PENDING}' LIMIT 1",
            (subscription_id, key),
        )

    def _queue_exists(self, queue_id: int) -> bool:
        exists = self._queues.get(queue_id)
        if exists is None:
            exists = self._queues[queue_id] = queue_exists(self.conn, queue_id)
        return exists


def _exists(conn: sqlite3.Connection, query: str, args: tuple[Any, ...]) -> bool:
    return conn.execute(query, args).fetchone() is not None


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    """The id an AUTOINCREMENT table gives its next row (ids are never reused)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return (row[0] if row is not None else 0) + 1


def _topic_message_row(seq: int, publication: Publication) -> tuple[Any, ...]:
    message = publication.message
    return (
        seq,
        publication.topic_id,
        message.message_id,
        message.body,
        message.body_md5,
        message.tag,
        json.dumps(message.attributes) if message.attributes else None,
        encode_properties(message.properties),
        message.group_id,
        message.publish_ms,
        message.expire_ms,
    )
