#!/usr/bin/env python3
"""Queue throughput benchmark: Tidings (MNS protocol) against moto (SQS emulator).

Starts each server as a subprocess on free local ports, one after the other so they never
compete for CPU, drives it with lean aiohttp clients (one session and one keep-alive
connection per simulated client) and prints messages per second for four scenarios:

1. SendMessage (one ~100-byte Base64 body per request)
2. ReceiveMessage + DeleteMessage (one message per request pair)
3. BatchSendMessage (16 messages per request; 10 for SQS, its maximum)
4. batch ReceiveMessage + BatchDeleteMessage (16 per request; 10 for SQS)

each with 1 and 8 concurrent clients, on a fresh queue ("depth 0") and on a queue kept
at a large backlog ("deep": 200,000 messages for Tidings; far fewer for moto, which scans
the whole queue on every call), then checks Tidings against the project's targets.

Usage::

    python bench/queues.py [--quick] [--output results.json]

A full run takes about 4 minutes (never much more than 6), ``--quick`` about 70 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import email.utils
import hashlib
import hmac
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import yarl

ACCESS_KEY_ID = "bench"
ACCESS_KEY_SECRET = "bench-secret"

MNS_VERSION = "2015-06-06"
MNS_NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
MNS_CONTENT_TYPE = "text/xml;charset=UTF-8"
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
MNS_BATCH = 16

SQS_VERSION = "2012-11-05"
SQS_ACCOUNT = "123456789012"
SQS_BATCH = 10
# moto routes a request to its SQS emulator by the credential scope; it does not verify
# the signature, so a constant header is enough.
SQS_HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "Content-Type": "application/x-www-form-urlencoded",
}

MESSAGE_BODY = base64.b64encode(bytes(range(75))).decode()  # 100 characters
CLIENT_COUNTS = (1, 8)
PREFILL_CLIENTS = 8
RECEIVE_WAIT_SECONDS = 1
STARTUP_TIMEOUT = 30.0
MAX_CONSECUTIVE_ERRORS = 50
# Receive scenarios are prefilled with this multiple of what the matching send scenario
# managed in the same time, so they rarely drain their queue.
PREFILL_HEADROOM = 1.3
FALLBACK_FEED_RATE = 2_000.0  # msg/s assumed when the feeding send run was not measured

RECEIPT_HANDLE_RE = re.compile(r"<ReceiptHandle>([^<]+)</ReceiptHandle>")
LISTENING_RE = re.compile(r"mns listening on (https?://\S+)")
SQS_DELETED_ENTRY = "<DeleteMessageBatchResultEntry>"
SQS_FAILED_ENTRY = "<BatchResultErrorEntry>"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Knobs that differ between the full and the quick run."""

    duration: float
    tidings_depth: int
    moto_depth: int
    prefill_limit: float  # seconds any single prefill may take
    backend_budget: float  # seconds one backend may take before remaining runs are skipped


FULL = Settings(
    duration=5.0, tidings_depth=200_000, moto_depth=1_000, prefill_limit=60.0, backend_budget=170.0
)
QUICK = Settings(
    duration=1.5, tidings_depth=20_000, moto_depth=500, prefill_limit=15.0, backend_budget=45.0
)


class QueueEmptyError(Exception):
    """A receive found no message within its wait time."""


class UnexpectedResponseError(Exception):
    """The server answered a request with an unexpected status or body."""


PROGRAM_START = time.perf_counter()


def progress(message: str) -> None:
    """Report progress on stderr, stamped with the seconds since the program started."""
    print(f"[{time.perf_counter() - PROGRAM_START:6.1f}s] {message}", file=sys.stderr, flush=True)


def describe(verb: str, target: str, status: int, body: bytes) -> str:
    """Return a one-line description of a failed request for error reports."""
    text = body[:300].decode("utf-8", "replace").replace("\n", " ")
    return f"{verb} {target} -> HTTP {status}: {text}"


# --------------------------------------------------------------------------- MNS client


def mns_content_md5(body: bytes) -> str:
    """Content-MD5 the way the MNS SDK computes it: Base64 of the lower-case hex digest."""
    return base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()


def mns_signature(secret: str, verb: str, content_md5: str, date: str, target: str) -> str:
    """Sign a request carrying only the ``x-mns-version`` header (spec section 3.2-3.3)."""
    content_type = MNS_CONTENT_TYPE if content_md5 else ""
    string_to_sign = (
        f"{verb}\n{content_md5}\n{content_type}\n{date}\nx-mns-version:{MNS_VERSION}\n{target}"
    )
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class MnsSigner:
    """Builds signed MNS headers; the Date string and fixed requests are cached per second."""

    def __init__(self, key_id: str, secret: str) -> None:
        self._key_id = key_id
        self._secret = secret
        self._second = -1
        self._date = ""
        self._cache: dict[tuple[str, str, str], dict[str, str]] = {}

    def _current_date(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._date = email.utils.formatdate(second, usegmt=True)
            self._cache.clear()
        return self._date

    def headers(
        self, verb: str, target: str, content_md5: str = "", *, cacheable: bool = True
    ) -> dict[str, str]:
        """Return the headers for a request; ``content_md5`` is empty for bodiless ones."""
        date = self._current_date()
        key = (verb, target, content_md5)
        if cacheable and (cached := self._cache.get(key)) is not None:
            return cached
        signature = mns_signature(self._secret, verb, content_md5, date, target)
        headers = {
            "date": date,
            "x-mns-version": MNS_VERSION,
            "Authorization": f"MNS {self._key_id}:{signature}",
        }
        if content_md5:
            headers["content-md5"] = content_md5
            headers["content-type"] = MNS_CONTENT_TYPE
        if cacheable:
            self._cache[key] = headers
        return headers


@dataclasses.dataclass(frozen=True)
class XmlBody:
    """A request body with its precomputed MNS Content-MD5."""

    data: bytes
    md5: str

    @classmethod
    def of(cls, xml: str) -> XmlBody:
        """Encode ``xml`` (without declaration) as an MNS request body."""
        data = (XML_DECLARATION + xml).encode()
        return cls(data, mns_content_md5(data))


MESSAGE_BODY_XML = f"<MessageBody>{MESSAGE_BODY}</MessageBody>"


def mns_receipt_handles_body(handles: Sequence[str]) -> XmlBody:
    """BatchDeleteMessage body for ``handles``."""
    items = "".join(f"<ReceiptHandle>{handle}</ReceiptHandle>" for handle in handles)
    return XmlBody.of(f'<ReceiptHandles xmlns="{MNS_NAMESPACE}">{items}</ReceiptHandles>')


class MnsClient:
    """Queue operations over the MNS HTTP/XML protocol, signed with signature version 1."""

    name = "tidings"
    batch_size = MNS_BATCH

    def __init__(self, base_url: str, signer: MnsSigner) -> None:
        self._base = base_url.rstrip("/")
        self._signer = signer
        self._empty_queue = XmlBody.of(f'<Queue xmlns="{MNS_NAMESPACE}"></Queue>')
        self._single = XmlBody.of(f'<Message xmlns="{MNS_NAMESPACE}">{MESSAGE_BODY_XML}</Message>')
        entries = f"<Message>{MESSAGE_BODY_XML}</Message>" * MNS_BATCH
        self._batch = XmlBody.of(f'<Messages xmlns="{MNS_NAMESPACE}">{entries}</Messages>')

    async def _call(
        self,
        session: aiohttp.ClientSession,
        verb: str,
        target: str,
        body: XmlBody | None = None,
        *,
        cacheable: bool = True,
    ) -> tuple[int, bytes]:
        headers = self._signer.headers(verb, target, body.md5 if body else "", cacheable=cacheable)
        url = yarl.URL(self._base + target, encoded=True)
        data = body.data if body else None
        async with session.request(verb, url, data=data, headers=headers) as response:
            return response.status, await response.read()

    async def _expect(
        self,
        session: aiohttp.ClientSession,
        verb: str,
        target: str,
        expected: tuple[int, ...],
        body: XmlBody | None = None,
        *,
        cacheable: bool = True,
    ) -> None:
        status, payload = await self._call(session, verb, target, body, cacheable=cacheable)
        if status not in expected:
            raise UnexpectedResponseError(describe(verb, target, status, payload))

    async def _receive(self, session: aiohttp.ClientSession, target: str) -> list[str]:
        status, payload = await self._call(session, "GET", target)
        if status == 404 and b"<Code>MessageNotExist</Code>" in payload:
            raise QueueEmptyError
        if status != 200:
            raise UnexpectedResponseError(describe("GET", target, status, payload))
        handles = RECEIPT_HANDLE_RE.findall(payload.decode())
        if not handles:
            raise UnexpectedResponseError(describe("GET", target, status, payload))
        return handles

    async def create_queue(self, session: aiohttp.ClientSession, queue: str) -> None:
        """CreateQueue with default attributes (201, or 204 if it already exists)."""
        await self._expect(session, "PUT", f"/queues/{queue}", (201, 204), self._empty_queue)

    async def delete_queue(self, session: aiohttp.ClientSession, queue: str) -> None:
        """DeleteQueue."""
        await self._expect(session, "DELETE", f"/queues/{queue}", (204,))

    async def send(self, session: aiohttp.ClientSession, queue: str) -> int:
        """SendMessage; returns the number of messages sent."""
        await self._expect(session, "POST", f"/queues/{queue}/messages", (201,), self._single)
        return 1

    async def send_batch(self, session: aiohttp.ClientSession, queue: str) -> int:
        """BatchSendMessage of a full batch; returns the number of messages sent."""
        await self._expect(session, "POST", f"/queues/{queue}/messages", (201,), self._batch)
        return MNS_BATCH

    async def receive_delete(self, session: aiohttp.ClientSession, queue: str) -> int:
        """ReceiveMessage then DeleteMessage; returns the number of messages consumed."""
        receive = f"/queues/{queue}/messages?waitseconds={RECEIVE_WAIT_SECONDS}"
        handles = await self._receive(session, receive)
        delete = f"/queues/{queue}/messages?ReceiptHandle={handles[0]}"
        await self._expect(session, "DELETE", delete, (204,), cacheable=False)
        return 1

    async def batch_receive_delete(self, session: aiohttp.ClientSession, queue: str) -> int:
        """BatchReceiveMessage then BatchDeleteMessage; returns the messages consumed."""
        handles = await self._receive(
            session,
            f"/queues/{queue}/messages?numOfMessages={MNS_BATCH}"
            f"&waitseconds={RECEIVE_WAIT_SECONDS}",
        )
        body = mns_receipt_handles_body(handles)
        target = f"/queues/{queue}/messages"
        await self._expect(session, "DELETE", target, (204,), body, cacheable=False)
        return len(handles)


# --------------------------------------------------------------------------- SQS client


def sqs_form(action: str, **params: str | int) -> bytes:
    """Encode an SQS query-API request body."""
    return urlencode({"Action": action, "Version": SQS_VERSION, **params}).encode()


class SqsClient:
    """The same queue operations over the SQS query API, as emulated by moto."""

    name = "moto"
    batch_size = SQS_BATCH

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._send = sqs_form("SendMessage", MessageBody=MESSAGE_BODY)
        entries: dict[str, str] = {}
        for index in range(1, SQS_BATCH + 1):
            entries[f"SendMessageBatchRequestEntry.{index}.Id"] = f"m{index}"
            entries[f"SendMessageBatchRequestEntry.{index}.MessageBody"] = MESSAGE_BODY
        self._send_batch = sqs_form("SendMessageBatch", **entries)
        self._receive_one = sqs_form(
            "ReceiveMessage", MaxNumberOfMessages=1, WaitTimeSeconds=RECEIVE_WAIT_SECONDS
        )
        self._receive_batch = sqs_form(
            "ReceiveMessage", MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=RECEIVE_WAIT_SECONDS
        )

    def _queue_url(self, queue: str) -> str:
        return f"{self._base}/{SQS_ACCOUNT}/{queue}"

    async def _post(self, session: aiohttp.ClientSession, url: str, body: bytes) -> str:
        async with session.post(
            yarl.URL(url, encoded=True), data=body, headers=SQS_HEADERS
        ) as response:
            payload = await response.read()
            if response.status != 200:
                raise UnexpectedResponseError(
                    describe("POST", f"{url} {body[:60].decode()}", response.status, payload)
                )
            return payload.decode()

    async def _receive(self, session: aiohttp.ClientSession, queue: str, body: bytes) -> list[str]:
        handles = RECEIPT_HANDLE_RE.findall(await self._post(session, self._queue_url(queue), body))
        if not handles:
            raise QueueEmptyError
        return handles

    async def create_queue(self, session: aiohttp.ClientSession, queue: str) -> None:
        """CreateQueue with default attributes."""
        await self._post(session, self._base + "/", sqs_form("CreateQueue", QueueName=queue))

    async def delete_queue(self, session: aiohttp.ClientSession, queue: str) -> None:
        """DeleteQueue."""
        await self._post(session, self._queue_url(queue), sqs_form("DeleteQueue"))

    async def send(self, session: aiohttp.ClientSession, queue: str) -> int:
        """SendMessage; returns the number of messages sent."""
        await self._post(session, self._queue_url(queue), self._send)
        return 1

    async def send_batch(self, session: aiohttp.ClientSession, queue: str) -> int:
        """SendMessageBatch of a full batch; returns the number of messages sent."""
        await self._post(session, self._queue_url(queue), self._send_batch)
        return SQS_BATCH

    async def receive_delete(self, session: aiohttp.ClientSession, queue: str) -> int:
        """ReceiveMessage then DeleteMessage; returns the number of messages consumed."""
        handles = await self._receive(session, queue, self._receive_one)
        body = sqs_form("DeleteMessage", ReceiptHandle=handles[0])
        await self._post(session, self._queue_url(queue), body)
        return 1

    async def batch_receive_delete(self, session: aiohttp.ClientSession, queue: str) -> int:
        """ReceiveMessage (10) then DeleteMessageBatch; returns the messages consumed."""
        handles = await self._receive(session, queue, self._receive_batch)
        parts = [f"Action=DeleteMessageBatch&Version={SQS_VERSION}"]
        for index, handle in enumerate(handles, 1):
            prefix = f"DeleteMessageBatchRequestEntry.{index}"
            parts.append(f"{prefix}.Id=m{index}&{prefix}.ReceiptHandle={quote(handle, safe='')}")
        url = self._queue_url(queue)
        payload = await self._post(session, url, "&".join(parts).encode())
        if SQS_FAILED_ENTRY in payload:
            error = describe("POST", f"{url} DeleteMessageBatch", 200, payload.encode())
            raise UnexpectedResponseError(error)
        return payload.count(SQS_DELETED_ENTRY)


# --------------------------------------------------------------------------- scenarios

QueueOp = Callable[[aiohttp.ClientSession, str], Awaitable[int]]


class QueueClient(Protocol):
    """What a benchmark backend offers; implemented by :class:`MnsClient` and :class:`SqsClient`."""

    name: str
    batch_size: int

    async def create_queue(self, session: aiohttp.ClientSession, queue: str) -> None: ...
    async def delete_queue(self, session: aiohttp.ClientSession, queue: str) -> None: ...
    async def send(self, session: aiohttp.ClientSession, queue: str) -> int: ...
    async def send_batch(self, session: aiohttp.ClientSession, queue: str) -> int: ...
    async def receive_delete(self, session: aiohttp.ClientSession, queue: str) -> int: ...
    async def batch_receive_delete(self, session: aiohttp.ClientSession, queue: str) -> int: ...


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One measured operation mix."""

    key: str
    label: str
    operation: Callable[[QueueClient], QueueOp]
    target: int  # msg/s Tidings should reach with 8 clients at depth 0
    feeder: str | None = None  # send scenario whose measured rate sizes this one's prefill


SCENARIOS = (
    Scenario("send", "SendMessage", lambda client: client.send, 3_000),
    Scenario(
        "receive", "receive+delete", lambda client: client.receive_delete, 1_500, feeder="send"
    ),
    Scenario("batch-send", "BatchSendMessage", lambda client: client.send_batch, 20_000),
    Scenario(
        "batch-receive",
        "batch receive+delete",
        lambda client: client.batch_receive_delete,
        20_000,
        feeder="batch-send",
    ),
)
DEPTH_RATIO_TARGET = 0.9


@dataclasses.dataclass
class RunStats:
    """Counters shared by the clients of one measured run."""

    messages: int = 0
    errors: int = 0
    first_error: str = ""
    drained: bool = False
    last_ok: float = 0.0  # perf_counter() of the last successful operation
    elapsed: float = 0.0  # seconds the measurement covers
    client_cpu: float = 0.0  # CPU seconds this process used per second of the run

    def record_error(self, error: BaseException) -> None:
        """Count a failed operation, keeping the first one's description."""
        self.errors += 1
        if not self.first_error:
            self.first_error = str(error) or type(error).__name__


@dataclasses.dataclass
class Result:
    """Outcome of one (backend, scenario, clients, depth) run."""

    backend: str
    scenario: str
    clients: int
    deep: bool
    depth: int  # messages in the queue when the run started
    messages: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""
    drained: bool = False
    skipped: bool = False
    client_cpu: float = 0.0  # benchmark-process CPU seconds per second of the run

    @property
    def rate(self) -> float:
        """Messages per second (0 when nothing was measured)."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def new_session() -> aiohttp.ClientSession:
    """A client session with exactly one keep-alive connection."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        auto_decompress=False,
    )


@contextlib.asynccontextmanager
async def sessions(count: int) -> AsyncIterator[list[aiohttp.ClientSession]]:
    """``count`` independent client sessions, closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(new_session()) for _ in range(count)]


async def client_loop(
    op: QueueOp, session: aiohttp.ClientSession, queue: str, deadline: float, stats: RunStats
) -> None:
    """Repeat ``op`` until the deadline, the queue drains, or the server keeps failing."""
    consecutive_errors = 0
    while not stats.drained and time.perf_counter() < deadline:
        try:
            count = await op(session, queue)
        except QueueEmptyError:
            stats.drained = True
            return
        except (UnexpectedResponseError, aiohttp.ClientError, TimeoutError) as error:
            stats.record_error(error)
            consecutive_errors += 1
            if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                return
            continue
        consecutive_errors = 0
        stats.messages += count
        stats.last_ok = time.perf_counter()


async def measure(op: QueueOp, queue: str, clients: int, duration: float) -> RunStats:
    """Run ``clients`` concurrent loops of ``op`` for ``duration`` seconds.

    A drained run is timed up to its last successful operation.
    """
    stats = RunStats()
    async with sessions(clients) as pool:
        cpu_started = time.process_time()
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(client_loop(op, s, queue, deadline, stats) for s in pool))
        finished = time.perf_counter()
        stats.client_cpu = (time.process_time() - cpu_started) / (finished - started)
    end = stats.last_ok if stats.drained and stats.last_ok else finished
    stats.elapsed = max(end - started, 0.0)
    return stats


async def prefill(client: QueueClient, queue: str, count: int, time_limit: float) -> int:
    """Batch-send at least ``count`` messages (whole batches) within ``time_limit`` seconds.

    Returns the number of messages actually sent.
    """
    batches = math.ceil(count / client.batch_size)
    deadline = time.perf_counter() + time_limit
    sent = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal batches, sent
        while batches > 0 and time.perf_counter() < deadline:
            batches -= 1
            added = await client.send_batch(session, queue)
            sent += added

    async with sessions(PREFILL_CLIENTS) as pool:
        await asyncio.gather(*(worker(session) for session in pool))
    return sent


# --------------------------------------------------------------------------- orchestration


@dataclasses.dataclass
class DeepQueue:
    """The shared backlog queue and an estimate of how many messages it holds."""

    name: str
    target: int
    depth: int = 0


class BackendBench:
    """Runs every scenario against one backend."""

    def __init__(
        self, client: QueueClient, settings: Settings, deep_target: int, results: list[Result]
    ) -> None:
        self.client = client
        self.settings = settings
        self.deep = DeepQueue(f"bench-deep-{client.name}", deep_target)
        self.results = results  # shared, so partial results survive a failure
        self._deadline = time.perf_counter() + settings.backend_budget

    def _expected_consumption(self, scenario: Scenario, clients: int, deep: bool) -> int:
        """How many messages a receive run may consume, from its feeder's send rate."""
        if scenario.feeder is None:
            return 0
        feeder = find(self.results, self.client.name, scenario.feeder, clients, deep)
        rate = feeder.rate if feeder and feeder.messages else FALLBACK_FEED_RATE
        return (
            int(rate * self.settings.duration * PREFILL_HEADROOM) + clients * self.client.batch_size
        )

    async def _prefill(self, queue: str, count: int) -> int:
        """Prefill within the prefill limit, leaving time for at least one more run."""
        spare = self._deadline - time.perf_counter() - self.settings.duration
        return await prefill(self.client, queue, count, min(self.settings.prefill_limit, spare))

    async def _admin(self, action: Callable[[aiohttp.ClientSession], Awaitable[None]]) -> None:
        async with new_session() as session:
            await action(session)

    async def run(self) -> None:
        """Prefill the deep queue, then measure every scenario, client count and depth."""
        await self._admin(lambda s: self.client.create_queue(s, self.deep.name))
        progress(f"{self.client.name}: prefilling {self.deep.target:,} messages")
        self.deep.depth = await self._prefill(self.deep.name, self.deep.target)
        for scenario in SCENARIOS:
            for clients in CLIENT_COUNTS:
                for deep in (False, True):
                    progress(
                        f"{self.client.name}: {scenario.label}, {clients} client(s), "
                        f"{'deep' if deep else 'depth 0'}"
                    )
                    self.results.append(await self._run_one(scenario, clients, deep))
        await self._admin(lambda s: self.client.delete_queue(s, self.deep.name))

    async def _run_one(self, scenario: Scenario, clients: int, deep: bool) -> Result:
        remaining = self._deadline - time.perf_counter()
        if remaining < self.settings.duration:
            return Result(self.client.name, scenario.key, clients, deep, 0, skipped=True)
        if deep:
            return await self._run_deep(scenario, clients)
        return await self._run_fresh(scenario, clients)

    async def _run_fresh(self, scenario: Scenario, clients: int) -> Result:
        queue = f"bench-{scenario.key}-{clients}-{self.client.name}"
        await self._admin(lambda s: self.client.create_queue(s, queue))
        depth = 0
        if scenario.feeder is not None:
            need = self._expected_consumption(scenario, clients, deep=False)
            depth = await self._prefill(queue, need)
        result = await self._measure(scenario, queue, clients, depth, deep=False)
        await self._admin(lambda s: self.client.delete_queue(s, queue))
        return result

    async def _run_deep(self, scenario: Scenario, clients: int) -> Result:
        need = self.deep.target + self._expected_consumption(scenario, clients, deep=True)
        if self.deep.depth < need:
            self.deep.depth += await self._prefill(self.deep.name, need - self.deep.depth)
        result = await self._measure(scenario, self.deep.name, clients, self.deep.depth, deep=True)
        self.deep.depth += -result.messages if scenario.feeder else result.messages
        return result

    async def _measure(
        self, scenario: Scenario, queue: str, clients: int, depth: int, *, deep: bool
    ) -> Result:
        op = scenario.operation(self.client)
        stats = await measure(op, queue, clients, self.settings.duration)
        return Result(
            backend=self.client.name,
            scenario=scenario.key,
            clients=clients,
            deep=deep,
            depth=depth,
            messages=stats.messages,
            seconds=stats.elapsed,
            errors=stats.errors,
            first_error=stats.first_error,
            drained=stats.drained,
            client_cpu=stats.client_cpu,
        )


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, timeout: float, *, require_ok: bool) -> None:
    """Poll ``url`` until it answers (with 200 if ``require_ok``) or ``timeout`` passes."""
    deadline = time.perf_counter() + timeout
    async with new_session() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    await response.read()
                    if response.status == 200 or not require_ok:
                        return
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process, escalating to SIGKILL after 10 seconds."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def read_until_listening(
    stream: asyncio.StreamReader, output: collections.deque[str], timeout: float
) -> str:
    """Read server output until the MNS listening line; return the announced base URL."""
    deadline = time.perf_counter() + timeout
    problem = f"did not report its MNS port within {timeout:.0f} s"
    while (remaining := deadline - time.perf_counter()) > 0:
        try:
            line = await asyncio.wait_for(stream.readline(), remaining)
        except TimeoutError:
            break
        if not line:
            problem = "exited before reporting its MNS port"
            break
        text = line.decode("utf-8", "replace").rstrip()
        output.append(text)
        if match := LISTENING_RE.search(text):
            return match.group(1).rstrip("/")
    tail = "\n".join(output)
    raise RuntimeError(f"tidings {problem}; its last output:\n{tail}")


async def drain(stream: asyncio.StreamReader, output: collections.deque[str]) -> None:
    """Keep reading server output so its pipe never fills, remembering the last lines."""
    while line := await stream.readline():
        output.append(line.decode("utf-8", "replace").rstrip())


def tidings_command(data_dir: str) -> list[str]:
    """The command line that serves Tidings on ephemeral ports.

    `TIDINGS_BENCH_SERVE_ARGS` adds flags, to compare settings in the same harness
    (e.g. `--synchronous NORMAL`).
    """
    executable = shutil.which("tidings")
    prefix = [executable] if executable else [sys.executable, "-m", "tidings"]
    return [
        *prefix,
        "serve",
        "--data-dir",
        data_dir,
        "--mns-port",
        "0",
        "--oss-port",
        "0",
        "--console-port",
        "0",
        "--host",
        "127.0.0.1",
        *shlex.split(os.environ.get("TIDINGS_BENCH_SERVE_ARGS", "")),
    ]


@contextlib.asynccontextmanager
async def tidings_server() -> AsyncIterator[str]:
    """Run ``tidings serve`` on a scratch data directory; yield its MNS base URL."""
    env = {
        **os.environ,
        "TIDINGS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "TIDINGS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
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
            reader = asyncio.create_task(drain(process.stdout, output))
            await wait_until_up(base_url + "/health", STARTUP_TIMEOUT, require_ok=True)
            yield base_url
        finally:
            await stop_process(process)
            if reader is not None:
                await reader


def moto_command(port: int) -> list[str]:
    """The command line that serves moto on ``port``."""
    executable = shutil.which("moto_server")
    prefix = [executable] if executable else [sys.executable, "-m", "moto.server"]
    return [*prefix, "-H", "127.0.0.1", "-p", str(port)]


@contextlib.asynccontextmanager
async def moto_server() -> AsyncIterator[str]:
    """Run moto's server on a free port; yield its base URL."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *moto_command(port), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_until_up(base_url + "/moto-api/", STARTUP_TIMEOUT, require_ok=False)
            yield base_url
        finally:
            await stop_process(process)


# --------------------------------------------------------------------------- reporting


def thousands(count: int) -> str:
    """Compact message count: 200000 -> '200k'."""
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else f"{count:,}"


def rate_cell(result: Result | None) -> str:
    """Table cell for one run, with markers for drained (*) and failing (!) runs."""
    if result is None:
        return "-"
    if result.skipped:
        return "skipped"
    marks = ("*" if result.drained else "") + ("!" if result.errors else "")
    return f"{result.rate:,.0f}{marks}"


def ratio_cell(numerator: Result | None, denominator: Result | None) -> str:
    """``numerator.rate / denominator.rate`` formatted, or '-' when undefined."""
    if numerator is None or denominator is None or not denominator.rate or numerator.skipped:
        return "-"
    return f"{numerator.rate / denominator.rate:.2f}"


def find(
    results: Sequence[Result], backend: str, scenario: str, clients: int, deep: bool
) -> Result | None:
    """The result of one run, if it exists."""
    for result in results:
        key = (result.backend, result.scenario, result.clients, result.deep)
        if key == (backend, scenario, clients, deep):
            return result
    return None


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything the output needs."""

    settings: Settings
    backends: Sequence[str]
    results: Sequence[Result]
    failures: Sequence[str]


TABLE_HEADER = ("clients", "depth", "tidings msg/s", "moto msg/s", "tidings/moto", "tidings deep/0")


def scenario_rows(report: Report, scenario: Scenario) -> list[list[str]]:
    """Rows of one scenario's table."""
    rows = []
    for clients in CLIENT_COUNTS:
        for deep in (False, True):
            tidings = find(report.results, "tidings", scenario.key, clients, deep)
            moto = find(report.results, "moto", scenario.key, clients, deep)
            shallow = find(report.results, "tidings", scenario.key, clients, False)
            rows.append(
                [
                    str(clients),
                    thousands(report.settings.tidings_depth) if deep else "0",
                    rate_cell(tidings),
                    rate_cell(moto),
                    ratio_cell(tidings, moto),
                    ratio_cell(tidings, shallow) if deep else "",
                ]
            )
    return rows


@dataclasses.dataclass(frozen=True)
class TargetCheck:
    """One performance target and whether the measurements meet it."""

    label: str
    measured: str
    passed: bool | None  # None: not measured


def check_targets(results: Sequence[Result]) -> list[TargetCheck]:
    """Compare Tidings' figures with the targets (8 clients; depth ratio for all counts)."""
    clients = max(CLIENT_COUNTS)
    checks = []
    for scenario in SCENARIOS:
        label = f"{scenario.label} ≥ {scenario.target:,} msg/s ({clients} clients, depth 0)"
        result = find(results, "tidings", scenario.key, clients, False)
        if result is None or result.skipped:
            checks.append(TargetCheck(label, "not measured", None))
        else:
            rate = result.rate
            checks.append(TargetCheck(label, f"{rate:,.0f} msg/s", rate >= scenario.target))
    checks.extend(depth_check(results, scenario) for scenario in SCENARIOS)
    return checks


def depth_check(results: Sequence[Result], scenario: Scenario) -> TargetCheck:
    """Whether Tidings' deep-queue rate stays within 10% of its depth-0 rate."""
    label = f"{scenario.label}: deep within {1 - DEPTH_RATIO_TARGET:.0%} of depth 0"
    ratios = []
    for clients in CLIENT_COUNTS:
        deep = find(results, "tidings", scenario.key, clients, True)
        shallow = find(results, "tidings", scenario.key, clients, False)
        if deep and shallow and shallow.rate and not deep.skipped:
            ratios.append((clients, deep.rate / shallow.rate))
    if not ratios:
        return TargetCheck(label, "not measured", None)
    measured = ", ".join(f"{ratio:.2f} ({clients} cl.)" for clients, ratio in ratios)
    return TargetCheck(label, measured, all(r >= DEPTH_RATIO_TARGET for _, r in ratios))


def footnotes(report: Report) -> list[str]:
    """Explanations printed under the tables: method, markers, caveats and failures."""
    settings, results = report.settings, report.results
    notes = [
        f"{settings.duration:g} s per run; msg/s counts messages (a batch of 16 counts 16).",
        f"deep: Tidings queue kept at ≥{settings.tidings_depth:,} messages (topped up before "
        "receive runs); depth 0: a fresh queue holding only what the run consumes.",
        "tidings deep/0: Tidings deep-queue rate divided by its depth-0 rate.",
    ]
    if any(r.drained for r in results):
        notes.append("* the queue ran dry before the end; rate measured up to the last message.")
    if "moto" in report.backends:
        notes.append(
            f"moto: batches of {SQS_BATCH} (the SQS maximum) instead of 16; its deep queue "
            f"holds {settings.moto_depth:,} messages, not {settings.tidings_depth:,}: moto "
            "scans the whole queue on every call (sends included), so a deeper queue cannot "
            "be prefilled in the time available."
        )
    for backend in report.backends:
        loads = [r.client_cpu for r in results if r.backend == backend and not r.skipped]
        if loads:
            notes.append(
                f"benchmark client CPU while measuring {backend}: at most {max(loads):.0%} "
                f"of one core (of {os.cpu_count()})."
            )
    notes.extend(
        f"! {r.backend} {r.scenario}, {r.clients} cl., {'deep' if r.deep else 'depth 0'}: "
        f"{r.errors} failed request(s), not counted; first: {r.first_error}"
        for r in results
        if r.errors
    )
    notes.extend(report.failures)
    return notes


@dataclasses.dataclass(frozen=True)
class Section:
    """One printed table: a title, its header, its rows."""

    title: str
    header: Sequence[str]
    rows: list[list[str]]


def print_report(
    sections: Sequence[Section],
    checks: Sequence[Any],
    notes: Sequence[str],
    left_columns: int = 1,
    width: int | None = None,
) -> None:
    """Print tables, target checks (objects with passed, label, measured) and footnotes,
    with rich when it is installed, as plain text otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(sections, checks, notes)
        return
    console = Console(width=width)
    for section in sections:
        table = Table(title=section.title, title_justify="left")
        for index, column in enumerate(section.header):
            table.add_column(column, justify="left" if index < left_columns else "right")
        for row in section.rows:
            table.add_row(*row)
        console.print(table)
    marks = {True: "[green]PASS[/]", False: "[red]MISS[/]", None: "[yellow]n/a[/] "}
    console.print("[bold]Targets (Tidings)[/]")
    for check in checks:
        console.print(f"  {marks[check.passed]}  {check.label}: {check.measured}", soft_wrap=True)
    for note in notes:
        console.print(f"  {note}", style="dim", highlight=False, markup=False, soft_wrap=True)


def _print_plain(sections: Sequence[Section], checks: Sequence[Any], notes: Sequence[str]) -> None:
    for section in sections:
        rows = [list(section.header), *section.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(section.header))]
        print(f"\n{section.title}")
        for row in rows:
            print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    marks = {True: "PASS", False: "MISS", None: "n/a "}
    print("\nTargets (Tidings)")
    for check in checks:
        print(f"  {marks[check.passed]}  {check.label}: {check.measured}")
    print()
    for note in notes:
        print(f"  {note}")


def render(report: Report) -> None:
    """Print the per-scenario tables, the target checks and the footnotes."""
    sections = [Section(s.label, TABLE_HEADER, scenario_rows(report, s)) for s in SCENARIOS]
    print_report(sections, check_targets(report.results), footnotes(report), left_columns=2)


def write_json(path: Path, report: Report) -> None:
    """Write settings, every run, the target checks and any failures to ``path`` as JSON."""
    document: dict[str, Any] = {
        "settings": dataclasses.asdict(report.settings),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "batch_sizes": {"tidings": MNS_BATCH, "moto": SQS_BATCH},
        "backends": list(report.backends),
        "results": [{**dataclasses.asdict(r), "rate": round(r.rate, 1)} for r in report.results],
        "targets": [dataclasses.asdict(check) for check in check_targets(report.results)],
        "failures": list(report.failures),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# --------------------------------------------------------------------------- entry point


async def bench_tidings(settings: Settings, results: list[Result]) -> None:
    """Start Tidings, measure it into ``results``, stop it."""
    async with tidings_server() as base_url:
        client = MnsClient(base_url, MnsSigner(ACCESS_KEY_ID, ACCESS_KEY_SECRET))
        await BackendBench(client, settings, settings.tidings_depth, results).run()


async def bench_moto(settings: Settings, results: list[Result]) -> None:
    """Start moto, measure it into ``results``, stop it."""
    async with moto_server() as base_url:
        await BackendBench(SqsClient(base_url), settings, settings.moto_depth, results).run()


async def run_all(settings: Settings, backends: Sequence[str]) -> tuple[list[Result], list[str]]:
    """Benchmark the selected backends one after the other.

    Returns the results and the failures that cut a backend's measurements short.
    """
    runners = {"tidings": bench_tidings, "moto": bench_moto}
    results: list[Result] = []
    failures: list[str] = []
    for backend in backends:
        progress(f"starting {backend}")
        try:
            await runners[backend](settings, results)
        except (RuntimeError, UnexpectedResponseError, aiohttp.ClientError, OSError) as error:
            failures.append(f"{backend} aborted: {error}")
            progress(failures[-1])
    return results, failures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s runs, 20k-deep queue")
    parser.add_argument("--duration", type=float, help="seconds per run (overrides the mode)")
    parser.add_argument(
        "--backend", choices=("both", "tidings", "moto"), default="both", help="what to measure"
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    return parser.parse_args(argv)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (lower client CPU), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the results."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.duration:
        settings = dataclasses.replace(settings, duration=args.duration)
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
