#!/usr/bin/env python3
"""Event notification benchmark: Tidings (OSS PUT → event rule → MNS queue) against moto
(S3 PUT → bucket notification → SQS queue).

For 1 and 8 producers (lean aiohttp clients, one keep-alive connection each, PUTting new
1 KiB objects as fast as the server answers, 5 s per run) it measures, per backend, four
runs in this order, so that the runs with a rule sit between two baselines:

1. ``no rule (before)``: plain PUTs, no rule anywhere;
2. ``rule + consumer``: the same PUTs with a rule (Tidings: CreateEventRule through the
   control plane, product ``oss``, type ``PutObject``, resource
   ``acs:oss:<region>:<uid>:<bucket>/``, endpoint a queue; moto:
   PutBucketNotificationConfiguration with a QueueConfiguration for ``s3:ObjectCreated:Put``)
   while one consumer long-polls the queue (batch receive with a 1 s wait, batch deletes
   in the background): the PUT rate, the objects consumed per second end to end (first
   PUT sent to last event consumed), and the PUT-to-consume latency;
3. ``rule, no consumer``: the rule alone, the queue drained afterwards: the notification's
   own cost, without the consumer's requests competing for the server;
4. ``no rule (after)``: the rule deleted (moto: an empty notification configuration).

Ratios are against the mean PUT rate of runs 1 and 4 (a minute apart at most); an untimed
warm-up of PUTs precedes the first run. Latency = from just before the PUT request is sent
(``time.monotonic_ns()`` in the producer process) to the moment the consumer process has
read the receive response carrying the event (``time.monotonic_ns()`` there: one
system-wide clock). Each event body is decoded (Tidings: Base64 JSON,
``events[0].oss.object.key``; moto: JSON, ``Records[0].s3.object.key``, URL-decoded) and
matched to its PUT. After each run with a rule the queue is drained (until nothing arrives
for longer than a long poll waits) and every acknowledged PUT is checked for exactly one
event: missing events, duplicates, events of unacknowledged PUTs and events with a wrong
name, bucket or size are counted and printed.

Producers run in this process; the consumer in a separate one (``topics.py``'s queue
consumer, in a process of its own) so that neither waits for the other's event loop. The
two together use about a third of a core (their CPU is reported), leaving the server the
rest of the two.

Each backend starts with an end-to-end check (one PUT → exactly its event consumed, name,
bucket, key and size checked): a broken Tidings pipeline aborts the run instead of
producing figures; if moto's server mode did not deliver, only its plain PUTs would be
measured and the report would say so (moto 5.2 does deliver). The servers run as
subprocesses one after the other: first ``tidings serve`` with its defaults (every write
fsynced), then moto. The report names the code the server ran (commit, uncommitted files).

Usage::

    python bench/events.py [--quick] [--backend both|tidings|moto] [--duration S]
                           [--dir DIR] [--output results.json]

A full run takes about 2 minutes, ``--quick`` (1.5 s runs) about 1. The rule is created
with the official ``alibabacloud-mns-open20220119`` SDK (``pip install -e '.[bench]'``);
without it, with ``tidings rule create`` on the server's data directory.
``TIDINGS_BENCH_SERVE_ARGS`` adds flags to ``tidings serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import html
import importlib.util
import itertools
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote_plus, urlsplit

import aiohttp
from objects import (
    OCTET_STREAM,
    Boto3Client,
    CpuMeter,
    LeanClient,
    LeanOss,
    LeanS3,
    RunStats,
    Target,
    TargetCheck,
    latency_summary,
    moto_server,
    run_in_root,
    sdk_client,
    tidings_server,
)
from objects import UnexpectedResponseError as ObjectResponseError
from queues import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    SQS_ACCOUNT,
    MnsClient,
    MnsSigner,
    Section,
    SqsClient,
    event_loop_factory,
    print_report,
    progress,
    sessions,
)
from queues import UnexpectedResponseError as QueueResponseError
from topics import MNS_ACCOUNT, MNS_REGION, Arrivals, QueueConsumers, Sink

BUCKET = "bench-events"
QUEUE = "bench-events"
RULE = "bench-put"
BODY_SIZE = 1024
PRODUCER_COUNTS = (1, 8)
SQS_REGION = "us-east-1"
CHECK_TIMEOUT = 10.0  # seconds the end-to-end check waits for its event
PROBE_TIMEOUT = 5.0  # seconds a rule change may take to show on PUT responses
MAX_CONSECUTIVE_ERRORS = 50
# A drain is complete when nothing arrived for longer than one long poll (1 s) takes.
QUIET = 1.5
WARM_UP = 2.0  # seconds of untimed PUTs before a backend's first run
EVENT_STATUS_HEADER = "x-oss-event-status"
EVENT_NAMES = {"tidings": "ObjectCreated:PutObject", "moto": "ObjectCreated:Put"}
MESSAGE_BODY_RE = re.compile(rb"<MessageBody>([^<]*)</MessageBody>")
SQS_BODY_RE = re.compile(rb"<Body>(.*?)</Body>", re.DOTALL)
REQUEST_ERRORS = (ObjectResponseError, QueueResponseError, aiohttp.ClientError, TimeoutError)

# Targets for Tidings (issue 5).
RATIO_TARGET = 0.90  # PUT rate with a rule / without one
P99_TARGET_MS = 20.0  # PUT-to-consume p99 with 8 producers

LOAD_AT_START = os.getloadavg()[0]
REPORT_WIDTH = 150


@dataclasses.dataclass(frozen=True)
class Settings:
    """Knobs that differ between the full and the quick run."""

    duration: float  # seconds of PUTs per run
    drain_limit: float  # seconds a run may wait for its events after the PUTs stop
    stall: float  # ... or stop waiting when nothing arrived for this long


FULL = Settings(duration=5.0, drain_limit=30.0, stall=4.0)
QUICK = Settings(duration=1.5, drain_limit=10.0, stall=3.0)

# Run kinds, in the order they are measured for each producer count.
NO_RULE_BEFORE = "no-rule-before"
RULE = "rule"
RULE_NO_CONSUMER = "rule-no-consumer"
NO_RULE_AFTER = "no-rule-after"
KIND_LABELS = {
    NO_RULE_BEFORE: "no rule (before)",
    RULE: "rule + consumer",
    RULE_NO_CONSUMER: "rule, no consumer",
    NO_RULE_AFTER: "no rule (after)",
}


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class Run:
    """One measured run of one backend."""

    backend: str
    kind: str  # a KIND_LABELS key
    producers: int
    puts: int = 0  # acknowledged PUTs
    seconds: float = 0.0
    put_p50_ms: float | None = None
    put_p99_ms: float | None = None
    errors: int = 0
    first_error: str = ""
    events: int = 0  # distinct acknowledged PUTs whose event was consumed
    delivery_seconds: float = 0.0  # first PUT sent → last event consumed
    e2e_p50_ms: float | None = None
    e2e_p99_ms: float | None = None
    e2e_max_ms: float | None = None
    missing: int = 0
    duplicates: int = 0
    unknown: int = 0  # events of this run's keys whose PUT was not acknowledged
    malformed: int = 0  # events whose name, bucket or size is wrong
    consumer_errors: int = 0
    consumer_error: str = ""
    server_cpu: float | None = None  # cores, during the PUTs
    producer_cpu: float | None = None
    consumer_cpu: float | None = None

    @property
    def put_rate(self) -> float:
        """Acknowledged PUTs per second."""
        return self.puts / self.seconds if self.seconds > 0 else 0.0

    @property
    def event_rate(self) -> float:
        """Events consumed per second, from the first PUT to the last event."""
        return self.events / self.delivery_seconds if self.delivery_seconds > 0 else 0.0

    @property
    def has_events(self) -> bool:
        """Whether the run had a rule, so events were expected."""
        return self.kind in (RULE, RULE_NO_CONSUMER)


@dataclasses.dataclass
class Report:
    """Everything the output needs."""

    settings: Settings
    backends: Sequence[str]
    runs: list[Run] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    delivers: dict[str, bool] = dataclasses.field(default_factory=dict)  # check passed
    code: str = ""  # see server_code()
    load_after: float = 0.0


@dataclasses.dataclass
class PutStats(RunStats):
    """What the producers of one run count, with each key's send time."""

    sent_ns: dict[str, int] = dataclasses.field(default_factory=dict)
    acked: set[str] = dataclasses.field(default_factory=set)


# --------------------------------------------------------------------------- the consumer
#
# A separate process running topics.py's QueueConsumers (one long-polling consumer, batch
# deletes in the background). The payloads are kept raw while consuming and decoded when
# the parent collects them, so decoding never delays the next receive.

# (object key or None for a test event, event name, bucket, size, consumed at ns)
EventRecord = tuple[str | None, str, str, int, int]


@dataclasses.dataclass
class RawArrivals(Arrivals):
    """Every receive response that carried messages, with when it was read."""

    payloads: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)
    messages: int = 0

    def add(self, channel: int, payload: bytes, at_ns: int) -> int:
        """Keep the payload; return how many messages it holds (0: nothing to delete)."""
        del channel  # one queue
        count = payload.count(b"<ReceiptHandle>")
        if count:
            self.payloads.append((at_ns, payload))
            self.messages += count
        return count

    def __len__(self) -> int:
        return self.messages


def decode_tidings(payload: bytes, at_ns: int) -> list[EventRecord]:
    """The OSS events of an MNS batch receive: each MessageBody is Base64 JSON."""
    records: list[EventRecord] = []
    for body in MESSAGE_BODY_RE.findall(payload):
        try:
            event = json.loads(base64.b64decode(body))["events"][0]
            oss = event["oss"]
            records.append(
                (
                    oss["object"]["key"],
                    event["eventName"],
                    oss["bucket"]["name"],
                    oss["object"]["size"],
                    at_ns,
                )
            )
        except (ValueError, KeyError, IndexError, TypeError):
            records.append((None, "undecodable", "", 0, at_ns))
    return records


def decode_moto(payload: bytes, at_ns: int) -> list[EventRecord]:
    """The S3 events of an SQS receive: XML-escaped JSON, the key URL-encoded (`+`)."""
    records: list[EventRecord] = []
    for body in SQS_BODY_RE.findall(payload):
        try:
            document = json.loads(html.unescape(body.decode()))
            if "Records" not in document:  # s3:TestEvent, sent when notifications are set
                records.append((None, str(document.get("Event")), "", 0, at_ns))
                continue
            record = document["Records"][0]
            s3 = record["s3"]
            key = unquote_plus(s3["object"]["key"])
            records.append(
                (key, record["eventName"], s3["bucket"]["name"], s3["object"]["size"], at_ns)
            )
        except (ValueError, KeyError, IndexError, TypeError):
            records.append((None, "undecodable", "", 0, at_ns))
    return records


async def consumer_main_async(conn: multiprocessing.connection.Connection) -> None:
    """Obey the parent's commands: consume, count, cpu, halt (→ decoded events), stop."""
    conn.send(("ready", 0))  # what Sink.start expects (it has no HTTP port here)
    arrivals = RawArrivals()
    consumers: QueueConsumers | None = None
    kind = "tidings"
    while True:
        # A thread waits for the next command: the pipe must stay blocking (see topics.py).
        command, args = await asyncio.to_thread(conn.recv)
        if command == "consume":
            kind = args[0]
            arrivals = RawArrivals()
            consumers = QueueConsumers(arrivals, *args)
            consumers.start()
            conn.send(None)
        elif command == "count":
            conn.send(len(arrivals))
        elif command == "cpu":
            conn.send(time.process_time())
        elif command == "halt":
            errors = (0, "")
            if consumers is not None:
                await consumers.stop()
                errors = (consumers.errors, consumers.first_error)
                consumers = None
            decode = decode_tidings if kind == "tidings" else decode_moto
            records = [r for at_ns, p in arrivals.payloads for r in decode(p, at_ns)]
            arrivals = RawArrivals()
            conn.send((records, *errors))
        elif command == "stop":
            break
    conn.send(None)


def consumer_main(conn: multiprocessing.connection.Connection) -> None:
    """Entry point of the consumer process."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(consumer_main_async(conn))


class ConsumerProcess(Sink):
    """topics.py's handle on a helper process, running the event consumer instead of its
    sink (Sink hard-wires its target, so this sets the same fields for another one)."""

    def __init__(self) -> None:  # deliberately not Sink.__init__: it would spawn the sink
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=consumer_main, args=(child,), daemon=True)
        self.port = 0
        self.cpu_seconds = 0.0

    async def halt(self) -> tuple[list[EventRecord], int, str]:
        """Stop consuming; return the decoded events and the consumer's errors."""
        records, errors, first_error = await self.call("halt")
        return records, errors, first_error

    async def settle(self, expected: int, settings: Settings) -> None:
        """Wait until `expected` messages arrived and then nothing for QUIET seconds (the
        queue is drained), or nothing arrived for `stall` seconds, or the limit passed."""
        limit = time.perf_counter() + settings.drain_limit
        last_count, last_change = -1, time.perf_counter()
        while time.perf_counter() < limit:
            count = await self.call("count")
            now = time.perf_counter()
            if count != last_count:
                last_count, last_change = count, now
            quiet = now - last_change
            if (count >= expected and quiet >= QUIET) or quiet >= settings.stall:
                return
            await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- pipelines


class Pipeline(Protocol):
    """One backend's object store, queue and the switch between them."""

    backend: str
    pid: int
    lean: LeanClient
    consumer_args: tuple[str, str, list[str], int]  # QueueConsumers' arguments

    async def setup(self) -> None: ...
    async def enable(self) -> list[str]: ...  # → keys PUT meanwhile whose events are queued
    async def disable(self) -> None: ...


async def put_with_status(lean: LeanOss, session: aiohttp.ClientSession, key: str) -> bool:
    """PUT 1 KiB with the lean OSS client; whether the response says an event was stored."""
    headers = lean._headers("PUT", key, OCTET_STREAM)
    async with session.put(lean._url(key), data=bytes(BODY_SIZE), headers=headers) as response:
        body = await response.read()
        if response.status != 200:
            raise ObjectResponseError(f"PUT {key} -> HTTP {response.status}: {body[:200]!r}")
        return EVENT_STATUS_HEADER in response.headers


class RuleControl(Protocol):
    """Creates and deletes the benchmark's event rule."""

    how: str

    def create(self) -> None: ...
    def delete(self) -> None: ...


class SdkRules:
    """The rule through the mns-open control plane, with the official SDK."""

    how = "CreateEventRule (alibabacloud-mns-open20220119 SDK)"

    def __init__(self, mns_url: str) -> None:
        from alibabacloud_mns_open20220119 import models
        from alibabacloud_mns_open20220119.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        self._models = models
        # The SDK copies the endpoint into the Host header: host:port, scheme apart.
        config = Config(
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            endpoint=urlsplit(mns_url).netloc,
            protocol="http",
            region_id=MNS_REGION,
        )
        self._client = Client(config)

    def create(self) -> None:
        """CreateEventRule: PutObject on every object of the bucket → the queue."""
        models = self._models
        self._client.create_event_rule(
            models.CreateEventRuleRequest(
                product_name="oss",
                rule_name=RULE,
                event_types=["PutObject"],
                match_rules=[[models.EventMatchRule(prefix=resource_prefix())]],
                endpoint=models.CreateEventRuleRequestEndpoint(
                    endpoint_type="queue", endpoint_value=QUEUE
                ),
            )
        )

    def delete(self) -> None:
        """DeleteEventRule (its topic and subscription go with it)."""
        self._client.delete_event_rule(
            self._models.DeleteEventRuleRequest(product_name="oss", rule_name=RULE)
        )


class CliRules:
    """The rule with `tidings rule` on the data directory (the server notices within 1 s)."""

    how = "tidings rule create (CLI on the data directory; the SDK is not installed)"

    def __init__(self, data_dir: Path) -> None:
        executable = shutil.which("tidings")
        self._prefix = [executable] if executable else [sys.executable, "-m", "tidings"]
        self._data_dir = str(data_dir)

    def _run(self, *args: str) -> None:
        command = [*self._prefix, "rule", *args, "--data-dir", self._data_dir]
        # The queue endpoint is stored under the account and region, as the server's.
        env = {**os.environ, "TIDINGS_ACCOUNT_ID": MNS_ACCOUNT, "TIDINGS_REGION": MNS_REGION}
        subprocess.run(command, check=True, capture_output=True, timeout=60, env=env)

    def create(self) -> None:
        """tidings rule create."""
        match = f"prefix={resource_prefix()}"
        self._run("create", RULE, "--event-type", "PutObject", "--match", match, "--queue", QUEUE)

    def delete(self) -> None:
        """tidings rule delete."""
        self._run("delete", RULE)


def resource_prefix() -> str:
    """Every object of the bench bucket, in the bucket-ARN form the console writes."""
    return f"acs:oss:{MNS_REGION}:{MNS_ACCOUNT}:{BUCKET}/"


class TidingsPipeline:
    """OSS PUT → event rule → MNS queue."""

    backend = "tidings"

    def __init__(self, oss_url: str, mns_url: str, pid: int, data_dir: Path) -> None:
        self.pid = pid
        self.oss_url = oss_url
        self.lean = LeanOss(oss_url, BUCKET)
        self.queues = MnsClient(mns_url, MnsSigner(ACCESS_KEY_ID, ACCESS_KEY_SECRET))
        self.consumer_args = ("tidings", mns_url, [QUEUE], 1)
        try:
            self.rules: RuleControl = SdkRules(mns_url)
        except ImportError:
            self.rules = CliRules(data_dir)
        self._probes = itertools.count()

    async def setup(self) -> None:
        """The bucket (oss2) and the queue."""
        await asyncio.to_thread(sdk_client(Target("tidings", self.oss_url, BUCKET)).create_bucket)
        async with sessions(1) as (session,):
            await self.queues.create_queue(session, QUEUE)

    async def _probe_until(self, wanted: bool) -> list[str]:
        """PUT probe objects until the responses show (or stop showing) that events are
        stored; return the keys whose events were stored."""
        evented: list[str] = []
        deadline = time.perf_counter() + PROBE_TIMEOUT
        async with sessions(1) as (session,):
            while True:
                key = f"probe/{next(self._probes)}"
                stored = await put_with_status(self.lean, session, key)
                if stored:
                    evented.append(key)
                if stored == wanted:
                    return evented
                if time.perf_counter() > deadline:
                    state = "on" if wanted else "off"
                    raise RuntimeError(f"the rule did not switch {state} within {PROBE_TIMEOUT} s")
                await asyncio.sleep(0.1)

    async def enable(self) -> list[str]:
        """Create the rule; return the probe keys it already produced events for."""
        await asyncio.to_thread(self.rules.create)
        return await self._probe_until(True)

    async def disable(self) -> None:
        """Delete the rule."""
        await asyncio.to_thread(self.rules.delete)
        await self._probe_until(False)


class MotoPipeline:
    """S3 PUT → bucket notification → SQS queue, inside moto's server."""

    backend = "moto"

    def __init__(self, url: str, pid: int) -> None:
        self.pid = pid
        self.url = url
        self.lean = LeanS3(url, BUCKET)
        self.queues = SqsClient(url)
        self.consumer_args = ("moto", url, [QUEUE], 1)
        self._s3: Any = None

    async def setup(self) -> None:
        """The bucket and a boto3 client for its notification configuration (boto3), the
        queue (SQS query API)."""
        client = Boto3Client(Target("moto", self.url, BUCKET))
        await asyncio.to_thread(client.create_bucket)
        self._s3 = client.s3
        async with sessions(1) as (session,):
            await self.queues.create_queue(session, QUEUE)

    def _configure(self, configuration: dict[str, Any]) -> None:
        self._s3.put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration=configuration
        )

    async def enable(self) -> list[str]:
        """A QueueConfiguration for ObjectCreated:Put (moto queues an s3:TestEvent too)."""
        arn = f"arn:aws:sqs:{SQS_REGION}:{SQS_ACCOUNT}:{QUEUE}"
        configuration = {
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:Put"]}]
        }
        await asyncio.to_thread(self._configure, configuration)
        return []

    async def disable(self) -> None:
        """An empty configuration: no notifications."""
        await asyncio.to_thread(self._configure, {})


# --------------------------------------------------------------------------- measuring


async def producer(
    lean: LeanClient,
    session: aiohttp.ClientSession,
    prefix: str,
    deadline: float,
    stats: PutStats,
) -> None:
    """PUT new 1 KiB objects until the deadline, noting each key's send time."""
    data = os.urandom(BODY_SIZE)
    consecutive = 0
    for n in itertools.count():
        if time.perf_counter() >= deadline:
            return
        key = f"{prefix}/{n}"
        sent_ns = time.monotonic_ns()
        stats.sent_ns[key] = sent_ns
        try:
            await lean.put(session, key, data)
        except REQUEST_ERRORS as error:
            stats.record_error(error)
            consecutive += 1
            if consecutive >= MAX_CONSECUTIVE_ERRORS:
                return
            continue
        consecutive = 0
        stats.ops += 1
        stats.acked.add(key)
        stats.latencies.append((time.monotonic_ns() - sent_ns) / 1e9)


def analyse(
    records: list[EventRecord], prefix: str, stats: PutStats, started_ns: int, run: Run
) -> None:
    """Match consumed events to this run's PUTs: counts, latencies, completeness."""
    expected_name = EVENT_NAMES[run.backend]
    seen: set[str] = set()
    latencies: list[float] = []
    last_ns = started_ns
    for key, name, bucket, size, at_ns in records:
        if key is None or not key.startswith(prefix + "/"):
            continue  # a test event, or a probe's or an earlier run's event
        if key in seen:
            run.duplicates += 1
            continue
        seen.add(key)
        if key not in stats.acked:
            run.unknown += 1
            continue
        if (name, bucket, size) != (expected_name, BUCKET, BODY_SIZE):
            run.malformed += 1
        latencies.append((at_ns - stats.sent_ns[key]) / 1e9)
        last_ns = max(last_ns, at_ns)
    run.events = len(latencies)
    run.missing = len(stats.acked - seen)
    if run.kind == RULE:
        # Without a consumer during the PUTs, arrival times only measure the drain.
        run.delivery_seconds = (last_ns - started_ns) / 1e9
        run.e2e_p50_ms, run.e2e_p99_ms = latency_summary(latencies)
        run.e2e_max_ms = max(latencies) * 1000 if latencies else None


class BackendBench:
    """Every run against one backend."""

    def __init__(
        self, pipeline: Pipeline, consumer: ConsumerProcess, settings: Settings, report: Report
    ) -> None:
        self.pipeline = pipeline
        self.consumer = consumer
        self.settings = settings
        self.report = report

    async def check(self) -> bool:
        """One PUT with the rule on → exactly its event consumed, with sane fields.

        Raises for Tidings; returns False for moto (whose server mode might not deliver).
        """
        pipeline = self.pipeline
        progress(f"{pipeline.backend}: end-to-end check")
        probes = await pipeline.enable()
        await self.consumer.call("consume", *pipeline.consumer_args)
        key = "check/0"
        async with sessions(1) as (session,):
            sent_ns = time.monotonic_ns()
            await pipeline.lean.put(session, key, bytes(BODY_SIZE))
        settings = dataclasses.replace(self.settings, drain_limit=CHECK_TIMEOUT)
        await self.consumer.settle(len(probes) + 1, settings)
        records, errors, first_error = await self.consumer.halt()
        await pipeline.disable()
        events = [r for r in records if r[0] is not None]
        mine = [r for r in events if r[0] == key]
        expected = (key, EVENT_NAMES[pipeline.backend], BUCKET, BODY_SIZE)
        problem = ""
        if errors:
            problem = f"the consumer failed: {first_error}"
        elif len(mine) != 1:
            problem = f"{len(mine)} events for the checked PUT (all events: {events[:5]})"
        elif mine[0][:4] != expected:
            problem = f"event {mine[0][:4]} is not {expected}"
        elif sorted(r[0] or "" for r in events) != sorted([*probes, key]):
            problem = f"unexpected events: {events[:5]} (probes {probes})"
        if problem:
            message = f"{pipeline.backend}: end-to-end check failed: {problem}"
            if pipeline.backend == "tidings":
                raise RuntimeError(message)
            self.report.notes.append(message)
            progress(message)
            return False
        progress(
            f"{pipeline.backend}: check passed, event consumed after "
            f"{(mine[0][4] - sent_ns) / 1e6:.1f} ms"
        )
        return True

    async def run(self) -> None:
        """Setup, check, then the four runs for each producer count."""
        await self.pipeline.setup()
        delivers = await self.check()
        self.report.delivers[self.pipeline.backend] = delivers
        # Untimed: the first seconds of a fresh server (WAL file growing, first
        # checkpoints, cold code paths) would otherwise weigh on the first baseline only.
        progress(f"{self.pipeline.backend}: warm-up")
        warm_up = min(WARM_UP, self.settings.duration)
        await self.measure(NO_RULE_BEFORE, max(PRODUCER_COUNTS), duration=warm_up, tag="warm-up")
        kinds = (NO_RULE_BEFORE, RULE, RULE_NO_CONSUMER, NO_RULE_AFTER)
        for producers in PRODUCER_COUNTS:
            for kind in kinds:
                if kind in (RULE, RULE_NO_CONSUMER) and not delivers:
                    continue
                if kind == RULE:
                    await self.pipeline.enable()
                progress(f"{self.pipeline.backend}: {KIND_LABELS[kind]}, {producers} producer(s)")
                self.report.runs.append(await self.measure(kind, producers))
                if kind == RULE_NO_CONSUMER:
                    await self.pipeline.disable()

    async def measure(
        self, kind: str, producers: int, *, duration: float | None = None, tag: str = ""
    ) -> Run:
        """One run: PUTs for the duration; with a rule, the events consumed and checked."""
        run = Run(self.pipeline.backend, kind, producers)
        prefix = tag or f"{kind}-{producers}"
        duration = duration or self.settings.duration
        stats = PutStats()
        lean = self.pipeline.lean
        if kind == RULE:
            await self.consumer.call("consume", *self.pipeline.consumer_args)
        async with sessions(producers) as pool:
            # Untimed: every connection is open before the clock starts (404s ignored).
            with contextlib.suppress(*REQUEST_ERRORS):
                await asyncio.gather(*(lean.get(s, "warm-up") for s in pool))
            meter = CpuMeter(self.pipeline.pid)
            consumer_cpu = await self.consumer.call("cpu")
            meter.start()
            started_ns = time.monotonic_ns()
            started = time.perf_counter()
            deadline = started + duration
            await asyncio.gather(
                *(producer(lean, s, f"{prefix}/{n}", deadline, stats) for n, s in enumerate(pool))
            )
            run.seconds = time.perf_counter() - started
            run.server_cpu, run.producer_cpu = meter.stop()
            consumer_cpu = (await self.consumer.call("cpu") - consumer_cpu) / run.seconds
        run.puts, run.errors, run.first_error = stats.ops, stats.errors, stats.first_error
        run.put_p50_ms, run.put_p99_ms = latency_summary(stats.latencies)
        if kind in (RULE, RULE_NO_CONSUMER):
            run.consumer_cpu = consumer_cpu if kind == RULE else None
            if kind == RULE_NO_CONSUMER:
                await self.consumer.call("consume", *self.pipeline.consumer_args)
            await self.consumer.settle(len(stats.acked), self.settings)
            records, run.consumer_errors, run.consumer_error = await self.consumer.halt()
            analyse(records, prefix, stats, started_ns, run)
        return run


# --------------------------------------------------------------------------- servers


async def bench_tidings(root: Path, consumer: ConsumerProcess, report: Report) -> None:
    """Start Tidings, measure it, stop it."""
    # The rule's resource names the bucket by its ARN, which holds the account and region.
    env = {"TIDINGS_ACCOUNT_ID": MNS_ACCOUNT, "TIDINGS_REGION": MNS_REGION}
    async with tidings_server(root, env) as server:
        assert server.mns_url is not None and server.data_dir is not None
        pipeline = TidingsPipeline(server.url, server.mns_url, server.pid, server.data_dir)
        report.notes.append(f"tidings rule created with {pipeline.rules.how}.")
        await BackendBench(pipeline, consumer, report.settings, report).run()


async def bench_moto(root: Path, consumer: ConsumerProcess, report: Report) -> None:
    """Start moto, measure it, stop it."""
    async with moto_server(root) as server:
        pipeline = MotoPipeline(server.url, server.pid)
        await BackendBench(pipeline, consumer, report.settings, report).run()


async def run_all(report: Report, root: Path) -> None:
    """Each backend in turn, into `report`; a failure ends that backend's runs only."""
    benches = {"tidings": bench_tidings, "moto": bench_moto}
    consumer = ConsumerProcess()
    await consumer.start()
    try:
        for backend in report.backends:
            progress(f"starting {backend}")
            try:
                await benches[backend](root, consumer, report)
            except (RuntimeError, OSError, subprocess.SubprocessError, *REQUEST_ERRORS) as error:
                report.failures.append(f"! {backend} aborted: {type(error).__name__}: {error}")
                progress(report.failures[-1])
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- reporting


def find(runs: Sequence[Run], backend: str, kind: str, producers: int) -> Run | None:
    """The run of that backend, kind and producer count, if measured."""
    for run in runs:
        if (run.backend, run.kind, run.producers) == (backend, kind, producers):
            return run
    return None


def baseline(runs: Sequence[Run], backend: str, producers: int) -> float | None:
    """The mean PUT rate of the no-rule runs before and after the rule's."""
    rates = [
        run.put_rate
        for kind in (NO_RULE_BEFORE, NO_RULE_AFTER)
        if (run := find(runs, backend, kind, producers)) is not None and run.puts
    ]
    return statistics.mean(rates) if rates else None


def ratio(run: Run | None, base: float | None) -> float | None:
    """A run's PUT rate over the baseline."""
    if run is None or not base or not run.puts:
        return None
    return run.put_rate / base


def ms_pair(p50: float | None, p99: float | None) -> str:
    """'p50 / p99' in ms."""
    if p50 is None or p99 is None:
        return "-"
    return f"{p50:.1f} / {p99:.1f}"


def cores(run: Run) -> str:
    """CPU cores of server / producers / consumer during the PUTs."""
    values = (run.server_cpu, run.producer_cpu, run.consumer_cpu)
    return " / ".join("-" if value is None else f"{value:.2f}" for value in values)


def completeness(run: Run) -> str:
    """'missing / duplicates' (plus unknown and malformed when there are any)."""
    if not run.has_events:
        return ""
    text = f"{run.missing} / {run.duplicates}"
    if run.unknown or run.malformed:
        text += f" (+{run.unknown} unknown, {run.malformed} malformed)"
    return text


RUNS_HEADER = (
    "backend",
    "prod.",
    "run",
    "PUT/s",
    "÷ no rule",
    "PUT p50 / p99 ms",
    "consumed/s",
    "PUT→consume p50 / p99 ms",
    "missing / dup",
    "cores srv/prod/cons",
)


def runs_section(report: Report) -> Section:
    """Every run, grouped by backend and producer count."""
    rows = []
    for backend in report.backends:
        for producers in PRODUCER_COUNTS:
            base = baseline(report.runs, backend, producers)
            for kind in KIND_LABELS:
                run = find(report.runs, backend, kind, producers)
                if run is None:
                    continue
                quotient = ratio(run, base)
                rows.append(
                    [
                        backend,
                        str(producers),
                        KIND_LABELS[kind],
                        f"{run.put_rate:,.0f}" + ("!" if run.errors else ""),
                        f"{quotient:.2f}" if quotient is not None and run.has_events else "",
                        ms_pair(run.put_p50_ms, run.put_p99_ms),
                        f"{run.event_rate:,.0f}" if run.kind == RULE else "",
                        ms_pair(run.e2e_p50_ms, run.e2e_p99_ms) if run.kind == RULE else "",
                        completeness(run),
                        cores(run),
                    ]
                )
    title = f"PUT 1 KiB → rule → queue ({report.settings.duration:g} s per run)"
    return Section(title, RUNS_HEADER, rows)


def comparison_section(report: Report) -> Section:
    """Tidings against moto, each as ratios to figures of the same run."""
    rows = []
    for producers in PRODUCER_COUNTS:
        cells = [str(producers)]
        rule_runs = {}
        for backend in ("tidings", "moto"):
            base = baseline(report.runs, backend, producers)
            rule_runs[backend] = find(report.runs, backend, RULE, producers)
            quotient = ratio(rule_runs[backend], base)
            cells.append(f"{base:,.0f}" if base else "-")
            cells.append(f"{quotient:.2f}" if quotient is not None else "-")
        tidings, moto = rule_runs["tidings"], rule_runs["moto"]
        rate = "-"
        if tidings and moto and moto.event_rate:
            rate = f"{tidings.event_rate / moto.event_rate:.1f}×"
        p99 = "-"
        if tidings and moto and tidings.e2e_p99_ms and moto.e2e_p99_ms:
            p99 = f"{tidings.e2e_p99_ms:.1f} / {moto.e2e_p99_ms:.1f}"
        cells.extend([rate, p99])
        rows.append(cells)
    header = (
        "producers",
        "tidings PUT/s no rule",
        "with rule ÷ no rule",
        "moto PUT/s no rule",
        "with rule ÷ no rule",
        "consumed/s tidings ÷ moto",
        "p99 PUT→consume ms tidings / moto",
    )
    return Section("Tidings against moto (same run)", header, rows)


def check_targets(report: Report) -> list[TargetCheck]:
    """The issue's targets, for Tidings."""
    checks = []
    for producers in PRODUCER_COUNTS:
        label = (
            f"PUT rate with a rule ≥ {RATIO_TARGET:.0%} of the rate without one "
            f"({producers} producer{'s' if producers > 1 else ''}, consumer running)"
        )
        base = baseline(report.runs, "tidings", producers)
        run = find(report.runs, "tidings", RULE, producers)
        quotient = ratio(run, base)
        if run is None or quotient is None or base is None:
            checks.append(TargetCheck(label, "not measured", None))
            continue
        measured = f"{quotient:.2f} ({run.put_rate:,.0f} / {base:,.0f} PUT/s)"
        alone = ratio(find(report.runs, "tidings", RULE_NO_CONSUMER, producers), base)
        if alone is not None:
            measured += f"; without the consumer {alone:.2f}"
        checks.append(TargetCheck(label, measured, quotient >= RATIO_TARGET))
    producers = max(PRODUCER_COUNTS)
    label = f"p99 PUT-to-consume < {P99_TARGET_MS:g} ms with {producers} producers"
    run = find(report.runs, "tidings", RULE, producers)
    if run is None or run.e2e_p99_ms is None:
        checks.append(TargetCheck(label, "not measured", None))
    else:
        measured = (
            f"p99 {run.e2e_p99_ms:.1f} ms (p50 {run.e2e_p50_ms or 0:.1f}, max "
            f"{run.e2e_max_ms or 0:.1f}) at {run.event_rate:,.0f} events/s"
        )
        checks.append(TargetCheck(label, measured, run.e2e_p99_ms < P99_TARGET_MS))
    evented = [r for r in report.runs if r.backend == "tidings" and r.has_events]
    label = "every acknowledged PUT produced exactly one event"
    if not evented:
        checks.append(TargetCheck(label, "not measured", None))
    else:
        puts = sum(r.puts for r in evented)
        missing = sum(r.missing for r in evented)
        extra = sum(r.duplicates + r.unknown + r.malformed for r in evented)
        measured = (
            f"{puts:,} PUTs in {len(evented)} runs: {missing} missing, "
            f"{sum(r.duplicates for r in evented)} duplicates, "
            f"{sum(r.unknown for r in evented)} unknown, "
            f"{sum(r.malformed for r in evented)} malformed"
        )
        checks.append(TargetCheck(label, measured, missing == 0 and extra == 0))
    return checks


def server_code() -> str:
    """Which code `tidings serve` runs: the commit of its source tree, and whether files
    under src/ differ from it (the figures belong to that state, not to a commit)."""
    spec = importlib.util.find_spec("tidings")
    if spec is None or spec.origin is None:
        return "unknown"
    where = str(Path(spec.origin).parent)
    try:
        commit = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return f"{where} (not a git checkout)"
    return commit + (f" + uncommitted changes to {len(changed)} file(s)" if changed else "")


def footnotes(report: Report) -> list[str]:
    """Method, caveats and failures, printed under the tables."""
    notes = [
        f"server code: {report.code}.",
        f"{os.cpu_count()} CPUs shared by the server, the producers and the consumer; "
        f"1-minute load average {LOAD_AT_START:.2f} before the run, {report.load_after:.2f} "
        "after (other work on the machine skews the figures: read the ratios).",
        "Producers: lean aiohttp clients in this process, one keep-alive connection each, "
        "new keys; the consumer: one long-polling batch receive (Tidings 16, SQS 10, 1 s "
        "wait) in a separate process, batch deletes in the background.",
        "÷ no rule: PUT/s over the mean of the no-rule runs before and after. consumed/s: "
        "events of acknowledged PUTs consumed per second from the first PUT to the last "
        "event. PUT→consume: from just before the PUT is sent to the consumer reading the "
        "receive response that carries its event.",
        "missing / dup: acknowledged PUTs without an event / events consumed twice, after "
        "draining the queue (also when no consumer ran during the PUTs).",
        "cores: CPU cores used during the PUTs by the server process tree, the producers "
        "and the consumer process (- : not running).",
        "moto delivers the notification inside the PUT call (to its in-process SQS); "
        "Tidings commits the event with the object and a queue copy in the same transaction.",
    ]
    for backend in report.backends:
        if report.delivers.get(backend) is False:
            notes.append(
                f"{backend}: the end-to-end check found no event, so only plain PUTs were measured."
            )
    for run in report.runs:
        where = f"{run.backend} {KIND_LABELS[run.kind]}, {run.producers} producer(s)"
        if run.errors:
            notes.append(f"! {where}: {run.errors} failed PUT(s); first: {run.first_error}")
        if run.consumer_errors:
            notes.append(
                f"! {where}: {run.consumer_errors} consumer error(s); first: {run.consumer_error}"
            )
        if run.missing or run.duplicates or run.unknown or run.malformed:
            notes.append(
                f"? {where}: {run.missing} missing, {run.duplicates} duplicate, "
                f"{run.unknown} unknown and {run.malformed} malformed events."
            )
    notes.extend(report.notes)
    notes.extend(report.failures)
    return notes


def render(report: Report) -> None:
    """Print the tables, the target checks and the footnotes."""
    sections = [runs_section(report)]
    if len(report.backends) > 1:
        sections.append(comparison_section(report))
    width = None if sys.stdout.isatty() else REPORT_WIDTH
    print_report(sections, check_targets(report), footnotes(report), left_columns=3, width=width)


def write_json(path: Path, report: Report) -> None:
    """Settings, every run, the target checks and any failures as JSON."""
    document: dict[str, Any] = {
        "settings": dataclasses.asdict(report.settings),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": LOAD_AT_START,
            "load_after": report.load_after,
        },
        "serve_args": os.environ.get("TIDINGS_BENCH_SERVE_ARGS", ""),
        "server_code": report.code,
        "backends": list(report.backends),
        "delivers": report.delivers,
        "runs": [
            {
                **dataclasses.asdict(run),
                "put_rate": round(run.put_rate, 1),
                "event_rate": round(run.event_rate, 1),
                "ratio_to_no_rule": ratio(run, baseline(report.runs, run.backend, run.producers)),
            }
            for run in report.runs
        ],
        "targets": [dataclasses.asdict(check) for check in check_targets(report)],
        "notes": report.notes,
        "failures": report.failures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s runs (about a minute)")
    parser.add_argument("--duration", type=float, help="seconds of PUTs per run")
    parser.add_argument(
        "--backend", choices=("both", "tidings", "moto"), default="both", help="what to measure"
    )
    parser.add_argument(
        "--dir", type=Path, help="where the data directories go (default: the temp directory)"
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the results."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.duration:
        settings = dataclasses.replace(settings, duration=args.duration)
    backends = ("tidings", "moto") if args.backend == "both" else (args.backend,)
    report = Report(settings, backends, code=server_code())
    run_in_root(report, run_all, "tidings-events-bench-", args.dir)
    render(report)
    progress("done")
    if args.output:
        write_json(args.output, report)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
