"""Deliveries that share an ordering key (an object's events) reach each subscription in
publish order: a later one waits while an earlier one is pending, whatever happens to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.models import AttemptResult, NewTopicMessage, SubscriptionSpec, TopicAttributes
from tidings.store.sqlite import SqliteStore

NOW = 1_700_000_000_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "db.sqlite")
    await opened.open()
    yield opened
    await opened.close()


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
