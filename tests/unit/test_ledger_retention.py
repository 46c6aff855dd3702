"""The ledger forgets a delivery one retention after it finished, never a pending one."""

from __future__ import annotations

from tidings.models import (
    AttemptResult,
    DeliveryFilter,
    NewTopicMessage,
    SubscriptionSpec,
    TopicAttributes,
)
from tidings.store import sqlite_ledger
from tidings.store.sqlite import SqliteStore

T0 = 1_700_000_000_000
CUTOFF = T0 + 10_000


async def publish(store: SqliteStore, topic_id: int, name: str) -> int:
    message = NewTopicMessage(name, "body", "md5", T0, T0 + 86_400_000)
    published = await store.publish(topic_id, message, T0, {})
    assert published is not None
    (delivery,) = published.deliveries
    return delivery.id


def attempt(delivery_id: int, at_ms: int, delivered: bool, retry: int | None) -> AttemptResult:
    status = 204 if delivered else 500
    return AttemptResult(delivery_id, 1, at_ms, 3, delivered, status, None, retry)


async def test_finished_deliveries_go_with_their_attempts(store: SqliteStore) -> None:
    topic, _ = await store.create_topic("t", TopicAttributes(), T0 // 1000)
    await store.subscribe(topic.id, "hook", SubscriptionSpec("http://127.0.0.1:1/x"), T0 // 1000)
    done_early = await publish(store, topic.id, "done-early")
    failed_early = await publish(store, topic.id, "failed-early")
    done_late = await publish(store, topic.id, "done-late")
    pending = await publish(store, topic.id, "pending")
    await store.record_attempts(
        [
            attempt(done_early, T0 + 1_000, True, None),
            attempt(failed_early, T0 + 2_000, False, None),
            attempt(done_late, CUTOFF + 1, True, None),
            attempt(pending, T0 + 3_000, False, T0 + 5_000),  # still to be retried
        ]
    )
    assert await store.prune_ledger(CUTOFF) == 2
    left = await store.list_deliveries(DeliveryFilter(), 10)
    assert sorted(r.message_id for r in left) == ["done-late", "pending"]
    assert await store.get_delivery(done_early) is None
    kept = await store.get_delivery(pending)
    assert kept is not None and [a.status for a in kept[1]] == [500]


async def test_pruning_does_not_scan_the_ledger(store: SqliteStore) -> None:
    conn = store._connect()
    plan = " ".join(
        row[3]
        for row in conn.execute(
            f"EXPLAIN QUERY PLAN DELETE {sqlite_ledger._PRUNABLE}", (CUTOFF, "pending")
        )
    )
    conn.close()
    assert "deliveries_by_time" in plan, plan
