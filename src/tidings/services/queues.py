"""Queues and messages: the rules of the message service, independent of any wire format."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from tidings.clock import Clock
from tidings.errors import (
    ServiceError,
    invalid_argument,
    message_not_exist,
    queue_not_exist,
    receipt_handle_error,
)
from tidings.ids import message_id
from tidings.models import (
    DeadLetterPolicy,
    DeadLetterRoute,
    NewMessage,
    Property,
    Queue,
    QueueAttributes,
    QueueCounts,
    StoredMessage,
)
from tidings.services import limits
from tidings.services.notifier import Notifier
from tidings.services.paging import decode_marker, page
from tidings.services.queue_rules import (
    body_md5,
    build_attributes,
    check_dead_letter,
    check_properties,
)
from tidings.services.receipts import decode_handle, encode_handle
from tidings.services.validation import check_queue_name, check_range
from tidings.store.base import Store

log = logging.getLogger(__name__)

# How long a queue's attributes may be served from memory. Other processes sharing the
# store see attribute changes within this time (the cloud service documents up to a
# minute for the same propagation).
QUEUE_CACHE_SECONDS = 1.0
EXPIRY_BATCH = 1000


class Keep(Enum):
    """Marks an optional setting the caller leaves as it is."""

    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One message to send, as the client asked for it."""

    body: str
    delay_seconds: int | None = None
    priority: int | None = None
    group_id: str | None = None
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """The result of one send: a message id and MD5, or an error code and message."""

    message_id: str = ""
    body_md5: str = ""
    group_id: str | None = None
    error: ServiceError | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """A received message with the receipt handle for this receive."""

    message: StoredMessage
    receipt_handle: str


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """The result of deleting by one receipt handle."""

    receipt_handle: str
    error: ServiceError | None = None


class QueueService:
    """Create, configure and use queues on a `Store`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        region: str,
        account_id: str,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self.notifier = notifier or Notifier()
        self._cache: dict[str, tuple[Queue, float]] = {}

    # -- queue lookup -----------------------------------------------------------------

    def _forget(self, name: str) -> None:
        self._cache.pop(name, None)

    async def find(self, name: str) -> Queue | None:
        """The queue called `name`, or None (served from a short-lived cache)."""
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[1] < QUEUE_CACHE_SECONDS:
            return cached[0]
        queue = await self.store.get_queue(name)
        if queue is None:
            self._cache.pop(name, None)
        else:
            self._cache[name] = (queue, now)
        return queue

    async def get_queue(self, name: str) -> Queue:
        """The queue called `name`; `QueueNotExist` when there is none."""
        queue = await self.find(name)
        if queue is None:
            raise queue_not_exist(name)
        return queue

    def arn(self, queue_name: str) -> str:
        """The queue's resource name, as dead-lettered messages report their source."""
        return f"acs:mns:{self.region}:{self.account_id}:/queues/{queue_name}"

    # -- queue management ---------------------------------------------------------------

    async def create_queue(
        self,
        name: str,
        changes: dict[str, Any] | None = None,
        dead_letter: DeadLetterPolicy | None = None,
    ) -> tuple[Queue, bool]:
        """Create a queue; (queue, True) when created, (queue, False) when an equal one exists.

        A queue with the same name and different attributes is `QueueAlreadyExist`.
        """
        check_queue_name(name)
        attributes = build_attributes(QueueAttributes(), changes or {})
        check_dead_letter(dead_letter, name)
        now_s = self.clock.now_ms() // 1000
        queue, created = await self.store.create_queue(name, attributes, dead_letter, now_s)
        self._forget(name)
        if not created and (queue.attributes != attributes or queue.dead_letter != dead_letter):
            raise ServiceError(
                "QueueAlreadyExist",
                f"The queue {name} already exists with different attributes.",
            )
        return queue, created

    async def set_queue_attributes(
        self,
        name: str,
        changes: dict[str, Any],
        dead_letter: DeadLetterPolicy | Literal[Keep.KEEP] | None = Keep.KEEP,
    ) -> Queue:
        """Change some attributes (and, when given, the dead-letter policy; None clears it)."""
        queue = await self.get_queue(name)
        attributes = build_attributes(queue.attributes, changes)
        policy = queue.dead_letter if dead_letter is Keep.KEEP else dead_letter
        check_dead_letter(policy, name)
        now_s = self.clock.now_ms() // 1000
        updated = await self.store.update_queue(name, attributes, policy, now_s)
        self._forget(name)
        if updated is None:
            raise queue_not_exist(name)
        return updated

    async def delete_queue(self, name: str) -> bool:
        """Delete a queue and its messages; deleting a missing queue is not an error."""
        deleted = await self.store.delete_queue(name)
        self._forget(name)
        return deleted

    async def list_queues(
        self, prefix: str = "", marker: str | None = None, limit: int = 1000
    ) -> tuple[list[Queue], str | None]:
        """A page of queues by name, and the marker of the next page (None on the last)."""
        check_range("x-mns-ret-number", limit, limits.LIST_PAGE_RANGE)
        queues = await self.store.list_queues(prefix, decode_marker(marker), limit + 1)
        return page(queues, limit, lambda q: q.name)

    async def counts(self, queue: Queue) -> QueueCounts:
        """How many messages `queue` holds in each state now."""
        return await self.store.queue_counts(queue.id, self.clock.now_ms())

    async def purge(self, name: str) -> int:
        """Delete every message of a queue; returns how many were deleted."""
        queue = await self.get_queue(name)
        return await self.store.purge(queue.id)

    # -- sending ------------------------------------------------------------------------

    def _prepare(self, queue: Queue, request: SendRequest, now_ms: int) -> NewMessage:
        if not request.body:
            raise invalid_argument("The MessageBody must not be empty.")
        size = len(request.body.encode("utf-8"))
        maximum = queue.attributes.maximum_message_size
        if size > maximum:
            raise invalid_argument(
                f"The message body is {size} bytes; the queue {queue.name} accepts at most"
                f" {maximum} (MaximumMessageSize)."
            )
        delay = queue.attributes.delay_seconds
        if request.delay_seconds is not None:
            delay = check_range("DelaySeconds", request.delay_seconds, limits.DELAY_RANGE)
        priority = limits.DEFAULT_PRIORITY
        if request.priority is not None:
            priority = check_range("Priority", request.priority, limits.PRIORITY_RANGE)
        check_properties(request.properties)
        return NewMessage(
            message_id=message_id(),
            body=request.body,
            body_md5=body_md5(request.body),
            priority=priority,
            enqueue_ms=now_ms,
            visible_ms=now_ms + delay * 1000,
            expire_ms=now_ms + queue.attributes.message_retention_period * 1000,
            group_id=request.group_id,
            properties=request.properties,
        )

    def notification_message(
        self, queue: Queue, body: str, now_ms: int, md5: str | None = None
    ) -> NewMessage:
        """A topic notification as a message of `queue`: the queue's delay and retention,
        priority 8 (spec 12.6). Its size is not limited by MaximumMessageSize: the
        service, not a client, wrote it. `md5`: the body's MD5, when the caller has it."""
        return NewMessage(
            message_id=message_id(),
            body=body,
            body_md5=md5 if md5 is not None else body_md5(body),
            priority=limits.DEFAULT_PRIORITY,
            enqueue_ms=now_ms,
            visible_ms=now_ms + queue.attributes.delay_seconds * 1000,
            expire_ms=now_ms + queue.attributes.message_retention_period * 1000,
        )

    async def send(self, name: str, requests: list[SendRequest]) -> list[SendOutcome]:
        """Send one or more messages; one outcome per request, in order.

        Valid entries are enqueued (durably, before this returns) even when others fail.
        """
        queue = await self.get_queue(name)
        if not 1 <= len(requests) <= limits.BATCH_MAX_ENTRIES:
            raise invalid_argument(
                f"A batch holds 1 to {limits.BATCH_MAX_ENTRIES} messages, not {len(requests)}."
            )
        if len(requests) > 1:
            total = sum(len(r.body.encode("utf-8")) for r in requests)
            if total > limits.BATCH_BODY_MAX_BYTES:
                raise invalid_argument(
                    f"The batch's message bodies total {total} bytes;"
                    f" at most {limits.BATCH_BODY_MAX_BYTES} are allowed."
                )
        now_ms = self.clock.now_ms()
        outcomes: list[SendOutcome] = []
        accepted: list[NewMessage] = []
        for request in requests:
            try:
                message = self._prepare(queue, request, now_ms)
            except ServiceError as refused:
                outcomes.append(SendOutcome(error=refused))
            else:
                accepted.append(message)
                outcomes.append(SendOutcome(message.message_id, message.body_md5, message.group_id))
        if accepted:
            try:
                await self.store.enqueue(queue.id, accepted)
            except ServiceError as error:
                if error.code == "QueueNotExist":
                    self._forget(name)
                    raise queue_not_exist(name) from None
                raise
            self.notifier.notify(queue.id, len(accepted))
        return outcomes

    # -- receiving ----------------------------------------------------------------------

    async def _dead_letter_route(self, queue: Queue) -> DeadLetterRoute | None:
        policy = queue.dead_letter
        if policy is None:
            return None
        target = await self.find(policy.target_queue)
        if target is None:
            return None
        return DeadLetterRoute(target.id, policy.max_receive_count, self.arn(queue.name))

    async def receive(
        self, name: str, limit: int = 1, wait_seconds: int | None = None
    ) -> list[Received]:
        """Receive up to `limit` messages, long-polling up to `wait_seconds`.

        `wait_seconds=None` uses the queue's PollingWaitSeconds. Raises `MessageNotExist`
        when nothing became available in time.
        """
        check_range("numOfMessages", limit, (1, limits.BATCH_MAX_ENTRIES))
        if wait_seconds is not None:
            check_range("waitseconds", wait_seconds, (0, limits.LONG_POLL_MAX_SECONDS))
        queue = await self.get_queue(name)
        wait = queue.attributes.polling_wait_seconds if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + wait
        route = await self._dead_letter_route(queue)
        visibility_ms = queue.attributes.visibility_timeout * 1000
        while True:
            wake = self.notifier.subscribe(queue.id) if wait > 0 else None
            try:
                now_ms = self.clock.now_ms()
                result = await self.store.receive(queue.id, limit, now_ms, visibility_ms, route)
                if result.messages:
                    return [
                        Received(m, encode_handle(queue.id, m.seq, m.receipt_gen))
                        for m in result.messages
                    ]
                remaining = deadline - time.monotonic()
                if wake is None or remaining <= 0 or self.notifier.closed:
                    raise message_not_exist()
                if result.next_visible_ms is not None:
                    until_visible = self.clock.real_seconds(result.next_visible_ms - now_ms)
                    remaining = min(remaining, until_visible + 0.001)
                # A timeout only means "look again"; the loop re-checks the deadline.
                await asyncio.wait([wake], timeout=remaining)
            finally:
                if wake is not None:
                    self.notifier.unsubscribe(queue.id, wake)

    async def peek(self, name: str, limit: int = 1) -> list[StoredMessage]:
        """Up to `limit` visible messages, unchanged; `MessageNotExist` when there are none."""
        check_range("numOfMessages", limit, (1, limits.BATCH_MAX_ENTRIES))
        queue = await self.get_queue(name)
        messages = await self.store.peek(queue.id, limit, self.clock.now_ms())
        if not messages:
            raise message_not_exist()
        return messages

    # -- acknowledging ------------------------------------------------------------------

    async def delete(self, name: str, handles: list[str]) -> list[DeleteOutcome]:
        """Delete messages by receipt handle; one outcome per handle, in order."""
        if not 1 <= len(handles) <= limits.BATCH_MAX_ENTRIES:
            raise invalid_argument(
                f"Delete 1 to {limits.BATCH_MAX_ENTRIES} receipt handles at a time,"
                f" not {len(handles)}."
            )
        queue = await self.get_queue(name)
        outcomes: dict[int, DeleteOutcome] = {}
        decoded: list[tuple[int, tuple[int, int]]] = []
        for index, handle in enumerate(handles):
            try:
                queue_id, seq, gen = decode_handle(handle)
                if queue_id != queue.id:
                    raise receipt_handle_error(handle)
            except ServiceError as refused:
                outcomes[index] = DeleteOutcome(handle, refused)
            else:
                decoded.append((index, (seq, gen)))
        if decoded:
            results = await self.store.delete_messages(
                queue.id, [pair for _, pair in decoded], self.clock.now_ms()
            )
            for (index, _), result in zip(decoded, results, strict=True):
                handle = handles[index]
                error = None
                if result.error == "ReceiptHandleError":
                    error = receipt_handle_error(handle)
                elif result.error is not None:
                    error = message_not_exist(f"The message of receipt handle {handle} is gone.")
                outcomes[index] = DeleteOutcome(handle, error)
        return [outcomes[i] for i in range(len(handles))]

    async def change_visibility(
        self, name: str, handle: str, visibility_timeout: int
    ) -> tuple[str, int]:
        """Hide a received message for `visibility_timeout` seconds from now.

        Returns the new receipt handle (the old one stops working) and the next visible
        time in milliseconds.
        """
        check_range("VisibilityTimeout", visibility_timeout, limits.VISIBILITY_RANGE)
        queue = await self.get_queue(name)
        queue_id, seq, gen = decode_handle(handle)
        if queue_id != queue.id:
            raise receipt_handle_error(handle)
        now_ms = self.clock.now_ms()
        visible_ms = now_ms + visibility_timeout * 1000
        result = await self.store.change_visibility(queue.id, seq, gen, now_ms, visible_ms)
        if result.error == "ReceiptHandleError":
            raise receipt_handle_error(handle)
        if result.error is not None or result.message is None:
            raise message_not_exist(f"The message of receipt handle {handle} is gone.")
        message = result.message
        return encode_handle(queue.id, message.seq, message.receipt_gen), message.visible_ms

    # -- housekeeping ---------------------------------------------------------------------

    async def expire_once(self) -> int:
        """Delete messages whose retention has ended; returns how many."""
        total = 0
        while True:
            removed = await self.store.expire(self.clock.now_ms(), EXPIRY_BATCH)
            total += removed
            if removed < EXPIRY_BATCH:
                return total

    async def run_expiry(self, every_seconds: float = 5.0) -> None:
        """Sweep expired messages forever (a background task of the server)."""
        while True:
            try:
                removed = await self.expire_once()
                if removed:
                    log.info("retention expired %d messages", removed)
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(every_seconds)
