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


def prune_ledger(conn: sqlite3.Connection, before_ms: int) -> int:
    """Forget finished deliveries (and their attempts) last updated before `before_ms`."""
    old = "SELECT id FROM deliveries WHERE state != ? AND updated_ms < ?"
    conn.execute(
        f"DELETE FROM delivery_attempts WHERE delivery_id IN ({old})", (PENDING, before_ms)
    )
    return conn.execute(
        "DELETE FROM deliveries WHERE state != ? AND updated_ms < ?", (PENDING, before_ms)
    ).rowcount


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
    attempts = conn.execute(
        "SELECT attempt, at_ms, status, error, latency_ms FROM delivery_attempts"
        " WHERE delivery_id = ? ORDER BY attempt, id",
        (delivery_id,),
    )
    return DeliveryRecord(*row), [AttemptRecord(*a) for a in attempts]


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
