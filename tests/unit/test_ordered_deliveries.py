"""Deliveries that share an ordering key (an object's events) reach each subscription in
publish order: a later one waits while an earlier one is pending, whatever happens to it."""

from __future__ import annotations

import asyncio

from tidings.models import (
    AttemptResult,
    NewMessage,
    NewTopicMessage,
    QueueAttributes,
    SubscriptionSpec,
    TopicAttributes,
)
from tidings.store.sqlite import SqliteStore

NOW = 1_700_000_000_000


def message(n: int, key: str | None) -> NewTopicMessage:
    return NewTopicMessage(f"M{n}", f"body {n}", "md5", NOW, NOW + 86_400_000, ordering_key=key)


def outcome(delivery_id: int, delivered: bool, retry_at: int | None = None) -> AttemptResult:
    return AttemptResult(
        delivery_id, 1, NOW, 5, delivered, 200 if delivered else 500, None, retry_at
    )


async def setup(store: SqliteStore) -> int:
    topic, _ = await store.create_topic("events", TopicAttributes(), NOW // 1000)
    await store.subscribe(topic.id, "hook", SubscriptionSpec("http://127.0.0.1:1/x"), NOW // 1000)
    return topic.id


async def test_a_later_delivery_of_a_key_waits_for_the_earlier_one(store: SqliteStore) -> None:
    topic_id = await setup(store)
    first = await store.publish(topic_id, message(1, "b/k"), NOW, {})
    second = await store.publish(topic_id, message(2, "b/k"), NOW, {})
    other = await store.publish(topic_id, message(3, "b/other"), NOW, {})
    plain = await store.publish(topic_id, message(4, None), NOW, {})
    assert first is not None and second is not None and other is not None and plain is not None
    # The first of each key (and the unordered one) go to the engine at once; the second
    # of b/k is stored unleased, behind the first.
    assert [len(p.deliveries) for p in (first, second, other, plain)] == [1, 0, 1, 1]
    assert await store.claim_due(NOW, 10) == []

    # The first fails and is to be retried later: the second still waits.
    a = first.deliveries[0].id
    await store.record_attempts([outcome(a, False, retry_at=NOW + 1000)])
    assert await store.next_due_ms() == NOW + 1000
    assert [d.message.message_id for d in await store.claim_due(NOW + 1000, 10)] == ["M1"]
    # The retry succeeds: now the second may go.
    await store.record_attempts([outcome(a, True)])
    released = await store.claim_due(NOW + 1000, 10)
    assert [d.message.message_id for d in released] == ["M2"]
    assert released[0].message.ordering_key == "b/k"


async def test_giving_up_on_the_earlier_one_releases_the_later_one(store: SqliteStore) -> None:
    topic_id = await setup(store)
    first = await store.publish(topic_id, message(1, "b/k"), NOW, {})
    await store.publish(topic_id, message(2, "b/k"), NOW, {})
    assert first is not None
    await store.record_attempts([outcome(first.deliveries[0].id, False, retry_at=None)])
    assert [d.message.message_id for d in await store.claim_due(NOW, 10)] == ["M2"]


async def test_after_a_restart_every_key_resumes_in_order(store: SqliteStore) -> None:
    topic_id = await setup(store)
    for n in range(1, 4):
        await store.publish(topic_id, message(n, "b/k"), NOW, {})
    await store.release_leases(NOW)  # what a restart does with deliveries in flight
    order = []
    for _ in range(3):
        (claimed,) = await store.claim_due(NOW, 10)
        order.append(claimed.message.message_id)
        await store.record_attempts([outcome(claimed.id, True)])
    assert order == ["M1", "M2", "M3"]


async def test_lookups_by_subscription_use_the_pending_only_index(store: SqliteStore) -> None:
    # A delivery done inside its publish costs no subscription index entry; that holds
    # only while every lookup by subscription names the pending state literally.
    conn = store._connect()
    queries = [
        ("SELECT 1 FROM deliveries WHERE subscription_id = 1 AND ordering_key = 'k'"
         " AND state = 'pending' LIMIT 1"),
        ("SELECT 1 FROM deliveries WHERE subscription_id = 1 AND ordering_key IS NOT NULL"
         " AND state = 'pending' LIMIT 1"),
        "UPDATE deliveries SET state = 'failed' WHERE subscription_id = 1 AND state = 'pending'",
    ]  # fmt: skip
    for query in queries:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert "deliveries_pending_by_subscription" in plan, (query, plan)
    conn.close()


async def test_publishes_stored_by_one_group_keep_each_keys_order(store: SqliteStore) -> None:
    topic_id = await setup(store)
    commits = store.writer.commits
    keys = ["b/k", "b/k", "b/other", "b/k", None]
    results = await asyncio.gather(
        *(store.publish(topic_id, message(n, key), NOW, {}) for n, key in enumerate(keys, 1))
    )
    assert store.writer.commits == commits + 1  # one group, one batch
    assert [len(p.deliveries) if p else None for p in results] == [1, 0, 1, 0, 1]
    leased = [d.id for p in results if p for d in p.deliveries]
    await store.record_attempts([outcome(delivery_id, True) for delivery_id in leased])
    order = []
    for _ in range(2):
        (claimed,) = await store.claim_due(NOW, 10)
        order.append(claimed.message.message_id)
        await store.record_attempts([outcome(claimed.id, True)])
    assert order == ["M2", "M4"]


async def test_queue_copies_of_one_group_are_delivered_at_once(store: SqliteStore) -> None:
    topic, _ = await store.create_topic("events", TopicAttributes(), NOW // 1000)
    queue, _ = await store.create_queue("inbox", QueueAttributes(), None, NOW // 1000)
    endpoint = "acs:mns:cn-hangzhou:1111222233334444:queues/inbox"
    subscribed = await store.subscribe(
        topic.id, "to-inbox", SubscriptionSpec(endpoint), NOW // 1000
    )
    assert subscribed is not None
    subscription = subscribed[0]
    gone, _ = await store.create_topic("gone", TopicAttributes(), NOW // 1000)
    await store.delete_topic("gone", NOW)

    def copy(n: int) -> dict[int, tuple[int, NewMessage]]:
        copied = NewMessage(f"Q{n}", f"body {n}", "md5", 8, NOW, NOW, NOW + 60_000)
        return {subscription.id: (queue.id, copied)}

    results = await asyncio.gather(
        store.publish(topic.id, message(1, "b/k"), NOW, copy(1)),
        store.publish(gone.id, message(2, "b/k"), NOW, {}),
        store.publish(topic.id, message(3, "b/k"), NOW, copy(3)),
    )
    first, lost, third = results
    assert lost is None  # its topic is gone
    assert first is not None and third is not None
    assert first.filled_queues == third.filled_queues == {queue.id}
    assert first.deliveries == third.deliveries == []
    peeked = await store.peek(queue.id, 10, NOW)
    assert [m.body for m in peeked] == ["body 1", "body 3"]
