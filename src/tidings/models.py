"""Domain objects passed between services and stores. Plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field


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
