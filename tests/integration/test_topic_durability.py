"""Topic durability under `kill -9`: every acknowledged publish reaches every subscription.

The proof, in four steps:

1. Load. A topic has three subscriptions: two queues (one JSON, one SIMPLIFIED) and one
   HTTP endpoint (XML, a local receiver in this process that records every push and
   answers 204, a little slower than the publishers publish). Six threads, each with
   its own SDK client, publish unique bodies. A thread writes a publish into the shared
   ledger only after the SDK call returned success, that is after the server replied
   201 with a message id.
2. Crash. While the load runs the server gets SIGKILL. Every thread treats any exception
   as "not acknowledged" and stops, so each thread has at most one publish in doubt.
3. Recovery. The server restarts on the same data directory (topic, subscriptions and
   queues persist). The HTTP receiver keeps listening on the same port throughout, so
   pushes cut by the crash are retried after the restart. Both queues are drained until
   every acknowledged publish arrived and the topic holds no undelivered message.
4. Checks, per subscription:
   - every acknowledged publish arrived at least once, with the message id its publish
     returned (the JSON and XML notifications carry it; SIMPLIFIED queue messages carry
     only the body);
   - nothing arrived that was never published;
   - a publish cut by the crash arrived everywhere or nowhere (message and deliveries
     are committed together).

Duplicates (at-least-once delivery allows them, typically pushes in flight at the
crash) are counted per subscription and printed with the other figures.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from mns.account import Account
from mns.mns_common import TopicHelper
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMessage, TopicMeta

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess

pytestmark = [
    pytest.mark.slow,
    # The SDK flags the queue counters as deprecated, but they are what the drain needs.
    pytest.mark.filterwarnings("ignore:Call to deprecated function:DeprecationWarning"),
]

NAMESPACE = "{http://mns.aliyuncs.com/doc/v1/}"
REGION = "cn-hangzhou"
PUBLISHERS = 6
LOAD_SECONDS = 3.0
MIN_ACKS_BEFORE_CRASH = 200
LOAD_DEADLINE = 15.0
JOIN_TIMEOUT = 15.0
RECOVERY_DEADLINE = 25.0
BATCH = 16
SUBSCRIPTIONS = ("queue-json", "queue-simplified", "http-xml")
# The receiver takes this long per push: with the server's 16 concurrent pushes per host
# it keeps up with at most 16 / 0.04 = 400 pushes/s, below the publish rate, so a backlog
# of HTTP deliveries (some in flight, most waiting) is cut by the crash.
RECEIVER_DELAY = 0.04


@dataclass(frozen=True)
class Arrival:
    """One notification as a subscription's consumer saw it."""

    body: str
    message_id: str | None  # None for SIMPLIFIED queue messages (the body only)


@dataclass
class Ledger:
    """What the publishers know for certain and what each subscription received."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: set[str] = field(default_factory=set)
    published: dict[str, str] = field(default_factory=dict)  # body -> message id, acked
    arrivals: dict[str, list[Arrival]] = field(
        default_factory=lambda: {name: [] for name in SUBSCRIPTIONS}
    )
    stops: list[tuple[str, str, int]] = field(default_factory=list)  # thread, error, time

    def attempt(self, body: str) -> None:
        with self.lock:
            self.attempted.add(body)

    def acknowledge(self, body: str, message_id: str) -> None:
        with self.lock:
            self.published[body] = message_id

    def arrive(self, subscription: str, arrivals: list[Arrival]) -> None:
        with self.lock:
            self.arrivals[subscription].extend(arrivals)

    def stop(self, thread: str, error: BaseException) -> None:
        with self.lock:
            self.stops.append((thread, f"{type(error).__name__}: {error}", time.monotonic_ns()))

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.published)

    def missing(self, subscription: str) -> set[str]:
        """Acknowledged bodies the subscription has not received yet."""
        with self.lock:
            seen = {a.body for a in self.arrivals[subscription]}
            return set(self.published) - seen


# -- the HTTP receiver --------------------------------------------------------------------


def parse_xml_notification(body: bytes) -> Arrival:
    root = ElementTree.fromstring(body)
    assert root.tag == f"{NAMESPACE}Notification", root.tag
    return Arrival(
        root.findtext(f"{NAMESPACE}Message") or "", root.findtext(f"{NAMESPACE}MessageId")
    )


class QuietHTTPServer(ThreadingHTTPServer):
    """Connections the crash resets are expected: no traceback for them."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class Receiver:
    """Records every XML push into the ledger and answers 204; stays up across restarts."""

    def __init__(self, ledger: Ledger, subscription: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the server's pooled client

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ledger.arrive(subscription, [parse_xml_notification(body)])
                time.sleep(RECEIVER_DELAY)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


# -- SDK helpers --------------------------------------------------------------------------


def account_of(server: ServerProcess) -> Account:
    return Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def set_up(server: ServerProcess, topic_name: str, queues: dict[str, str], http_url: str) -> None:
    """The topic, its two queues and three subscriptions."""
    account = account_of(server)
    for queue_name in queues.values():
        account.get_queue(queue_name).create(QueueMeta())
    topic = account.get_topic(topic_name)
    topic.create(TopicMeta())
    formats = {"queue-json": "JSON", "queue-simplified": "SIMPLIFIED"}
    for subscription, queue_name in queues.items():
        endpoint = TopicHelper.generate_queue_endpoint(REGION, ACCOUNT_ID, queue_name)
        meta = SubscriptionMeta(endpoint, "EXPONENTIAL_DECAY_RETRY", formats[subscription])
        topic.get_subscription(subscription).subscribe(meta)
    meta = SubscriptionMeta(http_url, "EXPONENTIAL_DECAY_RETRY", "XML")
    topic.get_subscription("http-xml").subscribe(meta)


def publisher(
    server: ServerProcess, topic_name: str, name: str, ledger: Ledger, stop: threading.Event
) -> None:
    """Publish unique bodies until stopped; the first exception ends the thread."""
    try:
        topic = account_of(server).get_topic(topic_name)
        n = 0
        while not stop.is_set():
            body = f"{name}-{n}"
            ledger.attempt(body)
            ledger.acknowledge(body, topic.publish_message(TopicMessage(body)).message_id)
            n += 1
    except Exception as error:  # the crash (or anything else): not acknowledged
        ledger.stop(name, error)


def wait_for_load(ledger: Ledger) -> None:
    """Let the load run LOAD_SECONDS and until enough publishes were acknowledged."""
    started = time.monotonic()
    while True:
        time.sleep(0.05)
        acked = ledger.acknowledged()
        if acked >= MIN_ACKS_BEFORE_CRASH and time.monotonic() - started >= LOAD_SECONDS:
            return
        assert time.monotonic() - started < LOAD_DEADLINE, f"load too slow: {acked} acks"


def queue_arrival(subscription: str, body: str) -> Arrival:
    if subscription == "queue-json":
        notification = json.loads(body)
        return Arrival(notification["Message"], notification["MessageId"])
    return Arrival(body, None)


def consume_some(queue: Any, subscription: str, ledger: Ledger) -> int:
    """Receive and delete one batch (long poll of 1 s); the number of messages."""
    try:
        messages = queue.batch_receive_message(BATCH, 1)
    except MNSServerException as error:
        if error.type == "MessageNotExist":
            return 0
        raise
    ledger.arrive(subscription, [queue_arrival(subscription, m.message_body) for m in messages])
    queue.batch_delete_message([m.receipt_handle for m in messages])
    return len(messages)


def queue_is_empty(queue: Any) -> bool:
    meta = queue.get_attributes()
    return meta.active_messages + meta.inactive_messages + meta.delay_messages == 0


def recover(server: ServerProcess, topic_name: str, queues: dict[str, str], ledger: Ledger) -> None:
    """Drain both queues until every acknowledged publish arrived everywhere and nothing
    is left to deliver (topic MessageCount 0, queues empty)."""
    account = account_of(server)
    opened = {}
    for subscription, queue_name in queues.items():
        queue = account.get_queue(queue_name)
        queue.set_encoding(False)
        opened[subscription] = queue
    topic = account.get_topic(topic_name)
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while time.monotonic() < deadline:
        got = sum(consume_some(q, s, ledger) for s, q in opened.items())
        if got or any(ledger.missing(s) for s in SUBSCRIPTIONS):
            continue
        if topic.get_attributes().message_count == 0 and all(
            queue_is_empty(q) for q in opened.values()
        ):
            return
    missing = {s: len(ledger.missing(s)) for s in SUBSCRIPTIONS}
    pytest.fail(f"not recovered in {RECOVERY_DEADLINE} s; still missing: {missing}")


# -- the test -----------------------------------------------------------------------------


def test_acknowledged_publishes_reach_every_subscription_after_sigkill(
    fresh_server: ServerProcess, receiver_factory: list[Receiver]
) -> None:
    began = time.monotonic()
    ledger = Ledger()
    receiver = Receiver(ledger, "http-xml")
    receiver_factory.append(receiver)
    suffix = uuid.uuid4().hex[:10]
    topic_name = f"t-{suffix}"
    queues = {"queue-json": f"qj-{suffix}", "queue-simplified": f"qs-{suffix}"}
    fresh_server.start()
    set_up(fresh_server, topic_name, queues, f"http://127.0.0.1:{receiver.port}/notify")

    stop = threading.Event()
    threads = [
        threading.Thread(
            target=publisher,
            args=(fresh_server, topic_name, f"p{i}", ledger, stop),
            name=f"publisher-{i}",
            daemon=True,
        )
        for i in range(PUBLISHERS)
    ]
    for thread in threads:
        thread.start()
    wait_for_load(ledger)
    crash_ns = time.monotonic_ns()
    http_before_crash = len(ledger.arrivals["http-xml"])
    fresh_server.kill()
    stop.set()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} did not stop after the crash"

    fresh_server.start()
    recovered_at = time.monotonic()
    recover(fresh_server, topic_name, queues, ledger)
    elapsed = time.monotonic() - began

    published, attempted = ledger.published, ledger.attempted
    in_doubt = attempted - set(published)
    early_stops = [s for s in ledger.stops if s[2] < crash_ns]
    figures = []
    for subscription in SUBSCRIPTIONS:
        arrivals = ledger.arrivals[subscription]
        counts = Counter(a.body for a in arrivals)
        figures.append(
            f"{subscription}: {len(arrivals)} arrivals,"
            f" {sum(n > 1 for n in counts.values())} duplicated"
            f" ({sum(n - 1 for n in counts.values())} extra),"
            f" in doubt arrived {len(in_doubt & set(counts))}"
        )
    print(
        f"\ntopic durability: acknowledged publishes={len(published)}"
        f" in doubt={len(in_doubt)} | http pushes before crash={http_before_crash}"
        f" | {' | '.join(figures)}"
        f" | threads stopped before the crash={len(early_stops)} {early_stops[:1]}"
        f" | recovery {time.monotonic() - recovered_at:.1f} s, total {elapsed:.1f} s"
    )

    assert len(published) >= MIN_ACKS_BEFORE_CRASH
    assert not early_stops, f"publishers failed before the crash: {early_stops[:3]}"
    for subscription in SUBSCRIPTIONS:
        arrivals = ledger.arrivals[subscription]
        lost = ledger.missing(subscription)
        assert not lost, (
            f"{subscription}: {len(lost)} acknowledged publishes lost: {sorted(lost)[:5]}"
        )
        unknown = sorted({a.body for a in arrivals} - attempted)
        assert not unknown, f"{subscription}: arrivals never published: {unknown[:5]}"
        wrong_ids = sorted(
            (a.body, a.message_id)
            for a in arrivals
            if a.message_id is not None
            and a.body in published
            and published[a.body] != a.message_id
        )
        assert not wrong_ids, f"{subscription}: arrived under another message id: {wrong_ids[:5]}"
    arrived_in_doubt = [{a.body for a in ledger.arrivals[s]} & in_doubt for s in SUBSCRIPTIONS]
    assert all(s == arrived_in_doubt[0] for s in arrived_in_doubt), (
        f"a publish cut by the crash reached only some subscriptions: {arrived_in_doubt}"
    )
