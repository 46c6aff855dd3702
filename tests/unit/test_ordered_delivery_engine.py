"""The delivery engine with a real store: deliveries that share an ordering key reach
each subscription one at a time, in publish order, through failures, retries and
giving up; other keys, other subscriptions and unordered deliveries are not held up."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tidings.clock import ScaledClock
from tidings.delivery.engine import DeliveryEngine
from tidings.delivery.retry import EXPONENTIAL_DECAY_RETRY
from tidings.delivery.targets import Outcome
from tidings.models import (
    Delivery,
    DeliveryFilter,
    NewTopicMessage,
    SubscriptionSpec,
    TopicAttributes,
)
from tidings.services.queues import QueueService
from tidings.store.sqlite import SqliteStore

# BACKOFF_RETRY waits 10-20 s between attempts: 5-10 ms at this speed.
SPEED = 2000.0
DEADLINE_SECONDS = 10.0


@dataclass
class Push:
    endpoint: str
    message_id: str
    key: str | None
    delivered: bool


@dataclass
class RecordingEndpoint:
    """Records every push; fails a message's first `failures[id]` pushes, and any push
    while `refuse(delivery)` says so. Tracks how many pushes of one key overlap."""

    failures: dict[str, int] = field(default_factory=dict)
    refuse: Callable[[Delivery], bool] = lambda delivery: False
    seed: int = 7
    pushes: list[Push] = field(default_factory=list)
    active: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    most_active_per_key: int = 0
    most_active: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def deliver(self, delivery: Delivery) -> Outcome:
        slot = (delivery.subscription.spec.endpoint, delivery.message.ordering_key)
        self.active[slot] += 1
        if slot[1] is not None:
            self.most_active_per_key = max(self.most_active_per_key, self.active[slot])
        self.most_active = max(self.most_active, sum(self.active.values()))
        # Pushes take varying time, so that a later one could overtake an earlier one.
        await asyncio.sleep(self.rng.uniform(0, 0.004))
        self.active[slot] -= 1
        message_id = delivery.message.message_id
        failing = self.refuse(delivery) or self.failures.get(message_id, 0) > 0
        if self.failures.get(message_id, 0) > 0:
            self.failures[message_id] -= 1
        self.pushes.append(
            Push(delivery.subscription.spec.endpoint, message_id, slot[1], not failing)
        )
        return Outcome(False, 500) if failing else Outcome(True, 204)

    async def close(self) -> None:
        pass

    def delivered(self, endpoint: str | None = None, key: str | None = "*") -> list[str]:
        """Message ids delivered (to `endpoint`, of `key`), in delivery order."""
        return [
            p.message_id
            for p in self.pushes
            if p.delivered
            and (endpoint is None or p.endpoint == endpoint)
            and (key == "*" or p.key == key)
        ]


@dataclass
class Harness:
    store: SqliteStore
    engine: DeliveryEngine
    endpoint: RecordingEndpoint
    clock: ScaledClock
    topic_id: int
    published: list[str] = field(default_factory=list)

    async def publish(self, n: int, key: str | None) -> str:
        """Publish like the server does: commit, then hand the fresh deliveries over."""
        now = self.clock.now_ms()
        message = NewTopicMessage(
            f"M{n:03d}", f"body {n}", "MD5", now, now + 86_400_000, ordering_key=key
        )
        published = await self.store.publish(self.topic_id, message, now, {})
        assert published is not None
        self.engine.submit(published.deliveries)
        self.published.append(message.message_id)
        return message.message_id

    async def until(self, condition: Callable[[], bool]) -> None:
        for _ in range(int(DEADLINE_SECONDS / 0.01)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out; pushes so far: {self.endpoint.pushes}")


HOOK = "http://127.0.0.1:9/hook"
OTHER_HOOK = "http://127.0.0.1:9/other"


async def harness(
    tmp_path: Path,
    endpoint: RecordingEndpoint,
    hooks: tuple[str, ...] = (HOOK,),
    strategy: str = "BACKOFF_RETRY",
) -> Harness:
    """A store, a topic with one subscription per hook, and a started engine."""
    store = SqliteStore(tmp_path / "db", synchronous="OFF")
    await store.open()
    clock = ScaledClock(SPEED)
    queues = QueueService(store, clock, region="r", account_id="1")
    engine = DeliveryEngine(store, clock, queues, "1", {"http": endpoint})
    topic, _ = await store.create_topic("t", TopicAttributes(), 0)
    for n, hook in enumerate(hooks):
        spec = SubscriptionSpec(hook, notify_strategy=strategy)
        await store.subscribe(topic.id, f"s{n}", spec, 0)
    await engine.start()
    return Harness(store, engine, endpoint, clock, topic.id)


@pytest.fixture
async def stop() -> AsyncIterator[list[Harness]]:
    """Stops and closes the harnesses a test made, whatever becomes of the test."""
    made: list[Harness] = []
    yield made
    for h in made:
        await h.engine.stop()
        await h.store.close()


async def test_each_key_is_delivered_in_publish_order_under_concurrency(
    tmp_path: Path, stop: list[Harness]
) -> None:
    h = await harness(tmp_path, RecordingEndpoint())
    stop.append(h)
    keys = ["b/a", "b/b", "b/c", "b/d"]
    expected: dict[str, list[str]] = {key: [] for key in keys}
    for n in range(80):
        key = keys[n % len(keys)] if n % 3 else random.Random(n).choice(keys)
        expected[key].append(await h.publish(n, key))
    await h.until(lambda: len(h.endpoint.delivered()) == 80)
    for key in keys:
        assert h.endpoint.delivered(key=key) == expected[key], key
    assert h.endpoint.most_active_per_key == 1, "two pushes of one key overlapped"
    assert h.endpoint.most_active > 1, "different keys should be pushed concurrently"


async def test_a_failing_delivery_holds_its_successors_until_its_retry_succeeds(
    tmp_path: Path, stop: list[Harness]
) -> None:
    h = await harness(tmp_path, RecordingEndpoint(failures={"M000": 2}))
    stop.append(h)
    ids = [await h.publish(n, "b/k") for n in range(5)]
    await h.until(lambda: len(h.endpoint.delivered()) == 5)
    # Two failed pushes of M000, then every message once, in order: nothing of the key
    # was even attempted while M000 was waiting for its retry.
    assert [(p.message_id, p.delivered) for p in h.endpoint.pushes] == [
        ("M000", False),
        ("M000", False),
        *[(i, True) for i in ids],
    ]


async def test_giving_up_on_a_delivery_releases_its_successors(
    tmp_path: Path, stop: list[Harness]
) -> None:
    # BACKOFF_RETRY: 4 attempts, then the delivery fails for good.
    h = await harness(tmp_path, RecordingEndpoint(failures={"M000": 100}))
    stop.append(h)
    ids = [await h.publish(n, "b/k") for n in range(3)]
    await h.until(lambda: len(h.endpoint.delivered()) == 2)
    assert [p.message_id for p in h.endpoint.pushes] == ["M000"] * 4 + ids[1:]
    (record,) = await h.store.list_deliveries(DeliveryFilter(message_id="M000"), 10)
    assert (record.state, record.attempts) == ("failed", 4)


async def test_other_keys_and_other_subscriptions_are_not_held_up(
    tmp_path: Path, stop: list[Harness]
) -> None:
    released = asyncio.Event()

    def refuse(delivery: Delivery) -> bool:
        """Key b/a fails at the first hook until the test says otherwise."""
        return (
            delivery.subscription.spec.endpoint == HOOK
            and delivery.message.ordering_key == "b/a"
            and not released.is_set()
        )

    endpoint = RecordingEndpoint(refuse=refuse)
    # Exponential retries: b/a is not given up on while the rest goes through.
    h = await harness(tmp_path, endpoint, (HOOK, OTHER_HOOK), EXPONENTIAL_DECAY_RETRY)
    stop.append(h)
    a, b = [], []
    for n in range(3):
        a.append(await h.publish(2 * n, "b/a"))
        b.append(await h.publish(2 * n + 1, "b/b"))
    await h.until(
        lambda: (
            endpoint.delivered(OTHER_HOOK, "b/a") == a
            and endpoint.delivered(OTHER_HOOK, "b/b") == b
            and endpoint.delivered(HOOK, "b/b") == b
        )
    )
    attempted = {p.message_id for p in endpoint.pushes if p.endpoint == HOOK and p.key == "b/a"}
    assert attempted == {a[0]}, "a later delivery of b/a went while the first was failing"
    assert endpoint.delivered(HOOK, "b/a") == []
    released.set()
    await h.until(lambda: endpoint.delivered(HOOK, "b/a") == a)


async def test_deliveries_without_a_key_do_not_wait_for_each_other(
    tmp_path: Path, stop: list[Harness]
) -> None:
    h = await harness(tmp_path, RecordingEndpoint(failures={"M000": 1}))
    stop.append(h)
    ids = [await h.publish(n, None) for n in range(4)]
    await h.until(lambda: len(h.endpoint.delivered()) == 4)
    # The later ones went while the first waited for its retry.
    assert h.endpoint.delivered()[-1] == ids[0]
    assert sorted(h.endpoint.delivered()) == ids


async def test_a_restart_resumes_every_key_in_order(tmp_path: Path, stop: list[Harness]) -> None:
    """Deliveries a crashed process left leased are released on start, and the claim
    hands them out one per key at a time, in publish order."""
    store = SqliteStore(tmp_path / "db", synchronous="OFF")
    await store.open()
    topic, _ = await store.create_topic("t", TopicAttributes(), 0)
    await store.subscribe(topic.id, "s0", SubscriptionSpec(HOOK), 0)
    expected: dict[str, list[str]] = {"b/x": [], "b/y": []}
    for n in range(8):
        key = "b/x" if n % 2 else "b/y"
        message = NewTopicMessage(f"M{n:03d}", "body", "MD5", 0, 2**62, ordering_key=key)
        assert await store.publish(topic.id, message, 0, {}) is not None  # never submitted
        expected[key].append(message.message_id)
    await store.close()

    reopened = SqliteStore(tmp_path / "db", synchronous="OFF")
    await reopened.open()
    clock = ScaledClock(SPEED)
    endpoint = RecordingEndpoint()
    queues = QueueService(reopened, clock, region="r", account_id="1")
    engine = DeliveryEngine(reopened, clock, queues, "1", {"http": endpoint})
    stop.append(Harness(reopened, engine, endpoint, clock, topic.id))
    await engine.start()
    await stop[-1].until(lambda: len(endpoint.delivered()) == 8)
    for key, ids in expected.items():
        assert endpoint.delivered(key=key) == ids, key
    assert endpoint.most_active_per_key == 1


async def test_the_engine_does_not_start_a_second_delivery_of_a_busy_key(
    tmp_path: Path, stop: list[Harness]
) -> None:
    """Should it ever be handed two deliveries of one subscription and key at once, the
    engine starts the first and gives the second back to the store, which holds it until
    the first is done: here through a failed attempt and its retry."""
    h = await harness(tmp_path, RecordingEndpoint(failures={"M000": 1}))
    stop.append(h)
    now = h.clock.now_ms()
    first, second = (
        NewTopicMessage(f"M{n:03d}", "body", "MD5", now, now + 86_400_000, ordering_key="b/k")
        for n in range(2)
    )
    published = await h.store.publish(h.topic_id, first, now, {})
    assert published is not None and await h.store.publish(h.topic_id, second, now, {})
    (d0,) = published.deliveries
    # The store kept the second unleased; hand the engine both as if it had not.
    d1 = Delivery(d0.id + 1, 0, d0.topic_name, d0.subscription, second)
    h.engine.submit([d0, d1])
    await h.until(lambda: len(h.endpoint.delivered()) == 2)
    assert [(p.message_id, p.delivered) for p in h.endpoint.pushes] == [
        ("M000", False),
        ("M000", True),
        ("M001", True),
    ]
    assert h.endpoint.most_active_per_key == 1
