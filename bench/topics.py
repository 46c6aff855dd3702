#!/usr/bin/env python3
"""Topic benchmark: Tidings (MNS topics) against moto (SNS → SQS / HTTP).

Starts each server as a subprocess on free local ports, one after the other, and measures
three fan-out scenarios:

1. publish → 1 queue subscription
2. publish → 10 queue subscriptions (each publish becomes 10 queue messages)
3. publish → HTTP push to a fast local receiver

each with 1 and 8 closed-loop publishers (one keep-alive connection each, publishing as
fast as the server answers), then once more with a paced, open-loop publisher at about
half the best rate the scenario sustained. Every body carries a sequence number; the
publisher records when it sent each one, and the consumers record when each arrived:

- queue subscriptions: consumers long-poll every queue with batch receive and delete
  the batches in the background; arrival = when the receive answer was read;
- HTTP: an aiohttp receiver answers 204 and notes the arrival time.

Consumers and the receiver run in a separate process (a "sink"), so they do not share
the publishers' CPU; both processes use ``time.monotonic_ns()`` (one system-wide clock).
Latency = arrival − publish request sent. After publishing stops the run waits for the
remaining deliveries (up to a limit), so the delivered rate covers the whole backlog.

Usage::

    python bench/topics.py [--quick] [--backend both|tidings|moto] [--output results.json]
                           [--scenario queue-1|queue-10|http ...]

A full run takes about 2 minutes (4 at most: each backend has a 110 s budget), ``--quick``
about 45 seconds.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import re
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import yarl
from queues import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    MNS_NAMESPACE,
    RECEIPT_HANDLE_RE,
    SQS_ACCOUNT,
    SQS_HEADERS,
    SQS_VERSION,
    MnsClient,
    MnsSigner,
    Section,
    SqsClient,
    UnexpectedResponseError,
    XmlBody,
    describe,
    event_loop_factory,
    free_port,
    mns_receipt_handles_body,
    moto_command,
    print_report,
    progress,
    read_until_listening,
    stop_process,
    tidings_command,
    wait_until_up,
)
from queues import drain as drain_output

STARTUP_TIMEOUT = 30.0
MNS_BATCH = 16
SQS_BATCH = 10
RECEIVE_WAIT_SECONDS = 1
MNS_REGION = "cn-hangzhou"
MNS_ACCOUNT = "1234567890123456"
SNS_REGION = "us-east-1"
# moto routes by the credential scope and does not verify signatures.
SNS_HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/sns/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "Content-Type": "application/x-www-form-urlencoded",
}
BODY_SIZE = 100
MARKER_RE = re.compile(rb"#(\d+)#")
TOPIC_ARN_RE = re.compile(r"<TopicArn>([^<]+)</TopicArn>")
SUBSCRIPTION_ARN_RE = re.compile(r"<SubscriptionArn>([^<]+)</SubscriptionArn>")
PUBLISHER_COUNTS = (1, 8)
PACED_PUBLISHERS = 8  # connections the paced publisher spreads its schedule over
PACED_FRACTION = 0.5
MAX_CONSECUTIVE_ERRORS = 50

# Targets for Tidings.
QUEUE_RATE_TARGET = 2_000  # publishes/s to one queue subscription
HTTP_RATE_TARGET = 1_000  # pushes/s
P99_TARGET_MS = 20.0  # publish-to-arrival at about half the max rate


@dataclasses.dataclass(frozen=True)
class Settings:
    """Knobs that differ between the full and the quick run."""

    duration: float  # seconds of publishing per run
    drain_limit: float  # seconds a run may wait for its remaining deliveries
    stall: float  # ... or stop waiting when nothing arrived for this long
    backend_budget: float  # seconds one backend may take before remaining runs are skipped
    scenarios: tuple[str, ...] = ()  # keys of the scenarios to run; empty: all of them


FULL = Settings(duration=5.0, drain_limit=20.0, stall=3.0, backend_budget=110.0)
QUICK = Settings(duration=1.5, drain_limit=6.0, stall=2.0, backend_budget=32.0)


LOAD_AT_START = os.getloadavg()[0]


def message_body(index: int) -> str:
    """A ~100-character body carrying its sequence number as ``#index#``."""
    head = f"#{index}#"
    return head + "x" * (BODY_SIZE - len(head))


# --------------------------------------------------------------------------- backends


class Backend(Protocol):
    """What a scenario needs from a server: topics, queues, subscriptions, publishing."""

    name: str
    base_url: str
    batch_size: int

    async def create_topic(self, session: aiohttp.ClientSession, name: str) -> str: ...
    async def delete_topic(self, session: aiohttp.ClientSession, topic: str) -> None: ...
    async def create_queue(self, session: aiohttp.ClientSession, name: str) -> None: ...
    async def delete_queue(self, session: aiohttp.ClientSession, name: str) -> None: ...
    async def subscribe_queue(
        self, session: aiohttp.ClientSession, topic: str, name: str, queue: str
    ) -> None: ...
    async def subscribe_http(
        self, session: aiohttp.ClientSession, topic: str, name: str, url: str
    ) -> None: ...
    async def publish(self, session: aiohttp.ClientSession, topic: str, body: str) -> None: ...


class TidingsBackend:
    """MNS topics over HTTP/XML, signed with signature version 1."""

    name = "tidings"
    batch_size = MNS_BATCH

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = MnsSigner(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        self.queues = MnsClient(self.base_url, self.signer)
        self._empty_topic = XmlBody.of(f'<Topic xmlns="{MNS_NAMESPACE}"></Topic>')

    async def _call(
        self,
        session: aiohttp.ClientSession,
        verb: str,
        target: str,
        expected: tuple[int, ...],
        body: XmlBody | None = None,
    ) -> None:
        headers = self.signer.headers(verb, target, body.md5 if body else "", cacheable=False)
        url = yarl.URL(self.base_url + target, encoded=True)
        data = body.data if body else None
        async with session.request(verb, url, data=data, headers=headers) as response:
            payload = await response.read()
            if response.status not in expected:
                raise UnexpectedResponseError(describe(verb, target, response.status, payload))

    async def create_topic(self, session: aiohttp.ClientSession, name: str) -> str:
        await self._call(session, "PUT", f"/topics/{name}", (201, 204), self._empty_topic)
        return name

    async def delete_topic(self, session: aiohttp.ClientSession, topic: str) -> None:
        await self._call(session, "DELETE", f"/topics/{topic}", (204,))

    async def create_queue(self, session: aiohttp.ClientSession, name: str) -> None:
        await self.queues.create_queue(session, name)

    async def delete_queue(self, session: aiohttp.ClientSession, name: str) -> None:
        await self.queues.delete_queue(session, name)

    async def _subscribe(
        self, session: aiohttp.ClientSession, topic: str, name: str, endpoint: str
    ) -> None:
        body = XmlBody.of(
            f'<Subscription xmlns="{MNS_NAMESPACE}"><Endpoint>{endpoint}</Endpoint>'
            "<NotifyContentFormat>SIMPLIFIED</NotifyContentFormat></Subscription>"
        )
        target = f"/topics/{topic}/subscriptions/{name}"
        await self._call(session, "PUT", target, (201, 204), body)

    async def subscribe_queue(
        self, session: aiohttp.ClientSession, topic: str, name: str, queue: str
    ) -> None:
        endpoint = f"acs:mns:{MNS_REGION}:{MNS_ACCOUNT}:queues/{queue}"
        await self._subscribe(session, topic, name, endpoint)

    async def subscribe_http(
        self, session: aiohttp.ClientSession, topic: str, name: str, url: str
    ) -> None:
        await self._subscribe(session, topic, name, url)

    async def publish(self, session: aiohttp.ClientSession, topic: str, body: str) -> None:
        xml = XmlBody.of(
            f'<Message xmlns="{MNS_NAMESPACE}"><MessageBody>{body}</MessageBody></Message>'
        )
        await self._call(session, "POST", f"/topics/{topic}/messages", (201,), xml)


def form(action: str, **params: str) -> bytes:
    """An SNS query-API request body."""
    return urlencode({"Action": action, "Version": "2010-03-31", **params}).encode()


class MotoBackend:
    """SNS topics delivering to SQS queues and HTTP endpoints, as moto emulates them."""

    name = "moto"
    batch_size = SQS_BATCH

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.queues = SqsClient(self.base_url)

    async def _sns(self, session: aiohttp.ClientSession, body: bytes) -> str:
        async with session.post(self.base_url + "/", data=body, headers=SNS_HEADERS) as response:
            payload = await response.read()
            if response.status != 200:
                raise UnexpectedResponseError(
                    describe("POST", f"/ {body[:60].decode()}", response.status, payload)
                )
            return payload.decode()

    async def create_topic(self, session: aiohttp.ClientSession, name: str) -> str:
        payload = await self._sns(session, form("CreateTopic", Name=name))
        match = TOPIC_ARN_RE.search(payload)
        if match is None:
            raise UnexpectedResponseError(f"CreateTopic: no TopicArn in {payload[:200]}")
        return match.group(1)

    async def delete_topic(self, session: aiohttp.ClientSession, topic: str) -> None:
        await self._sns(session, form("DeleteTopic", TopicArn=topic))

    async def create_queue(self, session: aiohttp.ClientSession, name: str) -> None:
        await self.queues.create_queue(session, name)

    async def delete_queue(self, session: aiohttp.ClientSession, name: str) -> None:
        await self.queues.delete_queue(session, name)

    async def _subscribe(
        self, session: aiohttp.ClientSession, topic: str, protocol: str, endpoint: str
    ) -> str:
        body = form("Subscribe", TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
        match = SUBSCRIPTION_ARN_RE.search(await self._sns(session, body))
        if match is None:
            raise UnexpectedResponseError("Subscribe: no SubscriptionArn")
        return match.group(1)

    async def subscribe_queue(
        self, session: aiohttp.ClientSession, topic: str, name: str, queue: str
    ) -> None:
        arn = f"arn:aws:sqs:{SNS_REGION}:{SQS_ACCOUNT}:{queue}"
        subscription = await self._subscribe(session, topic, "sqs", arn)
        body = form(
            "SetSubscriptionAttributes",
            SubscriptionArn=subscription,
            AttributeName="RawMessageDelivery",
            AttributeValue="true",
        )
        await self._sns(session, body)

    async def subscribe_http(
        self, session: aiohttp.ClientSession, topic: str, name: str, url: str
    ) -> None:
        await self._subscribe(session, topic, "http", url)

    async def publish(self, session: aiohttp.ClientSession, topic: str, body: str) -> None:
        await self._sns(session, form("Publish", TopicArn=topic, Message=body))


# --------------------------------------------------------------------------- the sink
#
# A separate process with its own event loop: the HTTP receiver (always up) and, during
# queue scenarios, the queue consumers. The parent talks to it over a pipe.


@dataclasses.dataclass
class Arrivals:
    """Every arrival: which subscription (0 for HTTP), which message, when (ns)."""

    channel: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))
    index: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))
    at_ns: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))

    def add(self, channel: int, payload: bytes, at_ns: int) -> int:
        found = MARKER_RE.findall(payload)
        for marker in found:
            self.channel.append(channel)
            self.index.append(int(marker))
            self.at_ns.append(at_ns)
        return len(found)

    def take(self) -> Arrivals:
        """Everything recorded so far, leaving this empty."""
        taken = Arrivals(self.channel, self.index, self.at_ns)
        self.channel, self.index, self.at_ns = array.array("q"), array.array("q"), array.array("q")
        return taken

    def __len__(self) -> int:
        return len(self.index)


def sink_session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        auto_decompress=False,
    )


class QueueConsumers:
    """Long-poll consumers of one scenario's queues, deleting batches in the background."""

    def __init__(
        self, arrivals: Arrivals, kind: str, base_url: str, queues: list[str], per_queue: int
    ) -> None:
        self.arrivals = arrivals
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.queues = queues
        self.per_queue = per_queue
        self.signer = MnsSigner(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        self.errors = 0
        self.first_error = ""
        self._stop = False
        self._tasks: list[asyncio.Task[None]] = []
        self._deletes: set[asyncio.Task[None]] = set()
        self._sessions: list[aiohttp.ClientSession] = []
        self._deleter: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._deleter = sink_session(4 * len(self.queues))
        for channel, queue in enumerate(self.queues):
            for _ in range(self.per_queue):
                session = sink_session(1)
                self._sessions.append(session)
                self._tasks.append(asyncio.create_task(self._consume(session, channel, queue)))

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._deletes:
            await asyncio.wait(self._deletes, timeout=10)
        for session in [*self._sessions, self._deleter]:
            if session is not None:
                await session.close()

    def _error(self, error: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(error).__name__}: {error}"

    async def _consume(self, session: aiohttp.ClientSession, channel: int, queue: str) -> None:
        receive = self._mns_receive if self.kind == "tidings" else self._sqs_receive
        while not self._stop:
            try:
                payload = await receive(session, queue)
            except (UnexpectedResponseError, aiohttp.ClientError, TimeoutError) as error:
                self._error(error)
                await asyncio.sleep(0.05)
                continue
            at_ns = time.monotonic_ns()
            if payload is None or not self.arrivals.add(channel, payload, at_ns):
                continue
            handles = RECEIPT_HANDLE_RE.findall(payload.decode())
            task = asyncio.create_task(self._delete(queue, handles))
            self._deletes.add(task)
            task.add_done_callback(self._deletes.discard)

    async def _mns_receive(self, session: aiohttp.ClientSession, queue: str) -> bytes | None:
        target = (
            f"/queues/{queue}/messages?numOfMessages={MNS_BATCH}&waitseconds={RECEIVE_WAIT_SECONDS}"
        )
        headers = self.signer.headers("GET", target)
        url = yarl.URL(self.base_url + target, encoded=True)
        async with session.get(url, headers=headers) as response:
            payload = await response.read()
        if response.status == 404 and b"<Code>MessageNotExist</Code>" in payload:
            return None
        if response.status != 200:
            raise UnexpectedResponseError(describe("GET", target, response.status, payload))
        return payload

    async def _sqs_receive(self, session: aiohttp.ClientSession, queue: str) -> bytes | None:
        body = urlencode(
            {
                "Action": "ReceiveMessage",
                "Version": SQS_VERSION,
                "MaxNumberOfMessages": SQS_BATCH,
                "WaitTimeSeconds": RECEIVE_WAIT_SECONDS,
            }
        ).encode()
        url = f"{self.base_url}/{SQS_ACCOUNT}/{queue}"
        async with session.post(url, data=body, headers=SQS_HEADERS) as response:
            payload = await response.read()
        if response.status != 200:
            raise UnexpectedResponseError(describe("POST", url, response.status, payload))
        return payload

    async def _delete(self, queue: str, handles: list[str]) -> None:
        assert self._deleter is not None
        try:
            if self.kind == "tidings":
                body = mns_receipt_handles_body(handles)
                target = f"/queues/{queue}/messages"
                headers = self.signer.headers("DELETE", target, body.md5, cacheable=False)
                url = yarl.URL(self.base_url + target, encoded=True)
                async with self._deleter.delete(url, data=body.data, headers=headers) as response:
                    payload = await response.read()
                    if response.status != 204:
                        raise UnexpectedResponseError(
                            describe("DELETE", target, response.status, payload)
                        )
            else:
                parts = [f"Action=DeleteMessageBatch&Version={SQS_VERSION}"]
                for n, handle in enumerate(handles, 1):
                    prefix = f"DeleteMessageBatchRequestEntry.{n}"
                    parts.append(
                        f"{prefix}.Id=m{n}&{prefix}.ReceiptHandle={quote(handle, safe='')}"
                    )
                url = f"{self.base_url}/{SQS_ACCOUNT}/{queue}"
                data = "&".join(parts).encode()
                async with self._deleter.post(url, data=data, headers=SQS_HEADERS) as response:
                    payload = await response.read()
                    if response.status != 200:
                        raise UnexpectedResponseError(
                            describe("POST", url, response.status, payload)
                        )
        except (UnexpectedResponseError, aiohttp.ClientError, TimeoutError) as error:
            self._error(error)


async def sink_main_async(conn: multiprocessing.connection.Connection) -> None:
    """Serve the HTTP receiver and obey the parent's commands until told to stop."""
    from aiohttp import web

    arrivals = Arrivals()

    async def notify(request: web.Request) -> web.Response:
        payload = await request.read()
        arrivals.add(0, payload, time.monotonic_ns())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", notify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    conn.send(("ready", sock.getsockname()[1]))

    consumers: QueueConsumers | None = None
    while True:
        # A thread waits for the next command: the pipe must stay blocking (an event-loop
        # reader would make it non-blocking, and large replies would then fail).
        command, args = await asyncio.to_thread(conn.recv)
        if command == "consume":
            consumers = QueueConsumers(arrivals, *args)
            consumers.start()
            conn.send(None)
        elif command == "halt":
            errors = (0, "")
            if consumers is not None:
                await consumers.stop()
                errors = (consumers.errors, consumers.first_error)
                consumers = None
            conn.send(errors)
        elif command == "count":
            conn.send(len(arrivals))
        elif command == "collect":
            conn.send((arrivals.take(), time.process_time()))
        elif command == "stop":
            break
    await runner.cleanup()
    conn.send(None)


def sink_main(conn: multiprocessing.connection.Connection) -> None:
    """Entry point of the sink process."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(sink_main_async(conn))


class Sink:
    """The parent's handle on the sink process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=sink_main, args=(child,), daemon=True)
        self.port = 0
        self.cpu_seconds = 0.0

    async def start(self) -> None:
        self.process.start()
        reply = await self._recv(STARTUP_TIMEOUT)
        self.port = int(reply[1])

    async def _recv(self, timeout: float = 60.0) -> Any:
        ready = await asyncio.to_thread(self.conn.poll, timeout)
        if not ready:
            raise RuntimeError("the sink process stopped answering")
        try:
            return self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the sink process exited ({self.process.exitcode})") from None

    async def call(self, command: str, *args: Any) -> Any:
        self.conn.send((command, args))
        return await self._recv()

    def url(self, path: str = "/notify") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.call("stop")
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.kill()


# --------------------------------------------------------------------------- scenarios


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    queues: int  # queue subscriptions (0: one HTTP subscription)
    consumers_per_queue: int

    @property
    def subscriptions(self) -> int:
        return self.queues or 1


SCENARIOS = (
    Scenario("queue-1", "publish → 1 queue subscription", 1, 2),
    Scenario("queue-10", "publish → 10 queue subscriptions", 10, 1),
    Scenario("http", "publish → HTTP push", 0, 0),
)
MODES = ("1", "8", "paced")


def selected(settings: Settings) -> tuple[Scenario, ...]:
    """The scenarios a run measures, in their usual order."""
    if not settings.scenarios:
        return SCENARIOS
    return tuple(s for s in SCENARIOS if s.key in settings.scenarios)


@dataclasses.dataclass
class Result:
    """One (backend, scenario, mode) run."""

    backend: str
    scenario: str
    mode: str  # "1", "8" publishers, or "paced"
    published: int = 0
    publish_seconds: float = 0.0
    arrivals: int = 0
    expected: int = 0  # published × subscriptions
    delivery_seconds: float = 0.0  # first publish sent → last arrival
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    duplicates: int = 0
    unknown: int = 0  # arrivals of messages whose publish failed
    paced_rate: float = 0.0  # target rate of a paced run
    errors: int = 0
    first_error: str = ""
    client_cpu: float = 0.0  # publisher process, CPU s per s
    sink_cpu: float = 0.0
    server_cpu: float = 0.0
    skipped: bool = False

    @property
    def publish_rate(self) -> float:
        return self.published / self.publish_seconds if self.publish_seconds else 0.0

    @property
    def delivery_rate(self) -> float:
        """Deliveries per second, from the first publish to the last arrival."""
        return self.arrivals / self.delivery_seconds if self.delivery_seconds else 0.0

    @property
    def missing(self) -> int:
        return max(self.expected - (self.arrivals - self.duplicates - self.unknown), 0)

    def sustained_rate(self, subscriptions: int) -> float:
        """Publishes/s that were also delivered at that pace (the lower of the two)."""
        return min(self.publish_rate, self.delivery_rate / subscriptions)


@dataclasses.dataclass
class PublishStats:
    sent_ns: list[int] = dataclasses.field(default_factory=list)  # by message index
    acked: set[int] = dataclasses.field(default_factory=set)
    errors: int = 0
    first_error: str = ""

    def record_error(self, error: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = str(error) or type(error).__name__


def new_session() -> aiohttp.ClientSession:
    """A client session with exactly one keep-alive connection."""
    return sink_session(1)


@contextlib.asynccontextmanager
async def sessions(count: int) -> AsyncIterator[list[aiohttp.ClientSession]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(new_session()) for _ in range(count)]


PUBLISH_ERRORS = (UnexpectedResponseError, aiohttp.ClientError, TimeoutError)


async def publish_one(
    backend: Backend, session: aiohttp.ClientSession, topic: str, stats: PublishStats
) -> bool:
    index = len(stats.sent_ns)
    stats.sent_ns.append(time.monotonic_ns())
    try:
        await backend.publish(session, topic, message_body(index))
    except PUBLISH_ERRORS as error:
        stats.record_error(error)
        return False
    stats.acked.add(index)
    return True


async def closed_loop(
    backend: Backend, topic: str, publishers: int, duration: float, stats: PublishStats
) -> float:
    """``publishers`` loops publishing as fast as answered; returns the seconds taken."""

    async def loop(session: aiohttp.ClientSession, deadline: float) -> None:
        consecutive = 0
        while time.perf_counter() < deadline and consecutive < MAX_CONSECUTIVE_ERRORS:
            consecutive = (
                0 if await publish_one(backend, session, topic, stats) else consecutive + 1
            )

    async with sessions(publishers) as pool:
        started = time.perf_counter()
        await asyncio.gather(*(loop(s, started + duration) for s in pool))
        return time.perf_counter() - started


async def paced(
    backend: Backend, topic: str, rate: float, duration: float, stats: PublishStats
) -> float:
    """Open loop: message k is due at start + k / rate, spread over PACED_PUBLISHERS
    connections; a connection that falls behind sends at once. Returns seconds taken."""
    total = max(int(rate * duration), 1)

    async def loop(session: aiohttp.ClientSession, first: int, started: float) -> None:
        for k in range(first, total, PACED_PUBLISHERS):
            delay = started + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await publish_one(backend, session, topic, stats)

    async with sessions(PACED_PUBLISHERS) as pool:
        started = time.perf_counter()
        await asyncio.gather(*(loop(s, w, started) for w, s in enumerate(pool)))
        return time.perf_counter() - started


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ScenarioRunner:
    """Runs every scenario and mode against one backend."""

    def __init__(
        self,
        backend: Backend,
        sink: Sink,
        server_pid: int,
        settings: Settings,
        results: list[Result],
    ) -> None:
        self.backend = backend
        self.sink = sink
        self.server_pid = server_pid
        self.settings = settings
        self.results = results
        self.deadline = time.perf_counter() + settings.backend_budget
        self._names = itertools.count()

    async def run(self) -> None:
        for scenario in selected(self.settings):
            for mode in MODES:
                label = "paced" if mode == "paced" else f"{mode} publisher(s)"
                progress(f"{self.backend.name}: {scenario.label}, {label}")
                self.results.append(await self._run_one(scenario, mode))

    def _find(self, scenario: Scenario, mode: str) -> Result | None:
        for result in self.results:
            if (result.backend, result.scenario, result.mode) == (
                self.backend.name,
                scenario.key,
                mode,
            ):
                return result
        return None

    def _paced_rate(self, scenario: Scenario) -> float:
        rates = [
            r.sustained_rate(scenario.subscriptions)
            for mode in ("1", "8")
            if (r := self._find(scenario, mode)) is not None and not r.skipped
        ]
        return PACED_FRACTION * max(rates, default=0.0)

    async def _run_one(self, scenario: Scenario, mode: str) -> Result:
        result = Result(self.backend.name, scenario.key, mode)
        if self.deadline - time.perf_counter() < self.settings.duration:
            result.skipped = True
            return result
        if mode == "paced":
            result.paced_rate = self._paced_rate(scenario)
            if result.paced_rate <= 0:
                result.skipped = True
                return result
        run = next(self._names)
        topic_name = f"bench-{scenario.key}-{run}"
        queues = [f"bench-{scenario.key}-{run}-{n}" for n in range(scenario.queues)]
        async with new_session() as admin:
            topic = await self.backend.create_topic(admin, topic_name)
            for n, queue in enumerate(queues):
                await self.backend.create_queue(admin, queue)
                await self.backend.subscribe_queue(admin, topic, f"s{n}", queue)
            if not queues:
                await self.backend.subscribe_http(admin, topic, "http", self.sink.url())
        if queues:
            spec = (self.backend.name, self.backend.base_url, queues, scenario.consumers_per_queue)
            await self.sink.call("consume", *spec)
        try:
            await self._measure(scenario, topic, result)
        finally:
            consumer_errors, consumer_error = await self.sink.call("halt")
            if consumer_errors:
                result.errors += consumer_errors
                result.first_error = result.first_error or f"consumer: {consumer_error}"
            async with new_session() as admin:
                await self.backend.delete_topic(admin, topic)
                for queue in queues:
                    await self.backend.delete_queue(admin, queue)
        return result

    async def _measure(self, scenario: Scenario, topic: str, result: Result) -> None:
        stats = PublishStats()
        arrivals_before, sink_cpu_before = await self.sink.call("collect")
        del arrivals_before
        server_cpu = cpu_seconds(self.server_pid)
        cpu = time.process_time()
        started_ns = time.monotonic_ns()
        if result.mode == "paced":
            seconds = await paced(
                self.backend, topic, result.paced_rate, self.settings.duration, stats
            )
        else:
            seconds = await closed_loop(
                self.backend, topic, int(result.mode), self.settings.duration, stats
            )
        result.client_cpu = (time.process_time() - cpu) / seconds
        result.published = len(stats.acked)
        result.publish_seconds = seconds
        result.errors, result.first_error = stats.errors, stats.first_error
        result.expected = len(stats.acked) * scenario.subscriptions
        await self._wait_for_arrivals(result.expected)
        arrivals, sink_cpu = await self.sink.call("collect")
        span = (time.monotonic_ns() - started_ns) / 1e9
        result.sink_cpu = (sink_cpu - sink_cpu_before) / span
        result.server_cpu = (cpu_seconds(self.server_pid) - server_cpu) / span
        self._analyse(arrivals, stats, started_ns, result)

    async def _wait_for_arrivals(self, expected: int) -> None:
        """Until every delivery arrived, nothing arrived for a while, or the limit passed."""
        limit = time.perf_counter() + self.settings.drain_limit
        last_count, last_change = -1, time.perf_counter()
        while time.perf_counter() < limit:
            count = await self.sink.call("count")
            if count >= expected:
                return
            if count != last_count:
                last_count, last_change = count, time.perf_counter()
            elif time.perf_counter() - last_change > self.settings.stall:
                return
            await asyncio.sleep(0.05)

    @staticmethod
    def _analyse(arrivals: Arrivals, stats: PublishStats, started_ns: int, result: Result) -> None:
        seen: set[tuple[int, int]] = set()
        latencies: list[float] = []
        last_ns = started_ns
        for channel, index, at_ns in zip(
            arrivals.channel, arrivals.index, arrivals.at_ns, strict=True
        ):
            if index >= len(stats.sent_ns):
                result.unknown += 1
                continue
            if (channel, index) in seen:
                result.duplicates += 1
                continue
            seen.add((channel, index))
            if index not in stats.acked:
                result.unknown += 1
                continue
            latencies.append((at_ns - stats.sent_ns[index]) / 1e6)
            last_ns = max(last_ns, at_ns)
        result.arrivals = len(arrivals)
        result.delivery_seconds = (last_ns - started_ns) / 1e9
        if latencies:
            latencies.sort()
            result.p50_ms = percentile(latencies, 0.50)
            result.p99_ms = percentile(latencies, 0.99)
            result.max_ms = latencies[-1]


# --------------------------------------------------------------------------- servers


@contextlib.asynccontextmanager
async def tidings_server() -> AsyncIterator[tuple[str, int]]:
    """Run ``tidings serve`` on a scratch data directory; yield its MNS URL and pid."""
    env = {
        **os.environ,
        "TIDINGS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "TIDINGS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "TIDINGS_ACCOUNT_ID": MNS_ACCOUNT,
    }
    output: collections.deque[str] = collections.deque(maxlen=40)
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as data_dir:
        process = await asyncio.create_subprocess_exec(
            *tidings_command(data_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        assert process.stdout is not None
        reader: asyncio.Task[None] | None = None
        try:
            base_url = await read_until_listening(process.stdout, output, STARTUP_TIMEOUT)
            reader = asyncio.create_task(drain_output(process.stdout, output))
            await wait_until_up(base_url + "/health", STARTUP_TIMEOUT, require_ok=True)
            yield base_url, process.pid
        finally:
            await stop_process(process)
            if reader is not None:
                await reader


@contextlib.asynccontextmanager
async def moto_server() -> AsyncIterator[tuple[str, int]]:
    """Run moto's server on a free port; yield its base URL and pid."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *moto_command(port), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_until_up(base_url + "/moto-api/", STARTUP_TIMEOUT, require_ok=False)
            yield base_url, process.pid
        finally:
            await stop_process(process)


# --------------------------------------------------------------------------- reporting


@dataclasses.dataclass(frozen=True)
class Report:
    settings: Settings
    backends: Sequence[str]
    results: Sequence[Result]
    failures: Sequence[str]


def find(results: Sequence[Result], backend: str, scenario: str, mode: str) -> Result | None:
    for result in results:
        if (result.backend, result.scenario, result.mode) == (backend, scenario, mode):
            return result
    return None


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def cells(result: Result | None) -> list[str]:
    """publishes/s, delivered/s, p50, p99 for one run."""
    if result is None:
        return ["-"] * 4
    if result.skipped:
        return ["skipped", "", "", ""]
    marks = ("!" if result.errors else "") + ("?" if result.missing else "")
    return [
        f"{result.publish_rate:,.0f}{marks}",
        f"{result.delivery_rate:,.0f}",
        ms(result.p50_ms),
        ms(result.p99_ms),
    ]


def mode_label(tidings: Result | None, moto: Result | None, mode: str) -> str:
    if mode != "paced":
        return f"{mode} publisher{'s' if mode != '1' else ''}"
    rates = [f"{r.paced_rate:,.0f}/s" for r in (tidings, moto) if r and r.paced_rate]
    return "paced " + " | ".join(rates) if rates else "paced"


TABLE_HEADER = (
    "run",
    "tidings pub/s",
    "deliv/s",
    "p50 ms",
    "p99 ms",
    "moto pub/s",
    "deliv/s",
    "p50 ms",
    "p99 ms",
    "tidings/moto",
)


def scenario_rows(report: Report, scenario: Scenario) -> list[list[str]]:
    rows = []
    for mode in MODES:
        tidings = find(report.results, "tidings", scenario.key, mode)
        moto = find(report.results, "moto", scenario.key, mode)
        if mode == "paced":
            ratio = (
                f"p99 {moto.p99_ms / tidings.p99_ms:.2f}×"
                if tidings and moto and tidings.p99_ms and moto.p99_ms
                else "-"
            )
        else:
            ratio = "-"
            if tidings and moto and not tidings.skipped and not moto.skipped:
                ours = tidings.sustained_rate(scenario.subscriptions)
                theirs = moto.sustained_rate(scenario.subscriptions)
                ratio = f"{ours / theirs:.2f}" if theirs else "-"
        rows.append([mode_label(tidings, moto, mode), *cells(tidings), *cells(moto), ratio])
    return rows


@dataclasses.dataclass(frozen=True)
class TargetCheck:
    label: str
    measured: str
    passed: bool | None  # None: not measured


def check_targets(results: Sequence[Result]) -> list[TargetCheck]:
    checks = []
    by_key = {s.key: s for s in SCENARIOS}
    for key, target, what in (
        ("queue-1", QUEUE_RATE_TARGET, "publishes/s to 1 queue subscription"),
        ("http", HTTP_RATE_TARGET, "HTTP pushes/s"),
    ):
        label = f"≥ {target:,} {what} (best of 1 and 8 publishers, sustained)"
        runs = [r for m in ("1", "8") if (r := find(results, "tidings", key, m)) and not r.skipped]
        if not runs:
            checks.append(TargetCheck(label, "not measured", None))
            continue
        subscriptions = by_key[key].subscriptions
        best = max(runs, key=lambda r: r.sustained_rate(subscriptions))
        rate = best.sustained_rate(subscriptions)
        measured = (
            f"{rate:,.0f}/s ({best.mode} publisher(s): published {best.publish_rate:,.0f}/s,"
            f" delivered {best.delivery_rate / subscriptions:,.0f}/s)"
        )
        checks.append(TargetCheck(label, measured, rate >= target and not best.missing))
    for key in ("queue-1", "http"):
        scenario = by_key[key]
        label = f"p99 publish-to-arrival < {P99_TARGET_MS:g} ms at ~half the max rate: {key}"
        paced_run = find(results, "tidings", key, "paced")
        if paced_run is None or paced_run.skipped or paced_run.p99_ms is None:
            checks.append(TargetCheck(label, "not measured", None))
            continue
        measured = (
            f"p99 {paced_run.p99_ms:.1f} ms, p50 {paced_run.p50_ms or 0:.1f} ms"
            f" at {paced_run.publish_rate:,.0f} publishes/s"
            f" (paced at {paced_run.paced_rate:,.0f}/s; {scenario.subscriptions} subscription(s))"
        )
        passed = paced_run.p99_ms < P99_TARGET_MS and not paced_run.missing
        checks.append(TargetCheck(label, measured, passed))
    return checks


def footnotes(report: Report) -> list[str]:
    settings, results = report.settings, report.results
    notes = [
        f"{settings.duration:g} s of publishing per run (~{len(message_body(0))}-byte bodies); "
        "pub/s = acknowledged publishes per second; deliv/s = deliveries per second from the "
        "first publish to the last arrival (10 queue subscriptions: 10 per publish).",
        "latency = arrival − publish request sent (queue: when a long-polling batch receive "
        "returned it; HTTP: when the receiver got the push). paced: an open-loop publisher "
        f"over {PACED_PUBLISHERS} connections at half the best sustained rate of that backend.",
        "tidings/moto: ratio of sustained publish rates (the lower of published and "
        "delivered per subscription); paced rows (labelled with the tidings | moto rates): "
        "moto p99 / tidings p99.",
        "Tidings: SIMPLIFIED subscriptions, batch receive of 16. moto: RawMessageDelivery "
        "SQS subscriptions, batch receive of 10; moto delivers inside the Publish call, so its "
        "publish rate already includes the fan-out.",
        f"consumers and the HTTP receiver run in a separate process; this machine has "
        f"{os.cpu_count()} CPUs shared by server, publisher and sink (1-minute load average "
        f"{LOAD_AT_START:.2f} before the run: other work on the machine skews the figures).",
    ]
    for backend in report.backends:
        runs = [r for r in results if r.backend == backend and not r.skipped]
        if runs:
            notes.append(
                f"{backend}: CPU per second of run, at most: server "
                f"{max(r.server_cpu for r in runs):.0%}, publisher "
                f"{max(r.client_cpu for r in runs):.0%}, sink {max(r.sink_cpu for r in runs):.0%}"
                " (100% = one core)."
            )
    for r in results:
        where = f"{r.backend} {r.scenario} {r.mode}"
        if r.missing:
            notes.append(
                f"? {where}: {r.missing:,} of {r.expected:,} deliveries had not arrived when the "
                "run stopped waiting (latencies cover only those that did)."
            )
        if r.errors:
            notes.append(f"! {where}: {r.errors} failed request(s); first: {r.first_error}")
        if r.duplicates or r.unknown:
            notes.append(f"{where}: {r.duplicates} duplicate and {r.unknown} unexpected arrivals.")
    notes.extend(report.failures)
    return notes


def render(report: Report) -> None:
    """Print the per-scenario tables, the target checks and the footnotes."""
    sections = [
        Section(s.label, TABLE_HEADER, scenario_rows(report, s)) for s in selected(report.settings)
    ]
    width = None if sys.stdout.isatty() else 150
    print_report(sections, check_targets(report.results), footnotes(report), width=width)


def write_json(path: Path, report: Report) -> None:
    document: dict[str, Any] = {
        "settings": dataclasses.asdict(report.settings),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "backends": list(report.backends),
        "results": [
            {
                **dataclasses.asdict(r),
                "publish_rate": round(r.publish_rate, 1),
                "delivery_rate": round(r.delivery_rate, 1),
                "missing": r.missing,
            }
            for r in report.results
        ],
        "targets": [dataclasses.asdict(check) for check in check_targets(report.results)],
        "failures": list(report.failures),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# --------------------------------------------------------------------------- entry point

ServerFactory = Callable[[], contextlib.AbstractAsyncContextManager[tuple[str, int]]]
BACKENDS: dict[str, tuple[ServerFactory, Callable[[str], Backend]]] = {
    "tidings": (tidings_server, TidingsBackend),
    "moto": (moto_server, MotoBackend),
}


async def bench_backend(name: str, settings: Settings, sink: Sink, results: list[Result]) -> None:
    server, make = BACKENDS[name]
    async with server() as (base_url, pid):
        await ScenarioRunner(make(base_url), sink, pid, settings, results).run()


async def run_all(settings: Settings, backends: Sequence[str]) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    failures: list[str] = []
    sink = Sink()
    await sink.start()
    try:
        for backend in backends:
            progress(f"starting {backend}")
            try:
                await bench_backend(backend, settings, sink, results)
            except (RuntimeError, UnexpectedResponseError, aiohttp.ClientError, OSError) as error:
                failures.append(f"{backend} aborted: {error}")
                progress(failures[-1])
    finally:
        await sink.stop()
    return results, failures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s runs (about a minute)")
    parser.add_argument("--duration", type=float, help="seconds per run (overrides the mode)")
    parser.add_argument(
        "--backend", choices=("both", "tidings", "moto"), default="both", help="what to measure"
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="run only this scenario (repeatable; default: all)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.duration:
        settings = dataclasses.replace(settings, duration=args.duration)
    if args.scenario:
        settings = dataclasses.replace(settings, scenarios=tuple(args.scenario))
    backends = ("tidings", "moto") if args.backend == "both" else (args.backend,)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        results, failures = runner.run(run_all(settings, backends))
    report = Report(settings, backends, results, failures)
    render(report)
    progress("done")
    if args.output:
        write_json(args.output, report)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
