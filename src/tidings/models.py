"""Domain objects passed between services and stores. Plain data, no behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class QueueAttributes:
    """The settable attributes of a queue (times in seconds, sizes in bytes)."""

    delay_seconds: int = 0
    maximum_message_size: int = 65536
    message_retention_period: int = 345600
    visibility_timeout: int = 30
    polling_wait_seconds: int = 0
    logging_enabled: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetterPolicy:
    """Move a message to `target_queue` once it has been received `max_receive_count` times."""

    target_queue: str
    max_receive_count: int


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue as stored. `id` is internal and changes if a queue is deleted and re-created."""

    id: int
    name: str
    attributes: QueueAttributes
    created_s: int
    modified_s: int
    dead_letter: DeadLetterPolicy | None = None


@dataclass(frozen=True, slots=True)
class Property:
    """A user or system message property (`STRING`, `NUMBER`, `BOOLEAN` or `BINARY`)."""

    name: str
    value: str
    type: str = "STRING"
    system: bool = False


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message ready to be enqueued: every timer already computed by the service."""

    message_id: str
    body: str
    body_md5: str
    priority: int
    enqueue_ms: int
    visible_ms: int
    expire_ms: int
    group_id: str | None = None
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as read back from a queue, including its receive state."""

    seq: int
    message_id: str
    body: str
    body_md5: str
    priority: int
    enqueue_ms: int
    visible_ms: int
    first_dequeue_ms: int
    dequeue_count: int
    receipt_gen: int
    group_id: str | None = None
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """How many messages a queue holds in each state."""

    active: int = 0
    inactive: int = 0
    delayed: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    """A resolved dead-letter policy: where to move messages, and when."""

    target_queue_id: int
    max_receive_count: int
    source_arn: str


@dataclass(slots=True)
class ReceiveResult:
    """Messages taken by a receive, or, when none, when the next one becomes visible."""

    messages: list[StoredMessage] = field(default_factory=list)
    next_visible_ms: int | None = None


@dataclass(frozen=True, slots=True)
class HandleOutcome:
    """The result of acting on one receipt handle: `error` is None on success."""

    error: str | None = None
    message: StoredMessage | None = None


# -- topics ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicAttributes:
    """The settable attributes of a topic."""

    maximum_message_size: int = 65536
    logging_enabled: bool = False


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic as stored."""

    id: int
    name: str
    attributes: TopicAttributes
    created_s: int
    modified_s: int


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """What a subscriber asks for; equal specs make Subscribe idempotent."""

    endpoint: str
    filter_tag: str | None = None
    notify_strategy: str = "BACKOFF_RETRY"
    notify_content_format: str = "XML"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as stored."""

    id: int
    topic_id: int
    topic_name: str
    name: str
    spec: SubscriptionSpec
    created_s: int
    modified_s: int


@dataclass(frozen=True, slots=True)
class NewTopicMessage:
    """A message ready to be published: ids and times already computed by the service."""

    message_id: str
    body: str
    body_md5: str
    publish_ms: int
    expire_ms: int
    tag: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    group_id: str | None = None
    properties: tuple[Property, ...] = ()
    # Deliveries of messages sharing a key go to each subscription in publish order
    # (OSS events: `bucket/key`); None for ordinary publishes.
    ordering_key: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message on its way to one subscription, with all a target needs to send it."""

    id: int
    attempts: int
    topic_name: str
    subscription: Subscription
    message: NewTopicMessage


@dataclass(slots=True)
class Published:
    """What a publish left to do: deliveries for the engine, queues that got messages."""

    deliveries: list[Delivery] = field(default_factory=list)
    filled_queues: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one delivery attempt did. `next_attempt_ms` None means no retry follows."""

    delivery_id: int
    attempt: int
    at_ms: int
    latency_ms: int
    delivered: bool
    status: int | None = None
    error: str | None = None
    next_attempt_ms: int | None = None


@dataclass(frozen=True, slots=True)
class QueueHandoff:
    """A delivery completed by enqueueing into a queue of the same store.

    `delivered` is recorded when the queue exists, `missing` (a failed attempt with its
    retry) when it has been deleted meanwhile.
    """

    delivered: AttemptResult
    missing: AttemptResult
    queue_id: int
    message: NewMessage


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as the ledger shows it."""

    id: int
    topic_name: str
    subscription_name: str
    endpoint: str
    message_id: str
    state: str
    attempts: int
    next_attempt_ms: int
    created_ms: int
    updated_ms: int
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a delivery, as the ledger shows it."""

    attempt: int
    at_ms: int
    status: int | None
    error: str | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries a ledger query or a replay selects (all given fields must match)."""

    message_id: str | None = None
    topic_name: str | None = None
    subscription_name: str | None = None
    state: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Publication:
    """A topic message to store inside another change's transaction (the outbox):
    `inline` holds the queue notifications rendered ahead, as for a PublishMessage."""

    topic_id: int
    message: NewTopicMessage
    inline: dict[int, tuple[int, NewMessage]] = field(default_factory=dict)


@dataclass(slots=True)
class Outbox:
    """Events to store with a change, in its transaction: `build` turns the change's
    result into publications; the store fills `published` with what they left to do."""

    build: Callable[[Any], list[Publication]]
    published: list[Published] = field(default_factory=list)
