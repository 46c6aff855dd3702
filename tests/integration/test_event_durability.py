"""The transactional outbox under `kill -9`: an event exists iff its object change committed.

The proof, in four steps:

1. Load. A rule sends every PutObject of one bucket to a queue. Four `oss2` threads,
   each with its own session, overwrite keys of their own (`t<i>/<n % 4>`) with bodies
   unique across the run (`t<i>-<n>`), so an event identifies its PUT by its eTag (the
   body's MD5) even when the PUT never answered. A thread ledgers a PUT as attempted
   before the call and as acknowledged (with its `x-oss-request-id`) after a 2xx.
2. Crash. While the load runs the server gets SIGKILL. Every thread stops at its first
   exception, so each has at most one PUT in doubt: its last, cut by the crash.
3. Recovery. The server restarts on the same data directory; the final content of every
   key is read back, and the queue is drained until its counters say it is empty.
4. Checks:
   - every acknowledged PUT committed and has at least one event, carrying its requestId,
     key and size;
   - a PUT in doubt committed iff its key now holds its body (it was its thread's last
     write of that key), and it has an event iff it committed;
   - no event names a body that was never PUT (nothing invented), and the events of one
     key arrive in the order the PUTs committed.

Duplicates (a PUT with more than one event) are allowed by at-least-once delivery; the
figures, duplicates included, are printed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import oss2
import pytest
from alibabacloud_mns_open20220119 import models as m
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta

from tests.integration.control_plane_support import client_for
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

pytestmark = [
    pytest.mark.slow,
    # The SDK flags the queue counters as deprecated, but they are what the drain needs.
    pytest.mark.filterwarnings("ignore:Call to deprecated function:DeprecationWarning"),
]

THREADS = 4
KEYS_PER_THREAD = 4
LOAD_SECONDS = 1.5
MIN_ACKS_BEFORE_CRASH = 100
LOAD_DEADLINE = 15.0
JOIN_TIMEOUT = 15.0
DRAIN_DEADLINE = 15.0
BATCH = 16
BUCKET = "durable-events"
QUEUE = "durable-events"
RULE = "durable-puts"


def etag_of(body: bytes) -> str:
    return hashlib.md5(body).hexdigest().upper()


@dataclass
class Ledger:
    """What the writers know for certain, shared by every load thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: dict[str, tuple[str, int]] = field(default_factory=dict)  # etag -> (key, n)
    acked: dict[str, str] = field(default_factory=dict)  # etag -> request id
    last: dict[str, str] = field(default_factory=dict)  # thread -> etag of its last attempt
    stops: list[tuple[str, str, int]] = field(default_factory=list)  # thread, error, time

    def attempt(self, thread: str, etag: str, key: str, n: int) -> None:
        with self.lock:
            self.attempted[etag] = (key, n)
            self.last[thread] = etag

    def acknowledge(self, etag: str, request_id: str) -> None:
        with self.lock:
            self.acked[etag] = request_id

    def stop(self, thread: str, error: BaseException) -> None:
        with self.lock:
            self.stops.append((thread, f"{type(error).__name__}: {error}", time.monotonic_ns()))

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def handle(server: ServerProcess) -> oss2.Bucket:
    """An oss2 bucket handle with a session of its own (one per thread)."""
    auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    return oss2.Bucket(auth, server.oss_url, BUCKET, session=oss2.Session())


def writer(server: ServerProcess, thread: str, ledger: Ledger, stop: threading.Event) -> None:
    """Overwrite this thread's keys with unique bodies until stopped or failing."""
    bucket = handle(server)
    n = 0
    try:
        while not stop.is_set():
            key, body = f"{thread}/{n % KEYS_PER_THREAD}", f"{thread}-{n}".encode()
            etag = etag_of(body)
            ledger.attempt(thread, etag, key, n)
            result = bucket.put_object(key, body)
            assert result.etag == etag
            ledger.acknowledge(etag, result.request_id)
            n += 1
    except Exception as error:  # the crash (or anything else): not acknowledged
        ledger.stop(thread, error)


def drain(account: Account) -> list[dict[str, Any]]:
    """Receive and delete every event until the queue's counters say it is empty."""
    queue = account.get_queue(QUEUE)
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + DRAIN_DEADLINE
    while time.monotonic() < deadline:
        try:
            messages = queue.batch_receive_message(BATCH, 1)
        except MNSServerException as error:
            if error.type != "MessageNotExist":
                raise
            meta = queue.get_attributes()
            if meta.active_messages + meta.inactive_messages + meta.delay_messages == 0:
                return records
            continue
        for message in messages:
            (record,) = json.loads(message.message_body)["events"]
            records.append(record)
        queue.batch_delete_message([message.receipt_handle for message in messages])
    pytest.fail(f"queue not drained in {DRAIN_DEADLINE} s ({len(records)} events so far)")


def final_contents(server: ServerProcess, keys: set[str]) -> dict[str, str]:
    """The ETag every key holds after the restart, by key (listed, and the keys of the
    PUTs in doubt confirmed with HEAD)."""
    bucket = handle(server)
    listed = {obj.key: obj.etag for obj in oss2.ObjectIterator(bucket)}
    for key in keys:
        if bucket.object_exists(key):
            assert bucket.head_object(key).etag == listed[key]
        else:
            assert key not in listed
    return listed


def test_an_event_exists_iff_its_put_committed_across_sigkill(fresh_server: ServerProcess) -> None:
    """Acknowledged PUTs all have their event after `kill -9` and a restart; a PUT cut by
    the crash has one exactly when it committed; nothing is invented or reordered."""
    began = time.monotonic()
    fresh_server.start()
    Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).get_queue(QUEUE).create(
        QueueMeta()
    )
    handle(fresh_server).create_bucket()
    client_for(fresh_server).create_event_rule(
        m.CreateEventRuleRequest(
            product_name="oss",
            rule_name=RULE,
            event_types=["PutObject"],
            match_rules=[[m.EventMatchRule(prefix=f"{BUCKET}/")]],
            endpoint=m.CreateEventRuleRequestEndpoint(endpoint_type="queue", endpoint_value=QUEUE),
        )
    )

    ledger, stop = Ledger(), threading.Event()
    threads = [
        threading.Thread(target=writer, args=(fresh_server, f"t{i}", ledger, stop), daemon=True)
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while time.monotonic() - started < LOAD_SECONDS or ledger.count() < MIN_ACKS_BEFORE_CRASH:
        assert time.monotonic() - started < LOAD_DEADLINE, f"load too slow: {ledger.count()}"
        time.sleep(0.05)
    crash_ns = time.monotonic_ns()
    fresh_server.kill()
    stop.set()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} did not stop after the crash"

    fresh_server.start()  # on new ports: every client below is made afresh
    in_doubt = {etag for etag in ledger.last.values() if etag not in ledger.acked}
    in_doubt_keys = {ledger.attempted[etag][0] for etag in in_doubt}
    final = final_contents(fresh_server, in_doubt_keys)
    records = drain(Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET))
    elapsed = time.monotonic() - began

    by_etag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_etag[record["oss"]["object"]["eTag"]].append(record)
    committed_in_doubt = {etag for etag in in_doubt if final.get(ledger.attempted[etag][0]) == etag}
    duplicates = {etag: len(found) for etag, found in by_etag.items() if len(found) > 1}
    early_stops = [s for s in ledger.stops if s[2] < crash_ns]
    print(
        f"\nevent durability: acknowledged PUTs={len(ledger.acked)} events={len(records)}"
        f" distinct={len(by_etag)} duplicates={len(duplicates)}"
        f" | in doubt={len(in_doubt)} (committed {len(committed_in_doubt)},"
        f" with event {len(in_doubt & set(by_etag))})"
        f" | threads stopped before the crash={len(early_stops)} {early_stops[:1]}"
        f" | {elapsed:.1f} s"
    )

    assert len(ledger.acked) >= MIN_ACKS_BEFORE_CRASH
    assert not early_stops, f"a writer failed before the crash: {early_stops[:1]}"
    lost = sorted(etag for etag in ledger.acked if etag not in by_etag)
    assert not lost, f"{len(lost)} acknowledged PUTs have no event, e.g. {lost[:3]}"
    for etag, request_id in ledger.acked.items():
        key, n = ledger.attempted[etag]
        record = by_etag[etag][0]
        assert record["eventName"] == "ObjectCreated:PutObject"
        assert record["oss"]["object"]["key"] == key
        assert record["oss"]["object"]["size"] == len(f"{key.split('/')[0]}-{n}")
        assert record["responseElements"]["requestId"] == request_id
    for etag in in_doubt:
        assert (etag in by_etag) == (etag in committed_in_doubt), (
            f"PUT in doubt {ledger.attempted[etag]}: committed={etag in committed_in_doubt},"
            f" event={etag in by_etag}"
        )
    invented = sorted(set(by_etag) - set(ledger.attempted))
    assert not invented, f"events for PUTs never made: {invented[:3]}"
    orphans = sorted(set(by_etag) - set(ledger.acked) - committed_in_doubt)
    assert not orphans, f"events for PUTs that did not commit: {orphans[:3]}"
    order: dict[str, list[int]] = defaultdict(list)
    seen: Counter[str] = Counter()
    for record in records:
        etag = record["oss"]["object"]["eTag"]
        seen[etag] += 1
        if seen[etag] == 1:
            key, n = ledger.attempted[etag]
            order[key].append(n)
    unordered = {key: ns for key, ns in order.items() if ns != sorted(ns)}
    assert not unordered, f"events of a key out of commit order: {list(unordered.items())[:1]}"
