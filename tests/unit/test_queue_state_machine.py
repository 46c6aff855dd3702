"""Property-based test of the queue state machine (spec sections 6 and 9, DLQ from 13).

`QueueService` on a real `SqliteStore` with a `ManualClock` is driven by random
sequences of sends, receives, deletes, visibility changes, peeks, purges, retention
sweeps and clock jumps, and compared after every step with a small pure-Python model.
A few example-based tests pin the tricky cases down explicitly.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tidings.clock import ManualClock
from tidings.errors import ServiceError
from tidings.models import DeadLetterPolicy, Property, QueueCounts, StoredMessage
from tidings.services.queues import QueueService, Received, SendRequest
from tidings.store.sqlite import SqliteStore

T = TypeVar("T")

REGION = "cn-hangzhou"
ACCOUNT_ID = "1234567890123456"
SOURCE = "source"
DEAD_LETTER = "dead-letter"
QUEUE_NAMES = (SOURCE, DEAD_LETTER)
# The minimum retention, so that clock jumps of up to 40 s exercise expiry. The
# dead-letter queue keeps messages longer, which shows that a moved message keeps the
# expiry it had in its source queue.
SOURCE_RETENTION_S = 60
DEAD_LETTER_RETENTION_S = 120
PEEK_ALL = 16
PURGE_BACKLOG = 8


def md5_upper(text: str) -> str:
    """`MessageBodyMD5` of a body, per spec 6.5."""
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


# -- the model --------------------------------------------------------------------------


@dataclass
class ModelMessage:
    """One stored message as the model sees it."""

    uid: int  # model identity; a dead-letter move makes a new message
    order: int  # enqueue order, the tie-breaker after priority
    message_id: str
    body: str
    priority: int
    enqueue_ms: int | None  # None: not checked (a dead-lettered copy)
    visible_ms: int
    expire_ms: int
    dequeue_count: int = 0
    first_dequeue_ms: int = 0
    generation: int = 0  # how many handles were issued; the newest is the current one
    properties: tuple[Property, ...] = ()


@dataclass
class ModelQueue:
    """A queue's settings and the messages it physically holds (expired ones included
    until a retention sweep or purge removes them)."""

    name: str
    visibility_s: int
    retention_s: int
    delay_s: int
    max_receive_count: int | None = None
    messages: list[ModelMessage] = field(default_factory=list)

    def live(self, now_ms: int) -> list[ModelMessage]:
        """Messages whose retention has not ended."""
        return [m for m in self.messages if m.expire_ms > now_ms]

    def visible(self, now_ms: int) -> list[ModelMessage]:
        """Active messages in delivery order: priority (1 first), then enqueue order."""
        active = [m for m in self.live(now_ms) if m.visible_ms <= now_ms]
        return sorted(active, key=lambda m: (m.priority, m.order))

    def counts(self, now_ms: int) -> QueueCounts:
        """Active, Inactive and Delayed counts per spec 6.1/6.2."""
        live = self.live(now_ms)
        return QueueCounts(
            active=sum(1 for m in live if m.visible_ms <= now_ms),
            inactive=sum(1 for m in live if m.visible_ms > now_ms and m.dequeue_count > 0),
            delayed=sum(1 for m in live if m.visible_ms > now_ms and m.dequeue_count == 0),
        )

    def find(self, uid: int) -> ModelMessage | None:
        """The stored message with model identity `uid`, if still stored."""
        return next((m for m in self.messages if m.uid == uid), None)


@dataclass(frozen=True)
class HandleRecord:
    """A receipt handle the service issued, and which receive of which message it names."""

    handle: str
    queue: str
    uid: int
    generation: int


def handle_outcome(queue: ModelQueue, record: HandleRecord, now_ms: int) -> str | None:
    """What using `record` for a delete or visibility change yields: None for success,
    else the error code (spec 6.7, 9.7, 9.9)."""
    message = queue.find(record.uid)
    if message is None or message.expire_ms <= now_ms:
        return "MessageNotExist"
    if record.generation == message.generation and message.visible_ms > now_ms:
        return None
    return "ReceiptHandleError"


def assert_same_message(actual: StoredMessage, expected: ModelMessage) -> None:
    """The service's view of a message matches the model's."""
    assert actual.message_id == expected.message_id
    assert actual.body == expected.body
    assert actual.body_md5 == md5_upper(expected.body)
    assert actual.priority == expected.priority
    assert actual.dequeue_count == expected.dequeue_count
    assert actual.first_dequeue_ms == expected.first_dequeue_ms
    assert actual.properties == expected.properties
    if expected.enqueue_ms is not None:
        assert actual.enqueue_ms == expected.enqueue_ms


# -- the state machine ------------------------------------------------------------------

send_requests = st.builds(
    SendRequest,
    body=st.text(alphabet="abcxyz-é世", min_size=1, max_size=8),
    delay_seconds=st.none() | st.integers(0, 5),
    priority=st.none() | st.integers(1, 16),
)


class QueueStateMachine(RuleBasedStateMachine):
    """Random operations on a source queue with a dead-letter policy and on its
    dead-letter queue (which has none), checked against `ModelQueue` after every step:
    counts and a full peek of both queues must match the model."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = Path(tempfile.mkdtemp(prefix="tidings-sm-"))
        self.store = SqliteStore(self.directory / "tidings.db", synchronous="OFF")
        self.clock = ManualClock()
        self.service = QueueService(self.store, self.clock, region=REGION, account_id=ACCOUNT_ID)
        self.run(self.store.open())
        self.queues: dict[str, ModelQueue] = {}
        self.handles: list[HandleRecord] = []
        self.issued: set[str] = set()
        self.next_uid = 0
        self.next_order = 0
        self.dead_letter_moves = 0

    # -- plumbing

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one service call to completion on the machine's own event loop."""
        return self.loop.run_until_complete(coroutine)

    def error_code(self, coroutine: Coroutine[Any, Any, Any]) -> str:
        """Run a call that must fail with a `ServiceError`; return its code."""
        with pytest.raises(ServiceError) as caught:
            self.run(coroutine)
        return caught.value.code

    def teardown(self) -> None:
        # Steer generation towards runs that exercise the rarest path.
        target(float(self.dead_letter_moves), label="dead-letter moves")
        try:
            self.run(self.store.close())
            self.run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def now(self) -> int:
        return self.clock.now_ms()

    def new_uid(self) -> int:
        self.next_uid += 1
        return self.next_uid

    def new_order(self) -> int:
        self.next_order += 1
        return self.next_order

    def has_handles(self) -> bool:
        return bool(self.handles)

    def has_messages(self) -> bool:
        return any(q.messages for q in self.queues.values())

    def issue_handle(self, queue: str, message: ModelMessage, handle: str) -> None:
        """Record a newly issued handle; it must differ from every handle issued before,
        including those of messages since deleted, purged, expired or dead-lettered."""
        assert handle not in self.issued
        message.generation += 1
        self.handles.append(HandleRecord(handle, queue, message.uid, message.generation))
        self.issued.add(handle)

    def move_to_dead_letter(self, source: ModelQueue, message: ModelMessage) -> None:
        self.dead_letter_moves += 1
        source.messages.remove(message)
        self.queues[DEAD_LETTER].messages.append(
            ModelMessage(
                uid=self.new_uid(),
                order=self.new_order(),
                message_id=message.message_id,
                body=message.body,
                priority=message.priority,
                enqueue_ms=None,
                visible_ms=self.now,
                expire_ms=message.expire_ms,
                properties=(
                    Property("DLQMessageType", "DLQ", "STRING", True),
                    Property("DLQSourceArn", self.service.arn(source.name), "STRING", True),
                    Property("DLQOriginMessageId", message.message_id, "STRING", True),
                ),
            )
        )

    # -- setup

    @initialize(
        visibility_s=st.integers(1, 5),
        delay_s=st.integers(0, 2),
        max_receive_count=st.integers(1, 2),
        dead_letter_visibility_s=st.integers(1, 5),
    )
    def create_queues(
        self,
        visibility_s: int,
        delay_s: int,
        max_receive_count: int,
        dead_letter_visibility_s: int,
    ) -> None:
        dead_letter = ModelQueue(
            DEAD_LETTER, dead_letter_visibility_s, DEAD_LETTER_RETENTION_S, delay_s=0
        )
        source = ModelQueue(SOURCE, visibility_s, SOURCE_RETENTION_S, delay_s, max_receive_count)
        for model in (dead_letter, source):
            policy = None
            if model.max_receive_count is not None:
                policy = DeadLetterPolicy(DEAD_LETTER, model.max_receive_count)
            changes = {
                "visibility_timeout": model.visibility_s,
                "message_retention_period": model.retention_s,
                "delay_seconds": model.delay_s,
            }
            _, created = self.run(self.service.create_queue(model.name, changes, policy))
            assert created
            self.queues[model.name] = model

    # -- rules

    @rule(
        queue=st.sampled_from(QUEUE_NAMES),
        requests=st.lists(send_requests, min_size=1, max_size=4),
    )
    def send(self, queue: str, requests: list[SendRequest]) -> None:
        model = self.queues[queue]
        outcomes = self.run(self.service.send(queue, requests))
        assert len(outcomes) == len(requests)
        for request, outcome in zip(requests, outcomes, strict=True):
            assert outcome.error is None
            assert outcome.body_md5 == md5_upper(request.body)
            delay = model.delay_s if request.delay_seconds is None else request.delay_seconds
            model.messages.append(
                ModelMessage(
                    uid=self.new_uid(),
                    order=self.new_order(),
                    message_id=outcome.message_id,
                    body=request.body,
                    priority=8 if request.priority is None else request.priority,
                    enqueue_ms=self.now,
                    visible_ms=self.now + delay * 1000,
                    expire_ms=self.now + model.retention_s * 1000,
                )
            )
        ids = [m.message_id for m in model.messages]
        assert len(set(ids)) == len(ids)

    @rule(queue=st.sampled_from(QUEUE_NAMES), limit=st.integers(1, 16))
    def receive(self, queue: str, limit: int) -> None:
        model = self.queues[queue]
        delivered: list[ModelMessage] = []
        for message in model.visible(self.now):
            if len(delivered) == limit:
                break
            if (
                model.max_receive_count is not None
                and message.dequeue_count >= model.max_receive_count
            ):
                self.move_to_dead_letter(model, message)
            else:
                delivered.append(message)
        if not delivered:
            assert self.error_code(self.service.receive(queue, limit, 0)) == "MessageNotExist"
            return
        received: list[Received] = self.run(self.service.receive(queue, limit, 0))
        assert [r.message.message_id for r in received] == [m.message_id for m in delivered]
        for got, message in zip(received, delivered, strict=True):
            message.dequeue_count += 1
            message.first_dequeue_ms = message.first_dequeue_ms or self.now
            message.visible_ms = self.now + model.visibility_s * 1000
            assert_same_message(got.message, message)
            assert got.message.visible_ms == message.visible_ms
            self.issue_handle(queue, message, got.receipt_handle)

    def has_received_in_flight(self) -> bool:
        return bool(self.in_flight(SOURCE))

    def in_flight(self, queue: str) -> list[ModelMessage]:
        """Received messages of `queue` that are invisible now and will outlive that."""
        now = self.now
        return [
            m
            for m in self.queues[queue].live(now)
            if m.dequeue_count > 0 and now < m.visible_ms < m.expire_ms
        ]

    @precondition(has_received_in_flight)
    @rule(limit=st.integers(1, 16))
    def receive_again(self, limit: int) -> None:
        """A consumer that waits out the visibility timeout of the source queue's next
        in-flight message and receives again: the road to the dead-letter queue."""
        self.clock.advance(min(m.visible_ms for m in self.in_flight(SOURCE)) - self.now)
        self.receive(SOURCE, limit)

    @precondition(has_handles)
    @rule(data=st.data(), size=st.integers(1, 3))
    def delete(self, data: st.DataObject, size: int) -> None:
        first = data.draw(st.sampled_from(self.handles), label="handle")
        queue = first.queue
        same_queue = [h for h in self.handles if h.queue == queue]
        more = data.draw(st.lists(st.sampled_from(same_queue), max_size=size - 1), label="more")
        records = [first, *more]
        model = self.queues[queue]
        expected: list[str | None] = []
        for record in records:
            outcome = handle_outcome(model, record, self.now)
            expected.append(outcome)
            if outcome is None:
                message = model.find(record.uid)
                assert message is not None
                model.messages.remove(message)
        outcomes = self.run(self.service.delete(queue, [r.handle for r in records]))
        assert [o.receipt_handle for o in outcomes] == [r.handle for r in records]
        assert [o.error.code if o.error else None for o in outcomes] == expected

    @precondition(has_handles)
    @rule(data=st.data(), timeout_s=st.integers(1, 10))
    def change_visibility(self, data: st.DataObject, timeout_s: int) -> None:
        record = data.draw(st.sampled_from(self.handles), label="handle")
        model = self.queues[record.queue]
        outcome = handle_outcome(model, record, self.now)
        call = self.service.change_visibility(record.queue, record.handle, timeout_s)
        if outcome is not None:
            assert self.error_code(call) == outcome
            return
        handle, visible_ms = self.run(call)
        message = model.find(record.uid)
        assert message is not None
        message.visible_ms = self.now + timeout_s * 1000
        assert visible_ms == message.visible_ms
        assert handle != record.handle
        self.issue_handle(record.queue, message, handle)

    @rule(queue=st.sampled_from(QUEUE_NAMES), limit=st.integers(1, 16))
    def peek(self, queue: str, limit: int) -> None:
        """Peek with a random limit (the invariant peeks at 16 after every step)."""
        self.check_peek(queue, limit)

    def check_peek(self, queue: str, limit: int) -> None:
        """Peek shows the model's next `limit` active messages, in order, unchanged."""
        expected = self.queues[queue].visible(self.now)[:limit]
        if not expected:
            assert self.error_code(self.service.peek(queue, limit)) == "MessageNotExist"
            return
        peeked = self.run(self.service.peek(queue, limit))
        assert [m.message_id for m in peeked] == [m.message_id for m in expected]
        for got, message in zip(peeked, expected, strict=True):
            assert_same_message(got, message)
            assert got.visible_ms == message.visible_ms

    @rule(
        seconds=st.integers(0, 40),
        extra_ms=st.sampled_from([0, 1, 500, 999]),
        sweep=st.booleans(),
    )
    def advance(self, seconds: int, extra_ms: int, sweep: bool) -> None:
        """Let 0 to 40 s pass, then maybe run the retention sweep.

        (Whole seconds plus a few odd milliseconds: Hypothesis favours small numbers, so a
        plain millisecond range would mostly move the clock by less than a second.)
        """
        self.clock.advance(seconds * 1000 + extra_ms)
        if sweep:
            self.sweep_expired()

    def sweep_expired(self) -> None:
        expected = 0
        for model in self.queues.values():
            kept = [m for m in model.messages if m.expire_ms > self.now]
            expected += len(model.messages) - len(kept)
            model.messages = kept
        assert self.run(self.service.expire_once()) == expected

    @precondition(has_messages)
    @rule(data=st.data(), offset_ms=st.sampled_from([-1, 0, 1]))
    def advance_to_a_deadline(self, data: st.DataObject, offset_ms: int) -> None:
        """Jump to just before, at or just after a visibility or expiry deadline."""
        messages = [m for q in self.queues.values() for m in q.messages]
        message = data.draw(st.sampled_from(messages), label="message")
        # Mostly visibility deadlines: an expiry deadline ends the message for good.
        deadline = message.expire_ms if data.draw(st.integers(0, 3)) == 3 else message.visible_ms
        when = deadline + offset_ms
        if when > self.now:
            self.clock.advance(when - self.now)

    def has_backlog(self) -> bool:
        return any(len(q.messages) >= PURGE_BACKLOG for q in self.queues.values())

    @precondition(has_backlog)
    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        """Purge a queue that has built up a backlog (so purges stay rare)."""
        names = [n for n, q in self.queues.items() if len(q.messages) >= PURGE_BACKLOG]
        queue = data.draw(st.sampled_from(names), label="queue")
        model = self.queues[queue]
        purged = self.run(self.service.purge(queue))
        # Expired messages not yet swept may or may not count; live ones must.
        assert len(model.live(self.now)) <= purged <= len(model.messages)
        model.messages = []

    # -- invariants

    @invariant()
    def counts_and_peek_match_the_model(self) -> None:
        for name, model in self.queues.items():
            queue = self.run(self.service.get_queue(name))
            assert self.run(self.service.counts(queue)) == model.counts(self.now)
            self.check_peek(name, PEEK_ALL)


QueueStateMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueStateMachine = QueueStateMachine.TestCase


# -- example-based tests ----------------------------------------------------------------


@dataclass
class Env:
    """A queue service on a fresh SQLite store with a manual clock."""

    service: QueueService
    clock: ManualClock


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = SqliteStore(tmp_path / "tidings.db", synchronous="OFF")
    await store.open()
    clock = ManualClock()
    yield Env(QueueService(store, clock, region=REGION, account_id=ACCOUNT_ID), clock)
    await store.close()


async def error_code(coroutine: Coroutine[Any, Any, Any]) -> str:
    with pytest.raises(ServiceError) as caught:
        await coroutine
    return caught.value.code


async def test_priority_then_send_order_across_and_within_batches(env: Env) -> None:
    service = env.service
    await service.create_queue("q", {"visibility_timeout": 5})
    first = await service.send(
        "q",
        [
            SendRequest("a8"),
            SendRequest("b1", priority=1),
            SendRequest("c8", priority=8),
            SendRequest("d16", priority=16),
            SendRequest("e1", priority=1),
        ],
    )
    env.clock.advance(1)
    second = await service.send("q", [SendRequest("f1", priority=1), SendRequest("g8")])
    assert [o.error for o in first + second] == [None] * 7
    expected = ["b1", "e1", "f1", "a8", "c8", "g8", "d16"]
    assert [m.body for m in await service.peek("q", 16)] == expected
    assert [m.priority for m in await service.peek("q", 16)] == [1, 1, 1, 8, 8, 8, 16]
    # A batch receive takes them in the same order; a limited one takes the prefix.
    taken = await service.receive("q", 2, 0)
    assert [r.message.body for r in taken] == expected[:2]
    taken += await service.receive("q", 16, 0)
    assert [r.message.body for r in taken] == expected
    assert await error_code(service.receive("q", 1, 0)) == "MessageNotExist"
    # When they all become visible again, the order is unchanged.
    env.clock.advance(5000)
    assert [r.message.body for r in await service.receive("q", 16, 0)] == expected


async def test_delay_hides_until_due_and_message_delay_overrides_queue_delay(env: Env) -> None:
    service = env.service
    await service.create_queue("q", {"delay_seconds": 2})
    await service.send("q", [SendRequest("queue-delay"), SendRequest("no-delay", delay_seconds=0)])
    queue = await service.get_queue("q")
    assert await service.counts(queue) == QueueCounts(active=1, delayed=1)
    env.clock.advance(1999)
    assert [m.body for m in await service.peek("q", 16)] == ["no-delay"]
    env.clock.advance(1)
    assert [m.body for m in await service.peek("q", 16)] == ["queue-delay", "no-delay"]


async def test_dead_letter_move_keeps_expiry_and_sets_system_properties(env: Env) -> None:
    service = env.service
    await service.create_queue("dlq", {"message_retention_period": 600, "visibility_timeout": 5})
    await service.create_queue(
        "src",
        {"message_retention_period": 60, "visibility_timeout": 5},
        DeadLetterPolicy("dlq", 2),
    )
    user = Property("k", "v")
    sent_at = env.clock.now_ms()
    (outcome,) = await service.send("src", [SendRequest("body", priority=3, properties=(user,))])
    for count in (1, 2):
        (received,) = await service.receive("src", 1, 0)
        assert received.message.dequeue_count == count
        env.clock.advance(5000)
    # Received max_receive_count times: the next receive moves it instead of delivering.
    src = await service.get_queue("src")
    assert await service.counts(src) == QueueCounts(active=1)
    assert await error_code(service.receive("src", 1, 0)) == "MessageNotExist"
    assert await service.counts(src) == QueueCounts()
    (moved,) = await service.peek("dlq", 1)
    assert (moved.message_id, moved.body, moved.priority) == (outcome.message_id, "body", 3)
    assert moved.dequeue_count == 0
    assert moved.properties == (
        user,
        Property("DLQMessageType", "DLQ", "STRING", True),
        Property("DLQSourceArn", service.arn("src"), "STRING", True),
        Property("DLQOriginMessageId", outcome.message_id, "STRING", True),
    )
    # The retention clock keeps running from the original send, not the DLQ's 600 s.
    dlq = await service.get_queue("dlq")
    env.clock.advance(sent_at + 60_000 - 1 - env.clock.now_ms())
    assert await service.counts(dlq) == QueueCounts(active=1)
    env.clock.advance(1)
    assert await service.counts(dlq) == QueueCounts()
    assert await error_code(service.peek("dlq", 1)) == "MessageNotExist"
    assert await service.expire_once() == 1


async def test_dead_letter_moves_do_not_count_against_the_receive_limit(env: Env) -> None:
    service = env.service
    await service.create_queue("dlq")
    await service.create_queue("src", {"visibility_timeout": 5}, DeadLetterPolicy("dlq", 1))
    await service.send("src", [SendRequest(body) for body in ("a", "b", "c")])
    await service.receive("src", 2, 0)  # a and b reach the maximum
    env.clock.advance(5000)
    await service.send("src", [SendRequest("d")])
    received = await service.receive("src", 2, 0)
    assert [r.message.body for r in received] == ["c", "d"]
    assert [m.body for m in await service.peek("dlq", 16)] == ["a", "b"]


async def test_change_visibility_supersedes_the_old_handle(env: Env) -> None:
    service = env.service
    await service.create_queue("q", {"visibility_timeout": 5})
    await service.send("q", [SendRequest("m")])
    (received,) = await service.receive("q", 1, 0)
    old = received.receipt_handle
    env.clock.advance(1000)
    new, visible_ms = await service.change_visibility("q", old, 10)
    assert new != old
    assert visible_ms == env.clock.now_ms() + 10_000
    assert await error_code(service.change_visibility("q", old, 10)) == "ReceiptHandleError"
    (outcome,) = await service.delete("q", [old])
    assert outcome.error is not None and outcome.error.code == "ReceiptHandleError"
    # Still invisible past the original visibility timeout, and deletable with the new one.
    env.clock.advance(5000)
    assert await service.counts(await service.get_queue("q")) == QueueCounts(inactive=1)
    assert [o.error for o in await service.delete("q", [new])] == [None]
    (again,) = await service.delete("q", [new])
    assert again.error is not None and again.error.code == "MessageNotExist"


async def test_batch_delete_naming_one_message_twice_is_handled_in_order(env: Env) -> None:
    """Regression (found by the state machine): outcomes per handle, in request order."""
    service = env.service
    await service.create_queue("q", {"visibility_timeout": 5})
    await service.send("q", [SendRequest(body) for body in ("a", "b", "c")])
    a, b, c = await service.receive("q", 3, 0)
    new_a, _ = await service.change_visibility("q", a.receipt_handle, 5)
    handles = [a.receipt_handle, b.receipt_handle, b.receipt_handle, c.receipt_handle]
    outcomes = await service.delete("q", [*handles, new_a, a.receipt_handle])
    assert [o.receipt_handle for o in outcomes] == [*handles, new_a, a.receipt_handle]
    codes = [o.error.code if o.error else None for o in outcomes]
    assert codes == ["ReceiptHandleError", None, "MessageNotExist", None, None, "MessageNotExist"]
    assert await service.counts(await service.get_queue("q")) == QueueCounts()


async def test_handle_stops_working_exactly_at_next_visible_time(env: Env) -> None:
    service = env.service
    await service.create_queue("q", {"visibility_timeout": 3})
    await service.send("q", [SendRequest("m")])
    (received,) = await service.receive("q", 1, 0)
    env.clock.advance(3000)
    (outcome,) = await service.delete("q", [received.receipt_handle])
    assert outcome.error is not None and outcome.error.code == "ReceiptHandleError"
    handle = received.receipt_handle
    assert await error_code(service.change_visibility("q", handle, 5)) == "ReceiptHandleError"
    (again,) = await service.receive("q", 1, 0)
    assert (again.message.dequeue_count, again.message.first_dequeue_ms) == (
        2,
        received.message.first_dequeue_ms,
    )


async def test_receipt_handle_of_a_deleted_message_never_addresses_another(env: Env) -> None:
    """Regression: message seqs were reusable rowids, so a stale handle hit the next message."""
    service = env.service
    await service.create_queue("q", {"visibility_timeout": 30})
    await service.send("q", [SendRequest("a")])
    (first,) = await service.receive("q", 1, 0)
    assert [o.error for o in await service.delete("q", [first.receipt_handle])] == [None]
    await service.send("q", [SendRequest("b")])
    (second,) = await service.receive("q", 1, 0)
    assert second.receipt_handle != first.receipt_handle  # spec 6.7: unique per receive
    (stale,) = await service.delete("q", [first.receipt_handle])
    assert stale.error is not None and stale.error.code == "MessageNotExist"
    assert await service.counts(await service.get_queue("q")) == QueueCounts(inactive=1)
