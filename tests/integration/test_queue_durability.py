"""Durability under `kill -9`: nothing the server acknowledged is lost or undone.

The proof, in four steps:

1. Load. Eight threads, each with its own SDK client, drive one queue: four send unique
   bodies (two one at a time, two in batches of 16) and four receive and delete (two one
   at a time, two in batches). A thread writes a send or a delete into the shared ledger
   only after the SDK call returned success, that is after the server replied 2xx. Every
   received body is recorded too, stamped with the time its receive call started.
2. Crash. While the load runs the server gets SIGKILL: no shutdown hook, no flush. Every
   thread treats any exception as "not acknowledged" and stops, so each thread has at
   most one call in doubt (the one cut by the crash).
3. Recovery. The server restarts on the same data directory and the queue is drained
   completely. Its VisibilityTimeout is 2 s, so messages received but not deleted before
   the crash become visible again; the drain long-polls until the queue's counters say
   no message is active, inactive or delayed.
4. Checks:
   - every acknowledged send comes back, with the message id its send returned, unless
     its message was deleted before the crash (deletion acknowledged, or in doubt);
   - no acknowledged delete is undone: such a message is never received again, neither
     after the restart nor by a receive started after the delete was acknowledged;
   - nothing comes back that was never sent, and the drain delivers each message once.

Sends or deletes cut by the crash may or may not have happened: both outcomes are
allowed, and their counts are printed with the other figures. A message received more
than once overall is a duplicate, which at-least-once delivery permits (typically it was
received but not yet deleted when the server died).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

pytestmark = [
    pytest.mark.slow,
    # The SDK flags the queue counters as deprecated, but they are what the drain needs.
    pytest.mark.filterwarnings("ignore:Call to deprecated function:DeprecationWarning"),
]

VISIBILITY_TIMEOUT = 2
BATCH = 16
PRESEND_BATCHES = 20
LOAD_SECONDS = 1.5
MIN_ACKS_BEFORE_CRASH = 50
LOAD_DEADLINE = 10.0
JOIN_TIMEOUT = 15.0
DRAIN_DEADLINE = 25.0
RECEIVE_WAIT = 1


@dataclass(frozen=True)
class Receipt:
    """One delivery of a message: what came back and when the receive call started."""

    message_id: str
    body: str
    started_ns: int


@dataclass
class Ledger:
    """What the clients know for certain, shared by every load thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: set[str] = field(default_factory=set)
    sent: dict[str, str] = field(default_factory=dict)  # body -> message id, acknowledged
    receipts: list[Receipt] = field(default_factory=list)
    delete_attempted: set[str] = field(default_factory=set)  # message ids
    deleted: dict[str, int] = field(default_factory=dict)  # message id -> ack time (ns)
    stops: list[tuple[str, str, int]] = field(default_factory=list)  # thread, error, time

    def attempt_send(self, bodies: list[str]) -> None:
        with self.lock:
            self.attempted.update(bodies)

    def acknowledge_send(self, bodies: list[str], message_ids: list[str]) -> None:
        assert len(bodies) == len(message_ids)
        with self.lock:
            self.sent.update(zip(bodies, message_ids, strict=True))

    def receive(self, messages: list[Any], started_ns: int) -> None:
        with self.lock:
            self.receipts.extend(
                Receipt(m.message_id, m.message_body, started_ns) for m in messages
            )

    def attempt_delete(self, message_ids: list[str]) -> None:
        with self.lock:
            self.delete_attempted.update(message_ids)

    def acknowledge_delete(self, message_ids: list[str]) -> None:
        now = time.monotonic_ns()
        with self.lock:
            for message_id in message_ids:
                self.deleted[message_id] = now

    def stop(self, thread: str, error: BaseException) -> None:
        with self.lock:
            self.stops.append((thread, f"{type(error).__name__}: {error}", time.monotonic_ns()))

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.sent), len(self.deleted)


# -- SDK helpers ------------------------------------------------------------------------


def open_queue(server: ServerProcess, name: str) -> Any:
    """A fresh SDK queue object (the SDK client is not thread-safe: one per thread)."""
    queue = Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).get_queue(name)
    queue.set_encoding(False)
    return queue


def is_empty(error: BaseException) -> bool:
    """Whether a receive failed only because no message was available."""
    return isinstance(error, MNSServerException) and error.type == "MessageNotExist"


def send_bodies(queue: Any, bodies: list[str], ledger: Ledger) -> None:
    """Send `bodies` (one call, batched when more than one); ledger them on success."""
    ledger.attempt_send(bodies)
    if len(bodies) == 1:
        ids = [queue.send_message(Message(bodies[0])).message_id]
    else:
        ids = [m.message_id for m in queue.batch_send_message([Message(b) for b in bodies])]
    ledger.acknowledge_send(bodies, ids)


def receive_some(queue: Any, batch: int, ledger: Ledger) -> list[Any]:
    """Receive up to `batch` messages with a short long poll; [] when there are none."""
    started = time.monotonic_ns()
    try:
        if batch == 1:
            messages = [queue.receive_message(RECEIVE_WAIT)]
        else:
            messages = queue.batch_receive_message(batch, RECEIVE_WAIT)
    except MNSServerException as error:
        if is_empty(error):
            return []
        raise
    ledger.receive(messages, started)
    return list(messages)


def delete_received(queue: Any, messages: list[Any], ledger: Ledger) -> None:
    """Delete received messages (one call); ledger them as deleted on success."""
    ids = [m.message_id for m in messages]
    ledger.attempt_delete(ids)
    if len(messages) == 1:
        queue.delete_message(messages[0].receipt_handle)
    else:
        queue.batch_delete_message([m.receipt_handle for m in messages])
    ledger.acknowledge_delete(ids)


# -- load threads -----------------------------------------------------------------------

# A load thread's body: (its own SDK queue, its name, the shared ledger, the stop event).
LoadLoop = Callable[[Any, str, Ledger, threading.Event], None]


def sender(batch: int) -> LoadLoop:
    """A load loop sending `batch` unique bodies per call until stopped or failing."""

    def run(queue: Any, name: str, ledger: Ledger, stop: threading.Event) -> None:
        n = 0
        while not stop.is_set():
            send_bodies(queue, [f"{name}-{n + i}" for i in range(batch)], ledger)
            n += batch

    return run


def consumer(batch: int) -> LoadLoop:
    """A load loop receiving up to `batch` messages and deleting them."""

    def run(queue: Any, name: str, ledger: Ledger, stop: threading.Event) -> None:
        while not stop.is_set():
            messages = receive_some(queue, batch, ledger)
            if messages:
                delete_received(queue, messages, ledger)

    return run


WORKERS: dict[str, LoadLoop] = {
    "t0": sender(1),
    "t1": sender(1),
    "t2": sender(BATCH),
    "t3": sender(BATCH),
    "t4": consumer(1),
    "t5": consumer(1),
    "t6": consumer(BATCH),
    "t7": consumer(BATCH),
}


def start_load(
    server: ServerProcess, queue_name: str, ledger: Ledger, stop: threading.Event
) -> list[threading.Thread]:
    """Start every load thread; each stops at its first exception (not acknowledged)."""

    def guarded(name: str, loop: LoadLoop) -> None:
        try:
            loop(open_queue(server, queue_name), name, ledger, stop)
        except Exception as error:  # the crash (or anything else): not acknowledged
            ledger.stop(name, error)

    threads = [
        threading.Thread(target=guarded, args=(name, loop), name=f"load-{name}", daemon=True)
        for name, loop in WORKERS.items()
    ]
    for thread in threads:
        thread.start()
    return threads


def wait_for_load(ledger: Ledger) -> None:
    """Let the load run LOAD_SECONDS, and until both sends and deletes were acknowledged."""
    started = time.monotonic()
    while True:
        time.sleep(0.05)
        sent, deleted = ledger.counts()
        busy = sent >= MIN_ACKS_BEFORE_CRASH and deleted >= MIN_ACKS_BEFORE_CRASH
        if busy and time.monotonic() - started >= LOAD_SECONDS:
            return
        assert time.monotonic() - started < LOAD_DEADLINE, f"load too slow: {ledger.counts()}"


# -- recovery ---------------------------------------------------------------------------


def queue_is_empty(queue: Any) -> bool:
    """Whether the queue's counters say it holds no message in any state."""
    meta = queue.get_attributes()
    return meta.active_messages + meta.inactive_messages + meta.delay_messages == 0


def drain(queue: Any) -> list[Receipt]:
    """Receive and delete until the queue is empty; every delete must succeed."""
    deadline = time.monotonic() + DRAIN_DEADLINE
    scratch = Ledger()
    while time.monotonic() < deadline:
        messages = receive_some(queue, BATCH, scratch)
        if messages:
            queue.batch_delete_message([m.receipt_handle for m in messages])
        elif queue_is_empty(queue):
            return scratch.receipts
    pytest.fail(f"queue not drained in {DRAIN_DEADLINE} s ({len(scratch.receipts)} so far)")


def ids_received_after_delete(ledger: Ledger) -> list[str]:
    """Messages received by a call that started after their delete was acknowledged."""
    return sorted(
        {
            r.message_id
            for r in ledger.receipts
            if r.message_id in ledger.deleted and r.started_ns > ledger.deleted[r.message_id]
        }
    )


def test_acknowledged_writes_survive_sigkill(fresh_server: ServerProcess, queue_name: str) -> None:
    began = time.monotonic()
    fresh_server.start()
    setup = open_queue(fresh_server, queue_name)
    setup.create(QueueMeta(vis_timeout=VISIBILITY_TIMEOUT))
    ledger = Ledger()
    for b in range(PRESEND_BATCHES):
        send_bodies(setup, [f"pre-{b * BATCH + i}" for i in range(BATCH)], ledger)

    stop = threading.Event()
    threads = start_load(fresh_server, queue_name, ledger, stop)
    wait_for_load(ledger)
    crash_ns = time.monotonic_ns()
    fresh_server.kill()
    stop.set()  # a thread between two calls need not find out the hard way
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} did not stop after the crash"

    fresh_server.start()
    recovered = drain(open_queue(fresh_server, queue_name))
    elapsed = time.monotonic() - began

    sent, deleted = ledger.sent, set(ledger.deleted)
    in_doubt_deletes = ledger.delete_attempted - deleted
    recovered_ids = {r.message_id for r in recovered}
    recovered_bodies = {r.message_id: r.body for r in recovered}
    deliveries = Counter(r.message_id for r in [*ledger.receipts, *recovered])
    early_stops = [s for s in ledger.stops if s[2] < crash_ns]
    lost = {
        body: message_id
        for body, message_id in sent.items()
        if message_id not in recovered_ids
        and message_id not in deleted
        and message_id not in in_doubt_deletes
    }
    unacked_sends = ledger.attempted - set(sent)
    print(
        f"\ndurability: acknowledged sends={len(sent)} acknowledged deletes={len(deleted)}"
        f" recovered={len(recovered)} duplicates={sum(n > 1 for n in deliveries.values())}"
        f" | in doubt: sends={len(unacked_sends)}"
        f" (committed {len(unacked_sends & set(recovered_bodies.values()))}),"
        f" deletes={len(in_doubt_deletes)}"
        f" (redelivered {len(in_doubt_deletes & recovered_ids)})"
        f" | receipts before crash={len(ledger.receipts)}"
        f" | threads stopped before the crash={len(early_stops)} {early_stops[:1]}"
        f" | {elapsed:.1f} s"
    )

    assert len(deleted) >= MIN_ACKS_BEFORE_CRASH
    assert not lost, f"{len(lost)} acknowledged sends lost, e.g. {sorted(lost.items())[:5]}"
    reappeared = sorted(deleted & recovered_ids)
    assert not reappeared, f"acknowledged deletes came back after restart: {reappeared[:5]}"
    resurrected = ids_received_after_delete(ledger)
    assert not resurrected, f"received after their delete was acknowledged: {resurrected[:5]}"
    assert len(recovered_ids) == len(recovered), "the drain delivered a message twice"
    unknown = sorted(set(recovered_bodies.values()) - ledger.attempted)
    assert not unknown, f"recovered bodies that were never sent: {unknown[:5]}"
    wrong_ids = sorted(
        (body, message_id)
        for message_id, body in recovered_bodies.items()
        if body in sent and sent[body] != message_id
    )
    assert not wrong_ids, f"recovered under another message id: {wrong_ids[:5]}"
