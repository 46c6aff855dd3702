"""The SQL of topics, subscriptions and the delivery outbox (`sqlite_publish` stores it).

Like `sqlite_ops`: each write function is one transition run by the writer, each
read function one query on a read-only connection; times come in as arguments.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tidings.models import (
    AttemptResult,
    Delivery,
    NewTopicMessage,
    QueueHandoff,
    Subscription,
    SubscriptionSpec,
    Topic,
    TopicAttributes,
)
from tidings.store.sqlite_ops import (
    decode_properties,
    insert_messages,
)
from tidings.store.writer import bounded

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

_TOPIC_COLUMNS = "id, name, created_s, modified_s, maximum_message_size, logging_enabled"
_SUBSCRIPTION_COLUMNS = (
    "s.id, s.topic_id, t.name, s.name, s.endpoint, s.filter_tag, s.notify_strategy,"
    " s.notify_content_format, s.created_s, s.modified_s"
)
_DELIVERY_COLUMNS = (
    "d.id, d.attempts, m.message_id, m.body, m.body_md5, m.publish_ms, m.expire_ms, m.tag,"
    f" m.attributes, m.group_id, m.properties, {_SUBSCRIPTION_COLUMNS}, d.ordering_key"
)
_DELIVERY_FROM = (
    " FROM deliveries d JOIN topic_messages m ON m.seq = d.topic_message_seq"
    " JOIN subscriptions s ON s.id = d.subscription_id JOIN topics t ON t.id = s.topic_id"
)


def _topic_from_row(row: tuple[Any, ...]) -> Topic:
    return Topic(row[0], row[1], TopicAttributes(row[4], bool(row[5])), row[2], row[3])


def subscription_from_row(row: tuple[Any, ...]) -> Subscription:
    """A subscription from a row of `_SUBSCRIPTION_COLUMNS`."""
    spec = SubscriptionSpec(row[4], row[5], row[6], row[7])
    return Subscription(row[0], row[1], row[2], row[3], spec, row[8], row[9])


def _delivery_from_row(row: tuple[Any, ...]) -> Delivery:
    attributes = tuple(tuple(pair) for pair in json.loads(row[8])) if row[8] else ()
    message = NewTopicMessage(
        message_id=row[2],
        body=row[3],
        body_md5=row[4],
        publish_ms=row[5],
        expire_ms=row[6],
        tag=row[7],
        attributes=attributes,
        group_id=row[9],
        properties=decode_properties(row[10]),
        ordering_key=row[-1],
    )
    subscription = subscription_from_row(row[11:-1])
    return Delivery(row[0], row[1], subscription.topic_name, subscription, message)


def _select_topic(conn: sqlite3.Connection, name: str) -> Topic | None:
    row = conn.execute(f"SELECT {_TOPIC_COLUMNS} FROM topics WHERE name = ?", (name,)).fetchone()
    return _topic_from_row(row) if row is not None else None


def _select_subscription(conn: sqlite3.Connection, topic_id: int, name: str) -> Subscription | None:
    row = conn.execute(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN topics t ON t.id = s.topic_id"
        " WHERE s.topic_id = ? AND s.name = ?",
        (topic_id, name),
    ).fetchone()
    return subscription_from_row(row) if row is not None else None


# -- topics -----------------------------------------------------------------------------


def create_topic(
    conn: sqlite3.Connection, name: str, attributes: TopicAttributes, now_s: int
) -> tuple[Topic, bool]:
    """Insert a topic unless one has the name; (topic, created)."""
    existing = _select_topic(conn, name)
    if existing is not None:
        return existing, False
    conn.execute(
        "INSERT INTO topics (name, created_s, modified_s, maximum_message_size, logging_enabled)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, now_s, now_s, attributes.maximum_message_size, int(attributes.logging_enabled)),
    )
    topic = _select_topic(conn, name)
    assert topic is not None
    return topic, True


def update_topic(
    conn: sqlite3.Connection, name: str, attributes: TopicAttributes, now_s: int
) -> Topic | None:
    """Replace a topic's attributes; None when it does not exist."""
    conn.execute(
        "UPDATE topics SET modified_s = ?, maximum_message_size = ?, logging_enabled = ?"
        " WHERE name = ?",
        (now_s, attributes.maximum_message_size, int(attributes.logging_enabled), name),
    )
    return _select_topic(conn, name)


def delete_topic(conn: sqlite3.Connection, name: str, now_ms: int) -> bool:
    """Delete a topic with its subscriptions; its pending deliveries fail."""
    topic = _select_topic(conn, name)
    if topic is None:
        return False
    conn.execute(
        "UPDATE deliveries SET state = ?, leased = 0, updated_ms = ?, last_error = ?"
        f" WHERE topic_id = ? AND state = '{PENDING}'",
        (FAILED, now_ms, "topic deleted", topic.id),
    )
    conn.execute("DELETE FROM subscriptions WHERE topic_id = ?", (topic.id,))
    conn.execute("DELETE FROM topic_messages WHERE topic_id = ?", (topic.id,))
    conn.execute("DELETE FROM topics WHERE id = ?", (topic.id,))
    return True


def get_topic(conn: sqlite3.Connection, name: str) -> Topic | None:
    """The topic called `name`, or None."""
    return _select_topic(conn, name)


def list_topics(
    conn: sqlite3.Connection, prefix: str, start_after: str | None, limit: int
) -> list[Topic]:
    """Topics by name with a prefix, after a name, at most `limit`."""
    rows = conn.execute(
        f"SELECT {_TOPIC_COLUMNS} FROM topics WHERE substr(name, 1, ?) = ? AND name > ?"
        " ORDER BY name LIMIT ?",
        (len(prefix), prefix, start_after or "", limit),
    )
    return [_topic_from_row(r) for r in rows]


def topic_message_count(conn: sqlite3.Connection, topic_id: int) -> int:
    """How many published messages still have a delivery pending."""
    row = conn.execute(
        "SELECT COUNT(DISTINCT topic_message_seq) FROM deliveries"
        f" WHERE topic_id = ? AND state = '{PENDING}'",
        (topic_id,),
    ).fetchone()
    return int(row[0])


# -- subscriptions ----------------------------------------------------------------------


def subscribe(
    conn: sqlite3.Connection, topic_id: int, name: str, spec: SubscriptionSpec, now_s: int
) -> tuple[Subscription, bool] | None:
    """Insert a subscription unless the name is taken; None when the topic is gone."""
    if conn.execute("SELECT 1 FROM topics WHERE id = ?", (topic_id,)).fetchone() is None:
        return None
    existing = _select_subscription(conn, topic_id, name)
    if existing is not None:
        return existing, False
    conn.execute(
        "INSERT INTO subscriptions (topic_id, name, endpoint, filter_tag, notify_strategy,"
        " notify_content_format, created_s, modified_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            topic_id,
            name,
            spec.endpoint,
            spec.filter_tag,
            spec.notify_strategy,
            spec.notify_content_format,
            now_s,
            now_s,
        ),
    )
    created = _select_subscription(conn, topic_id, name)
    assert created is not None
    return created, True


def set_notify_strategy(
    conn: sqlite3.Connection, topic_id: int, name: str, strategy: str, now_s: int
) -> Subscription | None:
    """Change a subscription's retry strategy; None when it does not exist."""
    conn.execute(
        "UPDATE subscriptions SET notify_strategy = ?, modified_s = ?"
        " WHERE topic_id = ? AND name = ?",
        (strategy, now_s, topic_id, name),
    )
    return _select_subscription(conn, topic_id, name)


def unsubscribe(conn: sqlite3.Connection, topic_id: int, name: str, now_ms: int) -> bool:
    """Delete a subscription; its pending deliveries fail. False when there was none."""
    existing = _select_subscription(conn, topic_id, name)
    if existing is None:
        return False
    conn.execute(
        "UPDATE deliveries SET state = ?, leased = 0, updated_ms = ?, last_error = ?"
        f" WHERE subscription_id = ? AND state = '{PENDING}'",
        (FAILED, now_ms, "subscription deleted", existing.id),
    )
    conn.execute("DELETE FROM subscriptions WHERE id = ?", (existing.id,))
    return True


def get_subscription(conn: sqlite3.Connection, topic_id: int, name: str) -> Subscription | None:
    """The subscription `name` of a topic, or None."""
    return _select_subscription(conn, topic_id, name)


def list_subscriptions(
    conn: sqlite3.Connection, topic_id: int, prefix: str, start_after: str | None, limit: int
) -> list[Subscription]:
    """A topic's subscriptions by name with a prefix, after a name, at most `limit`."""
    rows = conn.execute(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN topics t ON t.id = s.topic_id"
        " WHERE s.topic_id = ? AND substr(s.name, 1, ?) = ? AND s.name > ?"
        " ORDER BY s.name LIMIT ?",
        (topic_id, len(prefix), prefix, start_after or "", limit),
    )
    return [subscription_from_row(r) for r in rows]


# -- the delivery engine's outbox (stored by sqlite_publish) -----------------------------


# A pending delivery may go unless an earlier one of its subscription and ordering key
# is pending too (the claim and the scheduler's next wake-up both apply it). Unordered
# deliveries stop at the first test; ordered ones cost one seek in the partial index
# `deliveries_pending_by_subscription` (the literal state lets the planner use it).
_NOT_BLOCKED = (
    " AND (d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p"
    " WHERE p.subscription_id = d.subscription_id AND p.ordering_key = d.ordering_key"
    f" AND p.state = '{PENDING}' AND p.id < d.id))"
)


def queue_exists(conn: sqlite3.Connection, queue_id: int) -> bool:
    """Whether the queue with this id still exists."""
    return conn.execute("SELECT 1 FROM queues WHERE id = ?", (queue_id,)).fetchone() is not None


def release_leases(conn: sqlite3.Connection, now_ms: int) -> int:
    """Make deliveries that were in flight when the process stopped due now."""
    return conn.execute(
        "UPDATE deliveries SET leased = 0, next_attempt_ms = ?"
        f" WHERE leased = 1 AND state = '{PENDING}'",
        (now_ms,),
    ).rowcount


def release_deliveries(conn: sqlite3.Connection, delivery_ids: list[int]) -> None:
    """Give leases back: the deliveries stay due and any engine may claim them."""
    conn.execute(
        f"UPDATE deliveries SET leased = 0 WHERE id IN ({','.join('?' * len(delivery_ids))})"
        " AND state = ?",
        (*delivery_ids, PENDING),
    )


def claim_due(conn: sqlite3.Connection, now_ms: int, limit: int) -> list[Delivery]:
    """Lease up to `limit` pending deliveries that are due, oldest due first."""
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS}{_DELIVERY_FROM}"
        f" WHERE d.state = '{PENDING}' AND d.leased = 0 AND d.next_attempt_ms <= ?{_NOT_BLOCKED}"
        " ORDER BY d.next_attempt_ms, d.id LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    if rows:
        conn.execute(
            f"UPDATE deliveries SET leased = 1 WHERE id IN ({','.join('?' * len(rows))})",
            [row[0] for row in rows],
        )
    return [_delivery_from_row(row) for row in rows]


def next_due_ms(conn: sqlite3.Connection) -> int | None:
    """When the next unleased pending delivery is due, if any."""
    # ORDER BY + LIMIT rather than MIN(): with the blocking test MIN() would visit every
    # pending row; this walks `deliveries_due` in order and stops at the first one.
    row = conn.execute(
        f"SELECT d.next_attempt_ms FROM deliveries d WHERE d.state = '{PENDING}' AND d.leased = 0"
        f"{_NOT_BLOCKED} ORDER BY d.next_attempt_ms LIMIT 1",
    ).fetchone()
    return row[0] if row is not None else None


@bounded
def record_attempts(conn: sqlite3.Connection, results: list[AttemptResult]) -> None:
    """Write each attempt to the ledger and move its delivery on (done, retry or failed)."""
    for r in results:
        conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, status, error,"
            " latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (r.delivery_id, r.attempt, r.at_ms, r.status, r.error, r.latency_ms),
        )
        if r.delivered:
            state, next_ms = DELIVERED, r.at_ms
        elif r.next_attempt_ms is None:
            state, next_ms = FAILED, r.at_ms
        else:
            state, next_ms = PENDING, r.next_attempt_ms
        conn.execute(
            "UPDATE deliveries SET state = ?, leased = 0, attempts = ?, next_attempt_ms = ?,"
            " updated_ms = ?, last_status = ?, last_error = ? WHERE id = ? AND state = ?",
            (state, r.attempt, next_ms, r.at_ms, r.status, r.error, r.delivery_id, PENDING),
        )


def hand_off_to_queues(conn: sqlite3.Connection, handoffs: list[QueueHandoff]) -> list[int]:
    """Enqueue notifications into live queues and record those deliveries as done.

    Returns the ids of the queues that received messages; a handoff whose queue is gone
    is recorded as a failed attempt with its retry instead.
    """
    live = set()
    results = []
    for handoff in handoffs:
        if not queue_exists(conn, handoff.queue_id):
            results.append(handoff.missing)
            continue
        insert_messages(conn, handoff.queue_id, [handoff.message])
        live.add(handoff.queue_id)
        results.append(handoff.delivered)
    record_attempts(conn, results)
    return sorted(live)


def expire_messages(conn: sqlite3.Connection, now_ms: int) -> int:
    """Fail deliveries of messages past the topic retention, then drop those messages."""
    conn.execute(
        "UPDATE deliveries SET state = ?, leased = 0, updated_ms = ?, last_error = ?"
        f" WHERE state = '{PENDING}' AND topic_message_seq IN"
        " (SELECT seq FROM topic_messages WHERE expire_ms <= ?)",
        (FAILED, now_ms, "message retention ended", now_ms),
    )
    return conn.execute("DELETE FROM topic_messages WHERE expire_ms <= ?", (now_ms,)).rowcount
