"""The SQL of the delivery ledger: listing, inspecting, replaying and forgetting deliveries."""

from __future__ import annotations

import sqlite3
from typing import Any

from tidings.models import AttemptRecord, DeliveryFilter, DeliveryRecord
from tidings.store.sqlite_topics import PENDING

_RECORD_COLUMNS = (
    "id, topic_name, subscription_name, endpoint, message_id, state, attempts,"
    " next_attempt_ms, created_ms, updated_ms, last_status, last_error"
)


# Finished deliveries last updated before a time. A delivery is updated no earlier than
# it was created, so `created_ms < ?` (with the same bound) selects a superset that
# `deliveries_by_time` finds without a scan of the whole ledger.
_PRUNABLE = "FROM deliveries WHERE created_ms < ?1 AND updated_ms < ?1 AND state != ?2"


def prune_ledger(conn: sqlite3.Connection, before_ms: int) -> int:
    """Forget finished deliveries (and their attempts) last updated before `before_ms`."""
    conn.execute(
        f"DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id {_PRUNABLE})",
        (before_ms, PENDING),
    )
    return conn.execute(f"DELETE {_PRUNABLE}", (before_ms, PENDING)).rowcount


# -- the ledger -------------------------------------------------------------------------


def _where(selection: DeliveryFilter, prefix: str = "") -> tuple[str, list[Any]]:
    clauses: list[str] = []
    values: list[Any] = []
    for column, value in (
        ("message_id", selection.message_id),
        ("topic_name", selection.topic_name),
        ("subscription_name", selection.subscription_name),
        ("state", selection.state),
    ):
        if value is not None:
            clauses.append(f"{prefix}{column} = ?")
            values.append(value)
    if selection.since_ms is not None:
        clauses.append(f"{prefix}created_ms >= ?")
        values.append(selection.since_ms)
    if selection.until_ms is not None:
        clauses.append(f"{prefix}created_ms < ?")
        values.append(selection.until_ms)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", values


def list_deliveries(
    conn: sqlite3.Connection, selection: DeliveryFilter, limit: int
) -> list[DeliveryRecord]:
    """Ledger entries matching `selection`, newest first."""
    where, values = _where(selection)
    rows = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM deliveries{where} ORDER BY id DESC LIMIT ?",
        (*values, limit),
    )
    return [DeliveryRecord(*row) for row in rows]


def get_delivery(
    conn: sqlite3.Connection, delivery_id: int
) -> tuple[DeliveryRecord, list[AttemptRecord]] | None:
    """One ledger entry with all its attempts, or None."""
    row = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    if row is None:
        return None
    record = DeliveryRecord(*row)
    attempts = [
        AttemptRecord(*a)
        for a in conn.execute(
            "SELECT attempt, at_ms, status, error, latency_ms FROM delivery_attempts"
            " WHERE delivery_id = ? ORDER BY attempt, id",
            (delivery_id,),
        )
    ]
    if not attempts and record.attempts:
        attempts = [inline_attempt(record)]
    return record, attempts


def inline_attempt(record: DeliveryRecord) -> AttemptRecord:
    """The one attempt of a delivery made inside its publish's transaction.

    A queue endpoint filled by the publish itself (`sqlite_publish.publish_batch`) is
    recorded as delivered with one attempt and no attempt row: that attempt is the
    enqueue, at the delivery's creation, with no HTTP status and no latency.
    """
    return AttemptRecord(1, record.created_ms, None, None, 0)


def replay(conn: sqlite3.Connection, selection: DeliveryFilter, now_ms: int) -> int:
    """Deliver again what `selection` matches, as new pending deliveries.

    Only deliveries whose message is still retained and whose subscription still exists
    can be replayed; returns how many were scheduled.
    """
    where, values = _where(selection, prefix="d.")
    return conn.execute(
        "INSERT INTO deliveries (topic_message_seq, topic_id, subscription_id, topic_name,"
        " subscription_name, endpoint, message_id, state, leased, next_attempt_ms, created_ms,"
        " updated_ms) SELECT d.topic_message_seq, d.topic_id, d.subscription_id, d.topic_name,"
        " d.subscription_name, d.endpoint, d.message_id, ?, 0, ?, ?, ?"
        " FROM deliveries d JOIN topic_messages m ON m.seq = d.topic_message_seq"
        f" JOIN subscriptions s ON s.id = d.subscription_id{where}",
        (PENDING, now_ms, now_ms, now_ms, *values),
    ).rowcount
