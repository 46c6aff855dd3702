"""The store interface every backend implements (SQLite now, PostgreSQL later).

Each method is one atomic state transition: the services decide *what* should happen
(timers, limits, validation); a store makes it happen durably. When a method returns,
its change is on disk. Times are Unix milliseconds supplied by the caller, so a store
never reads a clock of its own.
"""

from __future__ import annotations

from typing import Protocol

from tidings.models import (
    AttemptRecord,
    AttemptResult,
    DeadLetterPolicy,
    DeadLetterRoute,
    Delivery,
    DeliveryFilter,
    DeliveryRecord,
    HandleOutcome,
    NewMessage,
    NewTopicMessage,
    Published,
    Queue,
    QueueAttributes,
    QueueCounts,
    QueueHandoff,
    ReceiveResult,
    StoredMessage,
    Subscription,
    SubscriptionSpec,
    Topic,
    TopicAttributes,
)


class TopicStore(Protocol):
    """Durable state of topics, subscriptions, the delivery outbox and its ledger."""

    async def create_topic(
        self, name: str, attributes: TopicAttributes, now_s: int
    ) -> tuple[Topic, bool]:
        """Create a topic, or return the existing one; the flag says whether it was created."""
        ...

    async def get_topic(self, name: str) -> Topic | None:
        """The topic called `name`, or None."""
        ...

    async def update_topic(
        self, name: str, attributes: TopicAttributes, now_s: int
    ) -> Topic | None:
        """Replace a topic's attributes; None when it does not exist."""
        ...

    async def delete_topic(self, name: str, now_ms: int) -> bool:
        """Delete a topic and its subscriptions (pending deliveries fail)."""
        ...

    async def list_topics(self, prefix: str, start_after: str | None, limit: int) -> list[Topic]:
        """Topics whose name starts with `prefix`, after `start_after`, by name."""
        ...

    async def topic_message_count(self, topic_id: int) -> int:
        """Published messages of the topic with a delivery still pending."""
        ...

    async def subscribe(
        self, topic_id: int, name: str, spec: SubscriptionSpec, now_s: int
    ) -> tuple[Subscription, bool] | None:
        """Create a subscription or return the existing one; None when the topic is gone."""
        ...

    async def get_subscription(self, topic_id: int, name: str) -> Subscription | None:
        """A topic's subscription, or None."""
        ...

    async def set_notify_strategy(
        self, topic_id: int, name: str, strategy: str, now_s: int
    ) -> Subscription | None:
        """Change a subscription's retry strategy; None when it does not exist."""
        ...

    async def unsubscribe(self, topic_id: int, name: str, now_ms: int) -> bool:
        """Delete a subscription (its pending deliveries fail); False when there was none."""
        ...

    async def list_subscriptions(
        self, topic_id: int, prefix: str, start_after: str | None, limit: int
    ) -> list[Subscription]:
        """A topic's subscriptions by name."""
        ...

    async def publish(
        self,
        topic_id: int,
        message: NewTopicMessage,
        now_ms: int,
        inline: dict[int, tuple[int, NewMessage]],
    ) -> Published | None:
        """Store a message and its deliveries atomically; queue endpoints in `inline` are
        completed in the same transaction, the rest are leased to the caller."""
        ...

    async def release_leases(self, now_ms: int) -> int:
        """Make deliveries in flight at the last stop due now (start-up only)."""
        ...

    async def release_deliveries(self, delivery_ids: list[int]) -> None:
        """Give leases back so that any engine may claim these deliveries."""
        ...

    async def claim_due(self, now_ms: int, limit: int) -> list[Delivery]:
        """Lease up to `limit` due deliveries."""
        ...

    async def next_due_ms(self) -> int | None:
        """When the next unleased pending delivery is due."""
        ...

    async def record_attempts(self, results: list[AttemptResult]) -> None:
        """Record attempts in the ledger and move their deliveries on."""
        ...

    async def hand_off_to_queues(self, handoffs: list[QueueHandoff]) -> list[int]:
        """Complete deliveries to queue endpoints; returns the ids of queues that got messages."""
        ...

    async def expire_topic_messages(self, now_ms: int) -> int:
        """Fail deliveries of expired messages and drop the messages."""
        ...

    async def prune_ledger(self, before_ms: int) -> int:
        """Forget finished deliveries last updated before `before_ms`."""
        ...

    async def list_deliveries(self, selection: DeliveryFilter, limit: int) -> list[DeliveryRecord]:
        """Ledger entries, newest first."""
        ...

    async def get_delivery(
        self, delivery_id: int
    ) -> tuple[DeliveryRecord, list[AttemptRecord]] | None:
        """A ledger entry with its attempts."""
        ...

    async def replay(self, selection: DeliveryFilter, now_ms: int) -> int:
        """Schedule matching deliveries again; returns how many."""
        ...


class Store(TopicStore, Protocol):
    """Durable state of queues, messages, topics and deliveries."""

    async def open(self) -> None:
        """Connect and bring the schema up to date."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections."""
        ...

    # -- account settings ---------------------------------------------------------

    async def get_setting(self, name: str) -> str | None:
        """An account-level setting, or None when unset."""
        ...

    async def put_setting(self, name: str, value: str) -> None:
        """Set an account-level setting."""
        ...

    # -- queues -------------------------------------------------------------------

    async def create_queue(
        self,
        name: str,
        attributes: QueueAttributes,
        dead_letter: DeadLetterPolicy | None,
        now_s: int,
    ) -> tuple[Queue, bool]:
        """Create a queue, or return the existing one; the flag says whether it was created."""
        ...

    async def get_queue(self, name: str) -> Queue | None:
        """The queue called `name`, or None."""
        ...

    async def update_queue(
        self,
        name: str,
        attributes: QueueAttributes,
        dead_letter: DeadLetterPolicy | None,
        now_s: int,
    ) -> Queue | None:
        """Replace a queue's attributes; None when the queue does not exist."""
        ...

    async def delete_queue(self, name: str) -> bool:
        """Delete a queue and all its messages; False when there was none."""
        ...

    async def list_queues(self, prefix: str, start_after: str | None, limit: int) -> list[Queue]:
        """Queues whose name starts with `prefix`, after `start_after`, by name."""
        ...

    async def queue_counts(self, queue_id: int, now_ms: int) -> QueueCounts:
        """How many live messages the queue holds in each state at `now_ms`."""
        ...

    # -- messages -----------------------------------------------------------------

    async def enqueue(self, queue_id: int, messages: list[NewMessage]) -> None:
        """Append messages to a queue, all or none; `QueueNotExist` if it is gone."""
        ...

    async def receive(
        self,
        queue_id: int,
        limit: int,
        now_ms: int,
        visibility_ms: int,
        dead_letter: DeadLetterRoute | None,
    ) -> ReceiveResult:
        """Take up to `limit` visible messages (priority, then enqueue order).

        Each taken message becomes invisible until `now_ms + visibility_ms`, its dequeue
        count and receipt generation grow by one. Messages already received
        `dead_letter.max_receive_count` times move to the dead-letter queue instead.
        """
        ...

    async def peek(self, queue_id: int, limit: int, now_ms: int) -> list[StoredMessage]:
        """Up to `limit` visible messages, without changing them."""
        ...

    async def delete_messages(
        self, queue_id: int, handles: list[tuple[int, int]], now_ms: int
    ) -> list[HandleOutcome]:
        """Delete messages by (seq, receipt generation); one outcome per handle."""
        ...

    async def change_visibility(
        self, queue_id: int, seq: int, receipt_gen: int, now_ms: int, visible_ms: int
    ) -> HandleOutcome:
        """Make a received message invisible until `visible_ms`, with a new receipt generation."""
        ...

    async def purge(self, queue_id: int) -> int:
        """Delete every message of a queue; returns how many."""
        ...

    async def expire(self, now_ms: int, limit: int) -> int:
        """Delete up to `limit` messages whose retention ended; returns how many."""
        ...
