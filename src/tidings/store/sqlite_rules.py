"""The SQL of event-notification rules.

Creating a rule also creates its automatic topic and one subscription per endpoint, in
the same transaction: a refused or failed create leaves no orphan topic behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tidings.errors import ServiceError
from tidings.models import SubscriptionSpec, TopicAttributes
from tidings.store import sqlite_topics as topic_ops
from tidings.store.sqlite import SqliteStore


@dataclass(frozen=True, slots=True)
class StoredRule:
    """A rule row: its definition (the echo JSON) and where it publishes."""

    product: str
    name: str
    definition: dict[str, Any]
    topic_name: str
    auto_topic: bool
    created_ms: int


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """The topic a new rule publishes to: an existing one, or one to create with these
    subscriptions (name, spec)."""

    name: str
    create: bool
    subscriptions: tuple[tuple[str, SubscriptionSpec], ...] = ()


_COLUMNS = "product, name, definition, topic_name, auto_topic, created_ms"


def _rule(row: tuple[Any, ...]) -> StoredRule:
    return StoredRule(row[0], row[1], json.loads(row[2]), row[3], bool(row[4]), row[5])


def list_rules(conn: sqlite3.Connection, product: str | None) -> list[StoredRule]:
    """Every rule (of one product), in creation order."""
    if product is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM event_rules ORDER BY id")
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM event_rules WHERE product = ? ORDER BY id", (product,)
        )
    return [_rule(row) for row in rows]


def create_rule(
    conn: sqlite3.Connection,
    rule: StoredRule,
    plan: TopicPlan,
    check: Callable[[list[StoredRule]], None],
    now_ms: int,
) -> StoredRule:
    """Insert a rule after `check` accepted it against the rules committed so far (of
    every product), with its automatic topic and subscriptions."""
    check(list_rules(conn, None))
    if plan.create:
        topic, created = topic_ops.create_topic(conn, plan.name, TopicAttributes(), now_ms // 1000)
        if not created:
            raise ServiceError(
                "TopicAlreadyExist", f"The topic {plan.name} the rule needs already exists."
            )
        for name, spec in plan.subscriptions:
            topic_ops.subscribe(conn, topic.id, name, spec, now_ms // 1000)
    elif topic_ops.get_topic(conn, plan.name) is None:
        raise ServiceError("TopicNotExist", f"The topic {plan.name} does not exist.")
    conn.execute(
        f"INSERT INTO event_rules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            rule.product,
            rule.name,
            json.dumps(rule.definition),
            plan.name,
            int(plan.create),
            now_ms,
        ),
    )
    return StoredRule(rule.product, rule.name, rule.definition, plan.name, plan.create, now_ms)


def delete_rule(conn: sqlite3.Connection, product: str, name: str, now_ms: int) -> bool:
    """Delete a rule and, when the rule created it, its topic; False when there was none."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM event_rules WHERE product = ? AND name = ?", (product, name)
    ).fetchone()
    if row is None:
        return False
    rule = _rule(row)
    conn.execute("DELETE FROM event_rules WHERE product = ? AND name = ?", (product, name))
    if rule.auto_topic:
        topic_ops.delete_topic(conn, rule.topic_name, now_ms)
    return True


class SqliteRuleStore:
    """Event rules in the SQLite database, sharing its writer and readers."""

    def __init__(self, db: SqliteStore) -> None:
        self.db = db

    async def list_rules(self, product: str | None) -> list[StoredRule]:
        """Every rule (of one product), in creation order."""
        return await self.db.read(list_rules, product)

    async def create_rule(
        self,
        rule: StoredRule,
        plan: TopicPlan,
        check: Callable[[list[StoredRule]], None],
        now_ms: int,
    ) -> StoredRule:
        """Create a rule with its topic and subscriptions, atomically."""
        return await self.db.writer.run(create_rule, rule, plan, check, now_ms)

    async def delete_rule(self, product: str, name: str, now_ms: int) -> bool:
        """Delete a rule (and its automatic topic)."""
        return await self.db.writer.run(delete_rule, product, name, now_ms)
