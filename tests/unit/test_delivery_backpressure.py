"""The delivery engine stays within its in-flight cap and loses nothing past it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tidings.clock import ScaledClock
from tidings.delivery.engine import DeliveryEngine
from tidings.delivery.targets import Outcome
from tidings.models import Delivery, NewTopicMessage, SubscriptionSpec, TopicAttributes
from tidings.services.queues import QueueService
from tidings.store.sqlite import SqliteStore

CAP = 8


class BlockedEndpoint:
    """An endpoint that holds every push until released, counting the most held at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held = 0
        self.most_held = 0
        self.delivered: list[str] = []

    async def deliver(self, delivery: Delivery) -> Outcome:
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        await self.release.wait()
        self.held -= 1
        self.delivered.append(delivery.message.message_id)
        return Outcome(True, 204)

    async def close(self) -> None:
        pass


class CountingStore(SqliteStore):
    """Counts how often the engine looks for due deliveries (a spinning loop would show)."""

    claims = 0

    async def claim_due(self, now_ms: int, limit: int) -> list[Delivery]:
        self.claims += 1
        return await super().claim_due(now_ms, limit)


async def test_deliveries_past_the_cap_wait_in_the_store(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db", synchronous="OFF")
    await store.open()
    clock = ScaledClock()
    endpoint = BlockedEndpoint()
    queues = QueueService(store, clock, region="r", account_id="1")
    engine = DeliveryEngine(store, clock, queues, "1", {"http": endpoint}, max_in_flight=CAP)
    topic, _ = await store.create_topic("t", TopicAttributes(), 0)
    await store.subscribe(topic.id, "s", SubscriptionSpec("http://127.0.0.1:9/hook"), 0)
    await engine.start()
    try:
        ids = []
        for n in range(40):
            now = clock.now_ms()
            message = NewTopicMessage(f"M{n:031d}", "body", "MD5", now, now + 86_400_000)
            published = await store.publish(topic.id, message, now, {})
            assert published is not None
            engine.submit(published.deliveries)
            ids.append(message.message_id)
        claims_before = store.claims
        await asyncio.sleep(0.5)
        assert endpoint.most_held == CAP
        assert store.claims - claims_before <= 2, "the engine must not spin while full"
        endpoint.release.set()
        for _ in range(200):
            if len(endpoint.delivered) == 40:
                break
            await asyncio.sleep(0.05)
        assert sorted(endpoint.delivered) == sorted(ids)
        assert endpoint.most_held <= CAP
    finally:
        await engine.stop()
        await store.close()
