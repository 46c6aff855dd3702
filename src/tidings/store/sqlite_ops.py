"""The SQL of the embedded store: each function is one state transition or query.

Write functions run on the writer connection inside a savepoint (see `writer.py`); read
functions run on a read-only connection. None of them reads a clock: times come in as
arguments.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tidings.errors import queue_not_exist
from tidings.models import (
    DeadLetterPolicy,
    DeadLetterRoute,
    HandleOutcome,
    NewMessage,
    Property,
    Queue,
    QueueAttributes,
    QueueCounts,
    ReceiveResult,
    StoredMessage,
)
from tidings.store.writer import bounded

_QUEUE_COLUMNS = (
    "id, name, created_s, modified_s, delay_seconds, maximum_message_size,"
    " message_retention_period, visibility_timeout, polling_wait_seconds, logging_enabled,"
    " dlq_target, dlq_max_receive_count"
)
_MESSAGE_COLUMNS = (
    "seq, message_id, body, body_md5, priority, enqueue_ms, visible_ms, first_dequeue_ms,"
    " dequeue_count, receipt_gen, group_id, properties"
)
_SELECT_VISIBLE = (
    f"SELECT {_MESSAGE_COLUMNS} FROM messages INDEXED BY messages_by_order"
    " WHERE queue_id = ? AND visible_ms <= ? AND expire_ms > ?"
    " ORDER BY priority, seq LIMIT ?"
)


def _queue_from_row(row: tuple[Any, ...]) -> Queue:
    dead_letter = DeadLetterPolicy(row[10], row[11]) if row[10] is not None else None
    return Queue(
        id=row[0],
        name=row[1],
        created_s=row[2],
        modified_s=row[3],
        attributes=QueueAttributes(
            delay_seconds=row[4],
            maximum_message_size=row[5],
            message_retention_period=row[6],
            visibility_timeout=row[7],
            polling_wait_seconds=row[8],
            logging_enabled=bool(row[9]),
        ),
        dead_letter=dead_letter,
    )


def encode_properties(properties: tuple[Property, ...]) -> str | None:
    """Message properties as stored: a JSON list, or NULL when there are none."""
    if not properties:
        return None
    return json.dumps([[p.name, p.value, p.type, p.system] for p in properties])


def decode_properties(text: str | None) -> tuple[Property, ...]:
    """Message properties from their stored form."""
    if not text:
        return ()
    return tuple(Property(n, v, t, bool(s)) for n, v, t, s in json.loads(text))


def _message_from_row(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(
        seq=row[0],
        message_id=row[1],
        body=row[2],
        body_md5=row[3],
        priority=row[4],
        enqueue_ms=row[5],
        visible_ms=row[6],
        first_dequeue_ms=row[7],
        dequeue_count=row[8],
        receipt_gen=row[9],
        group_id=row[10],
        properties=decode_properties(row[11]),
    )


def _as_received(row: tuple[Any, ...], now_ms: int, visible_ms: int) -> StoredMessage:
    """A selected row as the receive that is updating it leaves it (no re-read needed)."""
    seq, message_id, body, md5, priority, enqueue_ms, _, first, count, gen, group, props = row
    return StoredMessage(
        seq, message_id, body, md5, priority, enqueue_ms, visible_ms, first or now_ms,
        count + 1, gen + 1, group, decode_properties(props),
    )  # fmt: skip


def _attribute_values(attributes: QueueAttributes) -> tuple[int, ...]:
    return (
        attributes.delay_seconds,
        attributes.maximum_message_size,
        attributes.message_retention_period,
        attributes.visibility_timeout,
        attributes.polling_wait_seconds,
        int(attributes.logging_enabled),
    )


def _dead_letter_values(policy: DeadLetterPolicy | None) -> tuple[str | None, int | None]:
    if policy is None:
        return (None, None)
    return (policy.target_queue, policy.max_receive_count)


# -- writes ----------------------------------------------------------------------------


def create_queue(
    conn: sqlite3.Connection,
    name: str,
    attributes: QueueAttributes,
    dead_letter: DeadLetterPolicy | None,
    now_s: int,
) -> tuple[Queue, bool]:
    """Insert a queue unless one has the name; (queue, created)."""
    row = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return _queue_from_row(row), False
    conn.execute(
        "INSERT INTO queues (name, created_s, modified_s, delay_seconds, maximum_message_size,"
        " message_retention_period, visibility_timeout, polling_wait_seconds, logging_enabled,"
        " dlq_target, dlq_max_receive_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, now_s, now_s, *_attribute_values(attributes), *_dead_letter_values(dead_letter)),
    )
    row = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?", (name,)).fetchone()
    return _queue_from_row(row), True


def update_queue(
    conn: sqlite3.Connection,
    name: str,
    attributes: QueueAttributes,
    dead_letter: DeadLetterPolicy | None,
    now_s: int,
) -> Queue | None:
    """Replace a queue's attributes and policy; None when it does not exist."""
    conn.execute(
        "UPDATE queues SET modified_s = ?, delay_seconds = ?, maximum_message_size = ?,"
        " message_retention_period = ?, visibility_timeout = ?, polling_wait_seconds = ?,"
        " logging_enabled = ?, dlq_target = ?, dlq_max_receive_count = ? WHERE name = ?",
        (now_s, *_attribute_values(attributes), *_dead_letter_values(dead_letter), name),
    )
    row = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?", (name,)).fetchone()
    return _queue_from_row(row) if row is not None else None


def delete_queue(conn: sqlite3.Connection, name: str) -> bool:
    """Delete a queue and its messages; False when there was none."""
    row = conn.execute("SELECT id FROM queues WHERE name = ?", (name,)).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM messages WHERE queue_id = ?", (row[0],))
    conn.execute("DELETE FROM queues WHERE id = ?", (row[0],))
    return True


def message_row(queue_id: int, m: NewMessage) -> tuple[Any, ...]:
    """The values of one `messages` row, in `insert_messages` column order."""
    return (
        queue_id,
        m.message_id,
        m.body,
        m.body_md5,
        m.priority,
        m.enqueue_ms,
        m.visible_ms,
        m.expire_ms,
        m.group_id,
        encode_properties(m.properties),
    )


def insert_messages(conn: sqlite3.Connection, queue_id: int, messages: list[NewMessage]) -> None:
    """Append messages to a queue (the caller has checked that it exists)."""
    conn.executemany(
        "INSERT INTO messages (queue_id, message_id, body, body_md5, priority, enqueue_ms,"
        " visible_ms, expire_ms, group_id, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [message_row(queue_id, m) for m in messages],
    )


@bounded
def enqueue(conn: sqlite3.Connection, queue_id: int, messages: list[NewMessage]) -> None:
    """Insert messages into a live queue, or raise `QueueNotExist`."""
    row = conn.execute("SELECT name FROM queues WHERE id = ?", (queue_id,)).fetchone()
    if row is None:
        raise queue_not_exist(f"#{queue_id}")
    insert_messages(conn, queue_id, messages)


def _move_to_dead_letter(
    conn: sqlite3.Connection, seq: int, route: DeadLetterRoute, now_ms: int
) -> None:
    row = conn.execute(
        "SELECT message_id, body, body_md5, priority, expire_ms, group_id, properties"
        " FROM messages WHERE seq = ?",
        (seq,),
    ).fetchone()
    message_id, body, body_md5, priority, expire_ms, group_id, properties = row
    kept = tuple(p for p in decode_properties(properties) if not p.name.startswith("DLQ"))
    moved = NewMessage(
        message_id=message_id,
        body=body,
        body_md5=body_md5,
        priority=priority,
        enqueue_ms=now_ms,
        visible_ms=now_ms,
        # The retention clock keeps running across the move.
        expire_ms=expire_ms,
        group_id=group_id,
        properties=(
            *kept,
            Property("DLQMessageType", "DLQ", "STRING", True),
            Property("DLQSourceArn", route.source_arn, "STRING", True),
            Property("DLQOriginMessageId", message_id, "STRING", True),
        ),
    )
    conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))
    insert_messages(conn, route.target_queue_id, [moved])


@bounded
def receive(
    conn: sqlite3.Connection,
    queue_id: int,
    limit: int,
    now_ms: int,
    visibility_ms: int,
    dead_letter: DeadLetterRoute | None,
) -> ReceiveResult:
    """Take visible messages in priority-then-enqueue order; see `Store.receive`."""
    taken: list[StoredMessage] = []
    visible_ms = now_ms + visibility_ms
    while len(taken) < limit:
        rows = conn.execute(
            _SELECT_VISIBLE, (queue_id, now_ms, now_ms, limit - len(taken))
        ).fetchall()
        if not rows:
            break
        moved = False
        deliver: list[tuple[Any, ...]] = []
        for row in rows:
            if dead_letter is not None and row[8] >= dead_letter.max_receive_count:
                _move_to_dead_letter(conn, row[0], dead_letter, now_ms)
                moved = True
            else:
                deliver.append(row)
        if deliver:
            conn.execute(
                "UPDATE messages SET visible_ms = ?, dequeue_count = dequeue_count + 1,"
                " receipt_gen = receipt_gen + 1,"
                " first_dequeue_ms = CASE WHEN first_dequeue_ms = 0 THEN ?"
                " ELSE first_dequeue_ms END"
                f" WHERE seq IN ({','.join('?' * len(deliver))})",
                (visible_ms, now_ms, *(row[0] for row in deliver)),
            )
            taken.extend(_as_received(row, now_ms, visible_ms) for row in deliver)
        if not moved:
            break
    result = ReceiveResult(messages=taken)
    if not taken:
        row = conn.execute(
            "SELECT MIN(visible_ms) FROM messages WHERE queue_id = ? AND visible_ms > ?"
            " AND expire_ms > ?",
            (queue_id, now_ms, now_ms),
        ).fetchone()
        result.next_visible_ms = row[0]
    return result


def _why_handle_failed(
    conn: sqlite3.Connection, queue_id: int, seq: int, now_ms: int
) -> HandleOutcome:
    row = conn.execute(
        "SELECT 1 FROM messages WHERE seq = ? AND queue_id = ? AND expire_ms > ?",
        (seq, queue_id, now_ms),
    ).fetchone()
    return HandleOutcome("ReceiptHandleError" if row is not None else "MessageNotExist")


@bounded
def delete_messages(
    conn: sqlite3.Connection, queue_id: int, handles: list[tuple[int, int]], now_ms: int
) -> list[HandleOutcome]:
    """Delete by (seq, receipt generation) while invisible; an outcome per handle."""
    if len({seq for seq, _ in handles}) < len(handles):
        # The same message twice: outcomes depend on order, so go one handle at a time.
        return [_delete_one(conn, queue_id, handle, now_ms) for handle in handles]
    pairs = ",".join("(?, ?)" for _ in handles)
    deleted = {
        row[0]
        for row in conn.execute(
            "DELETE FROM messages WHERE queue_id = ? AND visible_ms > ? AND expire_ms > ?"
            f" AND (seq, receipt_gen) IN (VALUES {pairs}) RETURNING seq",
            (queue_id, now_ms, now_ms, *(value for pair in handles for value in pair)),
        )
    }
    return [
        HandleOutcome() if seq in deleted else _why_handle_failed(conn, queue_id, seq, now_ms)
        for seq, _ in handles
    ]


def _delete_one(
    conn: sqlite3.Connection, queue_id: int, handle: tuple[int, int], now_ms: int
) -> HandleOutcome:
    seq, gen = handle
    cursor = conn.execute(
        "DELETE FROM messages WHERE seq = ? AND queue_id = ? AND receipt_gen = ?"
        " AND visible_ms > ? AND expire_ms > ?",
        (seq, queue_id, gen, now_ms, now_ms),
    )
    if cursor.rowcount == 1:
        return HandleOutcome()
    return _why_handle_failed(conn, queue_id, seq, now_ms)


@bounded
def change_visibility(
    conn: sqlite3.Connection, queue_id: int, seq: int, gen: int, now_ms: int, visible_ms: int
) -> HandleOutcome:
    """Re-time an invisible message and bump its receipt generation."""
    cursor = conn.execute(
        "UPDATE messages SET visible_ms = ?, receipt_gen = receipt_gen + 1"
        " WHERE seq = ? AND queue_id = ? AND receipt_gen = ? AND visible_ms > ?"
        " AND expire_ms > ?",
        (visible_ms, seq, queue_id, gen, now_ms, now_ms),
    )
    if cursor.rowcount != 1:
        return _why_handle_failed(conn, queue_id, seq, now_ms)
    row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE seq = ?", (seq,)).fetchone()
    return HandleOutcome(message=_message_from_row(row))


def put_setting(conn: sqlite3.Connection, name: str, value: str) -> None:
    """Insert or replace an account-level setting."""
    conn.execute(
        "INSERT INTO settings (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def purge(conn: sqlite3.Connection, queue_id: int) -> int:
    """Delete every message of a queue."""
    return conn.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,)).rowcount


def expire(conn: sqlite3.Connection, now_ms: int, limit: int) -> int:
    """Delete up to `limit` messages past their retention."""
    return conn.execute(
        "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE expire_ms <= ? LIMIT ?)",
        (now_ms, limit),
    ).rowcount


# -- reads -----------------------------------------------------------------------------


def get_setting(conn: sqlite3.Connection, name: str) -> str | None:
    """An account-level setting, or None."""
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
    return row[0] if row is not None else None


def get_queue(conn: sqlite3.Connection, name: str) -> Queue | None:
    """The queue called `name`, or None."""
    row = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?", (name,)).fetchone()
    return _queue_from_row(row) if row is not None else None


def list_queues(
    conn: sqlite3.Connection, prefix: str, start_after: str | None, limit: int
) -> list[Queue]:
    """Queues by name with a prefix, after a name, at most `limit`."""
    rows = conn.execute(
        f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE substr(name, 1, ?) = ?"
        " AND name > ? ORDER BY name LIMIT ?",
        (len(prefix), prefix, start_after or "", limit),
    )
    return [_queue_from_row(r) for r in rows]


def queue_counts(conn: sqlite3.Connection, queue_id: int, now_ms: int) -> QueueCounts:
    """Live messages of a queue by state at `now_ms`."""
    row = conn.execute(
        "SELECT"
        " COALESCE(SUM(CASE WHEN visible_ms <= ? THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN visible_ms > ? AND dequeue_count > 0 THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN visible_ms > ? AND dequeue_count = 0 THEN 1 ELSE 0 END), 0)"
        " FROM messages WHERE queue_id = ? AND expire_ms > ?",
        (now_ms, now_ms, now_ms, queue_id, now_ms),
    ).fetchone()
    return QueueCounts(active=row[0], inactive=row[1], delayed=row[2])


def peek(conn: sqlite3.Connection, queue_id: int, limit: int, now_ms: int) -> list[StoredMessage]:
    """Visible messages in receive order, unchanged."""
    rows = conn.execute(_SELECT_VISIBLE, (queue_id, now_ms, now_ms, limit))
    return [_message_from_row(r) for r in rows]
