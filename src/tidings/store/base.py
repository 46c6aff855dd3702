"""The store interface every backend implements (SQLite now, PostgreSQL later).

Each method is one atomic state transition: the services decide *what* should happen
(timers, limits, validation); a store makes it happen durably. When a method returns,
its change is on disk. Times are Unix milliseconds supplied by the caller, so a store
never reads a clock of its own.
"""

from __future__ import annotations

from typing import Protocol

from tidings.models import (
    DeadLetterPolicy,
    DeadLetterRoute,
    HandleOutcome,
    NewMessage,
    Queue,
    QueueAttributes,
    QueueCounts,
    ReceiveResult,
    StoredMessage,
)


class Store(Protocol):
    """Durable state of queues and messages."""

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
