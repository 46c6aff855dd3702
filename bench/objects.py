#!/usr/bin/env python3
"""Object store benchmark: Tidings (OSS API) against moto (S3 emulator) and the raw disk.

Measures, in one run and on one filesystem:

1. the raw disk: a file written with fsync, then read back with its page cache dropped
   (the physical limit the large transfers are compared with);
2. PUT and GET of 1 KiB objects with 1 and 8 clients (ops/s, p50/p99 latency), twice:
   with the official SDKs (`oss2` for Tidings, `boto3` for moto; one process per client,
   because a synchronous SDK spends 1-2 ms of CPU per request and shares one GIL per
   process) and with lean aiohttp clients (what the servers can do when the client costs
   little; the same client code for both servers);
3. PUT and GET of 64 MiB objects (MB/s, one stream; SDK and lean client), GET both with
   the object's page cache dropped (disk-bound) and warm (the server's streaming ceiling);
4. a 1 GiB multipart upload with the SDK (8 MiB parts, 4 threads) and its single-stream
   download (SDK and lean client).

Each server runs as a subprocess, one after the other so they never share the CPU: first
`tidings serve` with its defaults (every write fsynced), then moto's server. Both SDKs run
with their default checksums (oss2 CRC-64, boto3 CRC32). Downloads from Tidings are
checked against the CRC-64 it reports (by oss2, and by the lean client with fastcrc),
boto3 validates what moto returns, and every download's size is checked.

Usage::

    python bench/objects.py [--quick] [--backend both|tidings|moto] [--scenario NAME ...]
                            [--dir DIR] [--output results.json]

`TIDINGS_BENCH_SERVE_ARGS` adds flags to `tidings serve` (e.g. `--synchronous normal`).
A full run takes about 3 minutes and needs 6 GiB free where the data goes (`--dir`,
default: the system temp directory); `--quick` (smaller sizes, 1.5 s runs) takes about a
minute and needs 1.5 GiB. The scenarios that move large files are refused, with a
message, when there is less; the data directories are removed at the end.
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
import multiprocessing
import multiprocessing.pool
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import yarl
from fastcrc import crc64 as fastcrc64
from queues import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    LISTENING_RE,
    Section,
    drain,
    event_loop_factory,
    free_port,
    moto_command,
    print_report,
    progress,
    sessions,
    stop_process,
    tidings_command,
    wait_until_up,
)

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MB = 1_000_000  # throughput is reported in decimal MB/s, as disk tools do

SMALL_SIZE = KIB
CLIENT_COUNTS = (1, 8)
PART_SIZE = 8 * MIB
PART_THREADS = 4
READ_CHUNK = MIB  # what downloads ask the SDK for at a time
DISK_CHUNK = 8 * MIB
# Random bytes every payload is cut from: larger than a part so parts differ.
PAYLOAD_POOL = 24 * MIB
BUCKET = "bench-objects"
STARTUP_TIMEOUT = 30.0
START_MARGIN = 0.5  # seconds between handing work to the client processes and measuring
MAX_CONSECUTIVE_ERRORS = 50
LEAN_PREFILL_CLIENTS = 8

# Targets for Tidings.
SMALL_PUT_TARGET = 1_500  # ops/s with 8 clients
SMALL_GET_TARGET = 3_000  # ops/s with 8 clients
DISK_FRACTION_TARGET = 0.5  # large transfers versus the measured disk throughput

OSS_LISTENING_RE = re.compile(r"oss listening on (https?://\S+)")
# moto routes a request to its S3 emulator by the credential scope and does not verify
# the signature, so the lean client sends a constant header.
S3_LEAN_HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "Content-Type": "application/octet-stream",
}
OCTET_STREAM = "application/octet-stream"
LOAD_AT_START = os.getloadavg()[0]
REPORT_WIDTH = 132  # rich's default, 80 columns when not on a terminal, truncates the tables


@dataclasses.dataclass(frozen=True)
class Settings:
    """Knobs that differ between the full and the quick run."""

    duration: float  # seconds per small-object run
    get_keys: int  # 1 KiB objects prefilled for the GET runs
    large_size: int  # bytes of one "large" object
    large_repeats: int  # large objects put (and got) per backend
    multipart_size: int  # bytes of the multipart object
    disk_size: int  # bytes of the raw disk test file
    min_free: int  # free bytes the large scenarios need where the data goes


FULL = Settings(
    duration=5.0,
    get_keys=1_000,
    large_size=64 * MIB,
    large_repeats=5,
    multipart_size=GIB,
    disk_size=GIB,
    min_free=6 * GIB,
)
QUICK = Settings(
    duration=1.5,
    get_keys=200,
    large_size=16 * MIB,
    large_repeats=2,
    multipart_size=128 * MIB,
    disk_size=256 * MIB,
    min_free=3 * GIB // 2,
)


@dataclasses.dataclass(frozen=True)
class ScenarioInfo:
    """A selectable scenario; `large` ones move big files and need free disk."""

    key: str
    label: str
    large: bool


SCENARIOS = (
    ScenarioInfo("disk", "raw disk write + fsync and cold read", large=True),
    ScenarioInfo("small-put", "PUT 1 KiB, 1 and 8 clients", large=False),
    ScenarioInfo("small-get", "GET 1 KiB, 1 and 8 clients", large=False),
    ScenarioInfo("large-put", "PUT 64 MiB", large=True),
    ScenarioInfo("large-get", "GET 64 MiB, cold and warm", large=True),
    ScenarioInfo("multipart-put", "multipart upload of 1 GiB", large=True),
    ScenarioInfo("multipart-get", "download of the 1 GiB object", large=True),
)
SCENARIO_KEYS = tuple(s.key for s in SCENARIOS)


def size_text(size: int) -> str:
    """1073741824 -> '1 GiB', 65536 -> '64 KiB'."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


# --------------------------------------------------------------------------- payloads


@dataclasses.dataclass(frozen=True)
class Payload:
    """Pseudo-random payloads cut from one random pool, so generating them costs nothing."""

    pool: bytes

    @classmethod
    def create(cls) -> Payload:
        """A payload source with a fresh random pool."""
        return cls(os.urandom(PAYLOAD_POOL))

    def piece(self, index: int, size: int) -> bytes:
        """`size` bytes (at most the pool's size) that differ with `index`."""
        span = len(self.pool) - size
        offset = (index * 65_537) % span if span > 0 else 0
        return self.pool[offset : offset + size]

    def body(self, index: int, size: int) -> bytes:
        """`size` bytes of any length, made of pieces, that differ with `index`."""
        chunk = PART_SIZE
        count = math.ceil(size / chunk)
        return b"".join(
            self.piece(index * count + n, min(chunk, size - n * chunk)) for n in range(count)
        )


# --------------------------------------------------------------------------- CPU accounting


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ')' is numeric.
    return raw[raw.rindex(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and its descendants (Linux /proc).

    The servers start through wrapper scripts (pyenv shims) that may fork, so the
    process tree is summed rather than one pid.
    """
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        parents[int(entry.name)] = int(fields[1])  # ppid
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total = 0.0
    for pid in times:
        cursor = pid
        while cursor not in (0, 1) and cursor != root:
            cursor = parents.get(cursor, 0)
        if cursor == root:
            total += times[pid]
    return total


@dataclasses.dataclass
class CpuMeter:
    """CPU cores used by the server tree and by this process between start and stop."""

    server_pid: int
    _server: float = 0.0
    _client: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        """Take the starting readings."""
        self._server = tree_cpu_seconds(self.server_pid)
        self._client = time.process_time()
        self._wall = time.perf_counter()

    def stop(self) -> tuple[float, float]:
        """(server cores, this process's cores) since `start`."""
        wall = max(time.perf_counter() - self._wall, 1e-9)
        server = (tree_cpu_seconds(self.server_pid) - self._server) / wall
        return server, (time.process_time() - self._client) / wall


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class Measurement:
    """One measured run: a rate (ops/s) or a throughput (bytes/s) with its context."""

    backend: str  # tidings, moto, or disk
    scenario: str  # a SCENARIO_KEYS entry, or a variant such as large-get-warm
    clients: int = 1
    client: str = "sdk"  # sdk or lean
    ops: int = 0
    bytes: int = 0
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    first_error: str = ""
    server_cpu: float | None = None  # cores
    client_cpu: float | None = None  # cores
    samples: list[float] = dataclasses.field(default_factory=list)  # MB/s of each repeat
    note: str = ""

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def mbps(self) -> float:
        """MB/s: the median of the repeats when there are several, else bytes / seconds."""
        if self.samples:
            return statistics.median(self.samples)
        return self.bytes / self.seconds / MB if self.seconds > 0 else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_summary(latencies: list[float]) -> tuple[float | None, float | None]:
    """(p50, p99) in milliseconds of latencies in seconds."""
    if not latencies:
        return None, None
    latencies.sort()
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000


@dataclasses.dataclass
class RunStats:
    """What the clients of one small-object run count."""

    ops: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = dataclasses.field(default_factory=list)

    def record_error(self, error: BaseException) -> None:
        """Count a failed operation, keeping the first one's description."""
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(error).__name__}: {error}"[:300]


# --------------------------------------------------------------------------- SDK clients


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a backend listens; picklable, for the client processes."""

    backend: str  # tidings or moto
    endpoint: str
    bucket: str = BUCKET


class SdkClient(Protocol):
    """The blocking operations the benchmark needs from an official SDK."""

    def create_bucket(self) -> None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def download(self, key: str) -> int: ...
    def multipart_upload(self, key: str, size: int, payload: Payload) -> None: ...
    def delete(self, key: str) -> None: ...


class ChecksumMismatchError(Exception):
    """A download's checksum differs from what the server reported."""


class Oss2Client:
    """`oss2` with its defaults: V1 signatures, CRC-64 computed and checked on transfers."""

    def __init__(self, target: Target) -> None:
        import oss2

        self._oss2 = oss2
        auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        self.bucket = oss2.Bucket(auth, target.endpoint, target.bucket)

    def create_bucket(self) -> None:
        """PutBucket."""
        self.bucket.create_bucket()

    def put(self, key: str, data: bytes) -> None:
        """PutObject (oss2 compares the returned CRC-64 with its own)."""
        self.bucket.put_object(key, data)

    def get(self, key: str) -> bytes:
        """GetObject of a small object."""
        return bytes(self.bucket.get_object(key).read())

    def download(self, key: str) -> int:
        """Stream an object in READ_CHUNK reads; check the CRC-64; return the size."""
        result = self.bucket.get_object(key)
        received = 0
        while chunk := result.read(READ_CHUNK):
            received += len(chunk)
        if result.client_crc != result.server_crc:
            raise ChecksumMismatchError(f"{key}: CRC-64 {result.client_crc} != server's")
        return received

    def multipart_upload(self, key: str, size: int, payload: Payload) -> None:
        """Initiate, PART_THREADS threads of UploadPart, Complete (CRC of the whole checked)."""
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        count = math.ceil(size / PART_SIZE)

        def upload(number: int) -> Any:
            data = payload.piece(number, min(PART_SIZE, size - (number - 1) * PART_SIZE))
            result = self.bucket.upload_part(key, upload_id, number, data)
            return self._oss2.models.PartInfo(
                number, result.etag, size=len(data), part_crc=result.crc
            )

        with ThreadPoolExecutor(PART_THREADS) as threads:
            parts = list(threads.map(upload, range(1, count + 1)))
        self.bucket.complete_multipart_upload(key, upload_id, parts)

    def delete(self, key: str) -> None:
        """DeleteObject."""
        self.bucket.delete_object(key)


class Boto3Client:
    """`boto3` with its defaults (CRC32 request checksums, response validation), path style."""

    def __init__(self, target: Target) -> None:
        import boto3
        import botocore.config

        config = botocore.config.Config(
            s3={"addressing_style": "path"}, max_pool_connections=PART_THREADS * 2
        )
        self.bucket = target.bucket
        self.s3 = boto3.client(
            "s3",
            endpoint_url=target.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
            region_name="us-east-1",
            config=config,
        )

    def create_bucket(self) -> None:
        """CreateBucket."""
        self.s3.create_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes) -> None:
        """PutObject."""
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        """GetObject of a small object."""
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def download(self, key: str) -> int:
        """Stream an object in READ_CHUNK reads; return the size.

        botocore validates the object's checksum itself when the server returns one;
        the size is checked here.
        """
        response = self.s3.get_object(Bucket=self.bucket, Key=key)
        body = response["Body"]
        received = 0
        while chunk := body.read(READ_CHUNK):
            received += len(chunk)
        if received != response["ContentLength"]:
            raise ChecksumMismatchError(f"{key}: {received} bytes, not {response['ContentLength']}")
        return received

    def multipart_upload(self, key: str, size: int, payload: Payload) -> None:
        """CreateMultipartUpload, PART_THREADS threads of UploadPart, Complete."""
        upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        count = math.ceil(size / PART_SIZE)

        def upload(number: int) -> dict[str, Any]:
            data = payload.piece(number, min(PART_SIZE, size - (number - 1) * PART_SIZE))
            result = self.s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            return {"ETag": result["ETag"], "PartNumber": number}

        with ThreadPoolExecutor(PART_THREADS) as threads:
            parts = list(threads.map(upload, range(1, count + 1)))
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def delete(self, key: str) -> None:
        """DeleteObject."""
        self.s3.delete_object(Bucket=self.bucket, Key=key)


def sdk_client(target: Target) -> SdkClient:
    """The official SDK client for a backend."""
    return Oss2Client(target) if target.backend == "tidings" else Boto3Client(target)


# The SDK client of a client process, made once by `_init_worker`.
_WORKER_CLIENT: SdkClient | None = None


def _init_worker(target: Target) -> None:
    global _WORKER_CLIENT
    _WORKER_CLIENT = sdk_client(target)


def _pid_after_pause(_: int) -> int:
    # Busy long enough that the pool hands the other tasks to other processes.
    time.sleep(0.2)
    return os.getpid()


def sdk_small_worker(
    op: str, worker: int, get_keys: int, start_at: float, duration: float, tag: str
) -> tuple[int, int, str, list[float], float]:
    """One client process's share of a small-object run (runs in a pool process).

    Waits for the common start (monotonic clock, shared by all processes), then PUTs new
    keys or GETs the prefilled ones until the common deadline. Returns (ops, errors,
    first error, latencies in seconds, CPU seconds used while measuring).
    """
    client = _WORKER_CLIENT
    assert client is not None, "the pool initializer makes the client"
    data = os.urandom(SMALL_SIZE)
    stats = RunStats()
    index = worker * 7_919  # GET keys: spread the workers over the prefilled keys
    # One untimed request first, so connection set-up is not measured. Its failure is
    # ignored: a broken server fails the measured requests too, and those are reported.
    with contextlib.suppress(Exception):
        client.get(f"small/{index % get_keys}")
    pause = start_at - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    deadline = start_at + duration
    cpu_started = time.process_time()
    consecutive = 0
    while (now := time.monotonic()) < deadline:
        try:
            if op == "put":
                client.put(f"small-put/{tag}/{worker}/{stats.ops}", data)
            else:
                got = client.get(f"small/{index % get_keys}")
                if len(got) != SMALL_SIZE:
                    raise ChecksumMismatchError(f"got {len(got)} bytes")
                index += 1
        except Exception as error:
            stats.record_error(error)
            consecutive += 1
            if consecutive >= MAX_CONSECUTIVE_ERRORS:
                break
            continue
        consecutive = 0
        stats.ops += 1
        stats.latencies.append(time.monotonic() - now)
    cpu = time.process_time() - cpu_started
    return stats.ops, stats.errors, stats.first_error, stats.latencies, cpu


def run_sdk_small(
    pool: multiprocessing.pool.Pool,
    target: Target,
    server_pid: int,
    op: str,
    clients: int,
    settings: Settings,
    tag: str,
) -> Measurement:
    """Run `clients` SDK client processes for one small-object run (blocking)."""
    start_at = time.monotonic() + START_MARGIN
    pending = [
        pool.apply_async(
            sdk_small_worker, (op, worker, settings.get_keys, start_at, settings.duration, tag)
        )
        for worker in range(clients)
    ]
    time.sleep(max(0.0, start_at - time.monotonic()))
    server_cpu = tree_cpu_seconds(server_pid)
    started = time.perf_counter()
    results = [item.get(timeout=settings.duration + 120) for item in pending]
    elapsed = time.perf_counter() - started
    server_cores = (tree_cpu_seconds(server_pid) - server_cpu) / elapsed
    stats = RunStats()
    client_cpu = 0.0
    for ops, errors, first_error, latencies, cpu in results:
        stats.ops += ops
        stats.errors += errors
        stats.first_error = stats.first_error or first_error
        stats.latencies.extend(latencies)
        client_cpu += cpu
    p50, p99 = latency_summary(stats.latencies)
    return Measurement(
        backend=target.backend,
        scenario=f"small-{op}",
        clients=clients,
        client="sdk",
        ops=stats.ops,
        seconds=settings.duration,
        p50_ms=p50,
        p99_ms=p99,
        errors=stats.errors,
        first_error=stats.first_error,
        server_cpu=server_cores,
        client_cpu=client_cpu / settings.duration,
    )


# --------------------------------------------------------------------------- lean clients


class LeanClient(Protocol):
    """Small-object PUT and GET over aiohttp, with as little client work as possible."""

    backend: str

    async def put(self, session: aiohttp.ClientSession, key: str, data: bytes) -> None: ...
    async def get(self, session: aiohttp.ClientSession, key: str) -> bytes: ...
    async def download(self, session: aiohttp.ClientSession, key: str) -> int: ...


class UnexpectedResponseError(Exception):
    """A server answered with an unexpected status."""


async def _expect(response: aiohttp.ClientResponse, what: str) -> bytes:
    body = await response.read()
    if response.status != 200:
        text = body[:200].decode("utf-8", "replace").replace("\n", " ")
        raise UnexpectedResponseError(f"{what} -> HTTP {response.status}: {text}")
    return body


async def _stream_body(response: aiohttp.ClientResponse, what: str) -> tuple[int, int]:
    """Read a 200 response's body in chunks: (CRC-64, size), size checked."""
    if response.status != 200:
        await _expect(response, what)
    crc = received = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        crc = fastcrc64.xz(chunk, crc)
        received += len(chunk)
    if response.content_length is not None and received != response.content_length:
        raise ChecksumMismatchError(f"{what}: {received} bytes of {response.content_length}")
    return crc, received


class LeanOss:
    """OSS PUT/GET with V1 header signatures (the Date string cached per second)."""

    backend = "tidings"

    def __init__(self, base_url: str, bucket: str = BUCKET) -> None:
        self._base = base_url.rstrip("/")
        self._bucket = bucket
        self._secret = ACCESS_KEY_SECRET.encode()
        self._second = -1
        self._date = ""

    def _headers(self, verb: str, key: str, content_type: str = "") -> dict[str, str]:
        second = int(time.time())
        if second != self._second:
            self._second, self._date = second, email.utils.formatdate(second, usegmt=True)
        to_sign = f"{verb}\n\n{content_type}\n{self._date}\n/{self._bucket}/{key}"
        digest = hmac.new(self._secret, to_sign.encode(), hashlib.sha1).digest()
        headers = {
            "Date": self._date,
            "Authorization": f"OSS {ACCESS_KEY_ID}:{base64.b64encode(digest).decode()}",
        }
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _url(self, key: str) -> yarl.URL:
        # Benchmark keys are plain ASCII: no percent-encoding needed.
        return yarl.URL(f"{self._base}/{self._bucket}/{key}", encoded=True)

    async def put(self, session: aiohttp.ClientSession, key: str, data: bytes) -> None:
        """PutObject."""
        headers = self._headers("PUT", key, OCTET_STREAM)
        async with session.put(self._url(key), data=data, headers=headers) as response:
            await _expect(response, f"PUT {key}")

    async def get(self, session: aiohttp.ClientSession, key: str) -> bytes:
        """GetObject."""
        async with session.get(self._url(key), headers=self._headers("GET", key)) as response:
            return await _expect(response, f"GET {key}")

    async def download(self, session: aiohttp.ClientSession, key: str) -> int:
        """Stream an object, checking the CRC-64 the server reports (fastcrc: ~GB/s, so
        the check costs the client little, unlike oss2's crcmod); return its size."""
        async with session.get(self._url(key), headers=self._headers("GET", key)) as response:
            crc, received = await _stream_body(response, f"GET {key}")
            reported = response.headers.get("x-oss-hash-crc64ecma")
        if reported is not None and int(reported) != crc:
            raise ChecksumMismatchError(f"{key}: CRC-64 {crc} != server's {reported}")
        return received


class LeanS3:
    """S3 PUT/GET for moto, which does not verify signatures."""

    backend = "moto"

    def __init__(self, base_url: str, bucket: str = BUCKET) -> None:
        self._base = base_url.rstrip("/")
        self._bucket = bucket

    def _url(self, key: str) -> yarl.URL:
        return yarl.URL(f"{self._base}/{self._bucket}/{key}", encoded=True)

    async def put(self, session: aiohttp.ClientSession, key: str, data: bytes) -> None:
        """PutObject."""
        async with session.put(self._url(key), data=data, headers=S3_LEAN_HEADERS) as response:
            await _expect(response, f"PUT {key}")

    async def get(self, session: aiohttp.ClientSession, key: str) -> bytes:
        """GetObject."""
        async with session.get(self._url(key), headers=S3_LEAN_HEADERS) as response:
            return await _expect(response, f"GET {key}")

    async def download(self, session: aiohttp.ClientSession, key: str) -> int:
        """Stream an object (its CRC-64 computed too, for the same client cost); return its
        size, checked against Content-Length."""
        async with session.get(self._url(key), headers=S3_LEAN_HEADERS) as response:
            _, received = await _stream_body(response, f"GET {key}")
        return received


async def lean_loop(
    client: LeanClient,
    session: aiohttp.ClientSession,
    op: str,
    worker: int,
    get_keys: int,
    deadline: float,
    tag: str,
    stats: RunStats,
) -> None:
    """One lean client: PUT new keys or GET prefilled ones until the deadline."""
    data = os.urandom(SMALL_SIZE)
    index = worker * 7_919
    count = 0
    consecutive = 0
    while (now := time.perf_counter()) < deadline:
        try:
            if op == "put":
                await client.put(session, f"small-put/{tag}/{worker}/{count}", data)
            else:
                got = await client.get(session, f"small/{index % get_keys}")
                if len(got) != SMALL_SIZE:
                    raise ChecksumMismatchError(f"got {len(got)} bytes")
                index += 1
        except (UnexpectedResponseError, ChecksumMismatchError, aiohttp.ClientError) as error:
            stats.record_error(error)
            consecutive += 1
            if consecutive >= MAX_CONSECUTIVE_ERRORS:
                return
            continue
        consecutive = 0
        count += 1
        stats.ops += 1
        stats.latencies.append(time.perf_counter() - now)


async def run_lean_small(
    client: LeanClient, server_pid: int, op: str, clients: int, settings: Settings, tag: str
) -> Measurement:
    """Run `clients` lean clients (one keep-alive connection each) for one run."""
    stats = RunStats()
    async with sessions(clients) as pool:
        # Untimed warm-up: every connection is open before the clock starts.
        with contextlib.suppress(UnexpectedResponseError, aiohttp.ClientError):
            await asyncio.gather(*(client.get(s, "small/0") for s in pool))
        meter = CpuMeter(server_pid)
        meter.start()
        started = time.perf_counter()
        deadline = started + settings.duration
        await asyncio.gather(
            *(
                lean_loop(client, s, op, worker, settings.get_keys, deadline, tag, stats)
                for worker, s in enumerate(pool)
            )
        )
        elapsed = time.perf_counter() - started
        server_cores, client_cores = meter.stop()
    p50, p99 = latency_summary(stats.latencies)
    return Measurement(
        backend=client.backend,
        scenario=f"small-{op}",
        clients=clients,
        client="lean",
        ops=stats.ops,
        seconds=elapsed,
        p50_ms=p50,
        p99_ms=p99,
        errors=stats.errors,
        first_error=stats.first_error,
        server_cpu=server_cores,
        client_cpu=client_cores,
    )


async def lean_prefill(client: LeanClient, count: int) -> None:
    """PUT the `count` 1 KiB objects the GET runs read (untimed)."""
    data = os.urandom(SMALL_SIZE)
    indexes = iter(range(count))

    async def worker(session: aiohttp.ClientSession) -> None:
        for index in indexes:
            await client.put(session, f"small/{index}", data)

    async with sessions(LEAN_PREFILL_CLIENTS) as pool:
        await asyncio.gather(*(worker(session) for session in pool))


# --------------------------------------------------------------------------- disk


def cached_bytes() -> int:
    """The page cache's size (`Cached` in /proc/meminfo), in bytes; 0 if unknown."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("Cached:"):
                return int(line.split()[1]) * KIB
    return 0


def drop_file_cache(path: Path) -> None:
    """Evict a file's clean pages from the page cache (posix_fadvise DONTNEED).

    Unlike /proc/sys/vm/drop_caches this needs no privilege and leaves the rest of the
    machine's cache alone. It only evicts pages already written back: the disk test
    fsyncs its file first, and Tidings fsyncs every blob before acknowledging it (an
    fsync here would cost seconds across the thousands of small-object files).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def drop_tree_cache(root: Path) -> None:
    """`drop_file_cache` for every regular file under `root`."""
    for directory, _, files in os.walk(root):
        for name in files:
            drop_file_cache(Path(directory, name))


def measure_disk(directory: Path, size: int, payload: Payload) -> list[Measurement]:
    """Write `size` bytes with fsync (timed to the end of the fsync), drop the file's
    page cache, read it back (blocking). Returns the write and the read measurements."""
    path = directory / "disk-test.bin"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            cpu = time.process_time()
            started = time.perf_counter()
            written = 0
            index = 0
            while written < size:
                block = payload.piece(index, min(DISK_CHUNK, size - written))
                written += os.write(fd, block)
                index += 1
            os.fsync(fd)
            write_seconds = time.perf_counter() - started
            write_cpu = (time.process_time() - cpu) / write_seconds
        finally:
            os.close(fd)
        write = Measurement(
            "disk", "disk-write", bytes=size, seconds=write_seconds, client_cpu=write_cpu
        )
        before = cached_bytes()
        drop_file_cache(path)
        evicted = before - cached_bytes()
        # The machine's other work changes Cached too; count most of the file as proof.
        if evicted >= 0.8 * size:
            cache = f"page cache dropped (posix_fadvise; Cached fell by {evicted / MIB:,.0f} MiB)"
        else:
            cache = (
                f"page cache drop not confirmed (Cached fell by {max(evicted, 0) / MIB:,.0f} "
                "MiB only): the read may be partly from memory"
            )
        fd = os.open(path, os.O_RDONLY)
        try:
            started = time.perf_counter()
            received = 0
            while block := os.read(fd, DISK_CHUNK):
                received += len(block)
            read_seconds = time.perf_counter() - started
        finally:
            os.close(fd)
        read = Measurement("disk", "disk-read", bytes=received, seconds=read_seconds, note=cache)
        return [write, read]
    finally:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- servers


@dataclasses.dataclass(frozen=True)
class Server:
    """A running backend: its endpoint, the pid to account CPU to, its data directory."""

    backend: str
    url: str
    pid: int
    data_dir: Path | None  # where its blob files are (None for moto: memory and temp files)
    mns_url: str | None = None  # Tidings' MNS listener (queues, topics, control plane)


async def read_listening(
    stream: asyncio.StreamReader, output: collections.deque[str], timeout: float
) -> dict[str, str]:
    """Read server output until the OSS and MNS listening lines; their base URLs."""
    patterns = {"oss": OSS_LISTENING_RE, "mns": LISTENING_RE}
    deadline = time.perf_counter() + timeout
    found: dict[str, str] = {}
    problem = f"did not report its ports within {timeout:.0f} s"
    while len(found) < len(patterns) and (remaining := deadline - time.perf_counter()) > 0:
        try:
            line = await asyncio.wait_for(stream.readline(), remaining)
        except TimeoutError:
            break
        if not line:
            problem = "exited before reporting its ports"
            break
        text = line.decode("utf-8", "replace").rstrip()
        output.append(text)
        for name, pattern in patterns.items():
            if match := pattern.search(text):
                found[name] = match.group(1).rstrip("/")
    if len(found) < len(patterns):
        tail = "\n".join(output)
        raise RuntimeError(f"tidings {problem}; its last output:\n{tail}")
    return found


@contextlib.asynccontextmanager
async def tidings_server(root: Path, env: dict[str, str] | None = None) -> AsyncIterator[Server]:
    """Run `tidings serve` (defaults, plus TIDINGS_BENCH_SERVE_ARGS; `env` adds to its
    environment) on a data directory under `root`; yield it as a Server. The data
    directory is removed afterwards."""
    data_dir = root / "tidings-data"
    environment = {
        **os.environ,
        "TIDINGS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "TIDINGS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        **(env or {}),
    }
    output: collections.deque[str] = collections.deque(maxlen=40)
    process = await asyncio.create_subprocess_exec(
        *tidings_command(str(data_dir)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=environment,
    )
    assert process.stdout is not None
    reader: asyncio.Task[None] | None = None
    try:
        urls = await read_listening(process.stdout, output, STARTUP_TIMEOUT)
        # Keep reading, so a chatty server never blocks on a full pipe.
        reader = asyncio.create_task(drain(process.stdout, output))
        await wait_until_up(urls["oss"] + "/health", STARTUP_TIMEOUT, require_ok=True)
        yield Server("tidings", urls["oss"], process.pid, data_dir, urls["mns"])
    finally:
        await stop_process(process)
        if reader is not None:
            await reader
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def moto_server(root: Path) -> AsyncIterator[Server]:
    """Run moto's server on a free port; yield it as a Server.

    moto keeps objects in memory, spilling large ones to temporary files: TMPDIR points
    those into `root` so they are on the measured filesystem and removed afterwards.
    """
    temp = root / "moto-tmp"
    temp.mkdir()
    port = free_port()
    env = {**os.environ, "TMPDIR": str(temp)}
    try:
        with tempfile.TemporaryFile() as log:
            process = await asyncio.create_subprocess_exec(
                *moto_command(port), stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
            )
            try:
                url = f"http://127.0.0.1:{port}"
                await wait_until_up(url + "/moto-api/", STARTUP_TIMEOUT, require_ok=False)
                yield Server("moto", url, process.pid, None)
            finally:
                await stop_process(process)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


# --------------------------------------------------------------------------- large objects


async def timed(
    server: Server, transfer: Callable[[], Awaitable[int]]
) -> tuple[int, float, float | None, float | None]:
    """Await one transfer; return (bytes moved, seconds, server cores, client cores)."""
    meter = CpuMeter(server.pid)
    meter.start()
    started = time.perf_counter()
    moved = await transfer()
    seconds = time.perf_counter() - started
    server_cores, client_cores = meter.stop()
    return moved, seconds, server_cores, client_cores


def drop_server_cache(server: Server) -> bool:
    """Evict the server's stored objects from the page cache; False when impossible."""
    if server.data_dir is None:
        return False
    drop_tree_cache(server.data_dir)
    return True


Transfer = tuple[int, float, float | None, float | None]


def aggregate(backend: str, scenario: str, client: str, runs: list[Transfer]) -> Measurement:
    """One Measurement from repeated transfers given as (bytes, seconds, server, client)."""
    servers = [s for _, _, s, _ in runs if s is not None]
    clients = [c for _, _, _, c in runs if c is not None]
    return Measurement(
        backend=backend,
        scenario=scenario,
        client=client,
        ops=len(runs),
        bytes=sum(size for size, _, _, _ in runs),
        seconds=sum(seconds for _, seconds, _, _ in runs),
        samples=[size / seconds / MB for size, seconds, _, _ in runs] if len(runs) > 1 else [],
        server_cpu=statistics.mean(servers) if servers else None,
        client_cpu=statistics.mean(clients) if clients else None,
    )


class LargeRunner:
    """Large transfers against one backend, with its SDK (in a thread) and the lean client."""

    def __init__(self, server: Server, lean: LeanClient, payload: Payload) -> None:
        self.server = server
        self.lean = lean
        self.payload = payload
        self.sdk = sdk_client(Target(server.backend, server.url))

    def _put(self, client: str, session: aiohttp.ClientSession, key: str, body: bytes) -> Any:
        async def sdk() -> int:
            await asyncio.to_thread(self.sdk.put, key, body)
            return len(body)

        async def lean() -> int:
            await self.lean.put(session, key, body)
            return len(body)

        return sdk if client == "sdk" else lean

    def _download(self, client: str, session: aiohttp.ClientSession, key: str) -> Any:
        async def sdk() -> int:
            return await asyncio.to_thread(self.sdk.download, key)

        async def lean() -> int:
            return await self.lean.download(session, key)

        return sdk if client == "sdk" else lean

    async def _get(
        self, client: str, session: aiohttp.ClientSession, keys: list[str], cold: bool
    ) -> list[Transfer]:
        runs = []
        for key in keys:
            if cold:
                await asyncio.to_thread(drop_server_cache, self.server)
            runs.append(await timed(self.server, self._download(client, session, key)))
        return runs

    def _result(self, scenario: str, client: str, runs: list[Transfer]) -> Measurement:
        result = aggregate(self.server.backend, scenario, client, runs)
        if "cold" in scenario and self.server.data_dir is None:
            result.note = "served from memory (its cache cannot be dropped)"
        return result

    async def large(self, settings: Settings, wanted: set[str]) -> list[Measurement]:
        """PUT `large_repeats` objects per client, then GET each cold and warm."""
        results = []
        bodies = [self.payload.body(index, settings.large_size) for index in range(2)]
        async with sessions(1) as (session,):
            for client in ("sdk", "lean"):
                keys = [f"large-{client}/{n}" for n in range(settings.large_repeats)]
                puts = [
                    await timed(
                        self.server, self._put(client, session, key, bodies[n % len(bodies)])
                    )
                    for n, key in enumerate(keys)
                ]
                if "large-put" in wanted:
                    results.append(self._result("large-put", client, puts))
                if "large-get" in wanted:
                    cold = await self._get(client, session, keys, cold=True)
                    results.append(self._result("large-get-cold", client, cold))
                    warm = await self._get(client, session, keys, cold=False)
                    results.append(self._result("large-get-warm", client, warm))
                for key in keys:
                    await asyncio.to_thread(self.sdk.delete, key)
        return results

    async def multipart(self, settings: Settings, wanted: set[str]) -> list[Measurement]:
        """Multipart-upload one object with the SDK, then download it cold with both."""
        key = "multipart/object"
        size = settings.multipart_size

        async def upload() -> int:
            await asyncio.to_thread(self.sdk.multipart_upload, key, size, self.payload)
            return size

        results = []
        run = await timed(self.server, upload)
        if "multipart-put" in wanted:
            results.append(self._result("multipart-put", "sdk", [run]))
        if "multipart-get" in wanted:
            async with sessions(1) as (session,):
                for client in ("sdk", "lean"):
                    runs = await self._get(client, session, [key], cold=True)
                    results.append(self._result("multipart-get-cold", client, runs))
        await asyncio.to_thread(self.sdk.delete, key)
        return results


# --------------------------------------------------------------------------- orchestration


@dataclasses.dataclass
class Report:
    """Everything the output needs."""

    settings: Settings
    backends: Sequence[str]
    scenarios: Sequence[str]
    results: list[Measurement] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    load_after: float = 0.0


def spawn_pool(target: Target) -> multiprocessing.pool.Pool:
    """Client processes, each with its own SDK client, started before any measurement.

    spawn (not fork): the parent runs an event loop and thread pools, which a forked
    child must not inherit.
    """
    context = multiprocessing.get_context("spawn")
    size = max(CLIENT_COUNTS)
    pool = context.Pool(size, initializer=_init_worker, initargs=(target,))
    # Wait until every process is up (spawn and imports take seconds on a busy machine),
    # or the first run would start with processes still importing.
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while len(seen) < size and time.monotonic() < deadline:
        seen.update(pool.map(_pid_after_pause, range(size), chunksize=1))
    return pool


async def bench_small(
    server: Server, lean: LeanClient, report: Report, wanted: set[str], tag: str
) -> None:
    """The 1 KiB PUT and GET runs, SDK and lean clients, 1 and 8 of each."""
    settings = report.settings
    target = Target(server.backend, server.url)
    progress(f"{server.backend}: prefilling {settings.get_keys:,} 1 KiB objects")
    # The client processes start (seconds of imports) while the prefill runs.
    starting = asyncio.ensure_future(asyncio.to_thread(spawn_pool, target))
    try:
        await lean_prefill(lean, settings.get_keys)
    finally:
        pool = await starting
    try:
        for op in ("put", "get"):
            if f"small-{op}" not in wanted:
                continue
            for clients in CLIENT_COUNTS:
                progress(f"{server.backend}: {op.upper()} 1 KiB, {clients} SDK client(s)")
                report.results.append(
                    await asyncio.to_thread(
                        run_sdk_small,
                        pool,
                        target,
                        server.pid,
                        op,
                        clients,
                        settings,
                        f"{tag}-sdk{clients}",
                    )
                )
                progress(f"{server.backend}: {op.upper()} 1 KiB, {clients} lean client(s)")
                report.results.append(
                    await run_lean_small(
                        lean, server.pid, op, clients, settings, f"{tag}-lean{clients}"
                    )
                )
    finally:
        pool.terminate()
        pool.join()


async def bench_backend(
    server: Server, lean: LeanClient, report: Report, wanted: set[str], payload: Payload
) -> None:
    """Every selected scenario against one running backend; failures are recorded."""
    settings = report.settings
    runner = LargeRunner(server, lean, payload)
    await asyncio.to_thread(runner.sdk.create_bucket)
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if wanted & {"small-put", "small-get"}:
        steps.append(("small objects", lambda: bench_small(server, lean, report, wanted, "run")))

    async def large() -> None:
        progress(
            f"{server.backend}: PUT/GET {settings.large_repeats} × {size_text(settings.large_size)}"
            " per client kind"
        )
        report.results.extend(await runner.large(settings, wanted))

    async def multipart() -> None:
        progress(
            f"{server.backend}: multipart {size_text(settings.multipart_size)} "
            f"({size_text(PART_SIZE)} parts, {PART_THREADS} threads) and download"
        )
        report.results.extend(await runner.multipart(settings, wanted))

    if wanted & {"large-put", "large-get"}:
        steps.append(("large objects", large))
    if wanted & {"multipart-put", "multipart-get"}:
        steps.append(("multipart", multipart))
    for name, step in steps:
        try:
            await step()
        except Exception as error:
            report.failures.append(
                f"! {server.backend} {name} failed: {type(error).__name__}: {error}"
            )
            progress(report.failures[-1])


async def run_all(report: Report, root: Path) -> None:
    """The disk baseline, then each backend in turn, into `report`."""
    wanted = set(report.scenarios)
    free = shutil.disk_usage(root).free
    big = {s.key for s in SCENARIOS if s.large}
    if wanted & big and free < report.settings.min_free:
        refused = sorted(wanted & big)
        message = (
            f"! only {free / GIB:.1f} GiB free in {root}; the large scenarios need "
            f"{report.settings.min_free / GIB:.1f} GiB: refused {', '.join(refused)} "
            "(free space, or point --dir at a filesystem with room)"
        )
        report.failures.append(message)
        progress(message)
        wanted -= big
    payload = Payload.create()
    if "disk" in wanted:
        size = report.settings.disk_size
        progress(f"disk: writing {size_text(size)} with fsync, reading it back")
        report.results.extend(await asyncio.to_thread(measure_disk, root, size, payload))
    servers = {"tidings": tidings_server, "moto": moto_server}
    leans: dict[str, Callable[[str], LeanClient]] = {"tidings": LeanOss, "moto": LeanS3}
    for backend in report.backends:
        if not wanted - {"disk"}:
            break
        progress(f"starting {backend}")
        try:
            async with servers[backend](root) as server:
                await bench_backend(server, leans[backend](server.url), report, wanted, payload)
        except (RuntimeError, OSError, aiohttp.ClientError) as error:
            report.failures.append(f"! {backend} aborted: {error}")
            progress(report.failures[-1])


# --------------------------------------------------------------------------- reporting


def find(results: Sequence[Measurement], **match: Any) -> Measurement | None:
    """The first result whose attributes equal `match`."""
    for result in results:
        if all(getattr(result, name) == value for name, value in match.items()):
            return result
    return None


def rate_cell(result: Measurement | None) -> str:
    """ops/s with a '!' when requests failed."""
    if result is None:
        return "-"
    return f"{result.rate:,.0f}" + ("!" if result.errors else "")


def latency_cell(result: Measurement | None) -> str:
    """'p50 / p99' in ms."""
    if result is None or result.p50_ms is None or result.p99_ms is None:
        return "-"
    return f"{result.p50_ms:.1f} / {result.p99_ms:.1f}"


def cores_cell(result: Measurement | None) -> str:
    """'server / client' CPU cores of a run."""
    if result is None or result.server_cpu is None or result.client_cpu is None:
        return "-"
    return f"{result.server_cpu:.2f} / {result.client_cpu:.2f}"


def ratio_text(numerator: float | None, denominator: float | None, suffix: str = "×") -> str:
    """numerator / denominator, or '-'."""
    if not numerator or not denominator:
        return "-"
    ratio = numerator / denominator
    return f"{ratio:.1f}{suffix}" if ratio >= 10 else f"{ratio:.2f}{suffix}"


def small_section(report: Report) -> Section:
    """The 1 KiB table."""
    rows = []
    for op in ("put", "get"):
        for clients in CLIENT_COUNTS:
            for client in ("sdk", "lean"):
                runs = {
                    backend: find(
                        report.results,
                        backend=backend,
                        scenario=f"small-{op}",
                        clients=clients,
                        client=client,
                    )
                    for backend in ("tidings", "moto")
                }
                tidings, moto = runs["tidings"], runs["moto"]
                if tidings is None and moto is None:
                    continue
                rows.append(
                    [
                        op.upper(),
                        str(clients),
                        CLIENT_LABELS[client],
                        rate_cell(tidings),
                        latency_cell(tidings),
                        rate_cell(moto),
                        latency_cell(moto),
                        ratio_text(tidings.rate if tidings else None, moto.rate if moto else None),
                        cores_cell(tidings),
                    ]
                )
    header = (
        "op",
        "clients",
        "client",
        "tidings ops/s",
        "p50 / p99 ms",
        "moto ops/s",
        "p50 / p99 ms",
        "tidings/moto",
        "cores srv / cli",
    )
    return Section(f"1 KiB objects ({report.settings.duration:g} s per run)", header, rows)


def disk_figures(results: Sequence[Measurement]) -> tuple[float | None, float | None]:
    """(write, read) MB/s of the raw disk, if measured."""
    write = find(results, backend="disk", scenario="disk-write")
    read = find(results, backend="disk", scenario="disk-read")
    return (write.mbps if write else None), (read.mbps if read else None)


CLIENT_LABELS = {"sdk": "oss2 / boto3", "lean": "lean aiohttp"}
# The large-transfer rows, in table order: (scenario, client).
LARGE_ROWS = (
    ("large-put", "sdk"),
    ("large-put", "lean"),
    ("large-get-cold", "sdk"),
    ("large-get-cold", "lean"),
    ("large-get-warm", "sdk"),
    ("large-get-warm", "lean"),
    ("multipart-put", "sdk"),
    ("multipart-get-cold", "sdk"),
    ("multipart-get-cold", "lean"),
)


def large_label(settings: Settings, scenario: str) -> str:
    """Row label of a large-transfer scenario."""
    large = size_text(settings.large_size)
    multipart = size_text(settings.multipart_size)
    return {
        "large-put": f"PUT {large}",
        "large-get-cold": f"GET {large}, cache dropped",
        "large-get-warm": f"GET {large}, warm",
        "multipart-put": f"multipart PUT {multipart}",
        "multipart-get-cold": f"GET {multipart}, cache dropped",
    }[scenario]


def large_section(report: Report) -> Section:
    """The large-transfer table, with each figure against the disk's."""
    disk_write, disk_read = disk_figures(report.results)
    rows = []
    for scenario, client in LARGE_ROWS:
        tidings = find(report.results, backend="tidings", scenario=scenario, client=client)
        moto = find(report.results, backend="moto", scenario=scenario, client=client)
        if tidings is None and moto is None:
            continue
        disk = disk_write if scenario.endswith("put") else disk_read
        rows.append(
            [
                large_label(report.settings, scenario),
                CLIENT_LABELS[client],
                f"{tidings.mbps:,.0f}" if tidings else "-",
                f"{moto.mbps:,.0f}" if moto else "-",
                ratio_text(tidings.mbps if tidings else None, moto.mbps if moto else None),
                ""
                if "warm" in scenario
                else ratio_text(tidings.mbps if tidings else None, disk, ""),
                cores_cell(tidings),
            ]
        )
    header = (
        "transfer",
        "client",
        "tidings MB/s",
        "moto MB/s",
        "tidings/moto",
        "tidings/disk",
        "cores srv / cli",
    )
    title = f"Large objects (one stream; multipart: {PART_THREADS} upload threads)"
    return Section(title, header, rows)


def disk_section(report: Report) -> Section:
    """The raw disk figures."""
    rows = []
    for scenario, label in (("disk-write", "write + fsync"), ("disk-read", "read")):
        result = find(report.results, backend="disk", scenario=scenario)
        if result is not None:
            rows.append([label, size_text(result.bytes), f"{result.mbps:,.0f}"])
    return Section("Raw disk, same filesystem (the physical limit)", ("", "size", "MB/s"), rows)


@dataclasses.dataclass(frozen=True)
class TargetCheck:
    """One performance target and whether the measurements meet it."""

    label: str
    measured: str
    passed: bool | None  # None: not measured


def small_check(report: Report, op: str, target: int) -> TargetCheck:
    """A 1 KiB target, judged on the lean client (the server's rate); the SDK's alongside."""
    clients = max(CLIENT_COUNTS)
    label = f"{op.upper()} 1 KiB ≥ {target:,}/s with {clients} clients"
    lean = find(
        report.results, backend="tidings", scenario=f"small-{op}", clients=clients, client="lean"
    )
    sdk = find(
        report.results, backend="tidings", scenario=f"small-{op}", clients=clients, client="sdk"
    )
    if lean is None:
        return TargetCheck(label, "not measured", None)
    measured = f"{lean.rate:,.0f}/s (lean clients)"
    if sdk is not None:
        measured += f"; {sdk.rate:,.0f}/s with oss2 (client CPU {sdk.client_cpu or 0:.2f} cores)"
    return TargetCheck(label, measured, lean.rate >= target and not lean.errors)


def disk_check(report: Report, scenario: str) -> TargetCheck:
    """A large-transfer target: at least half the measured disk throughput.

    Judged on the lean client where there is one (the oss2 figure, bound by the client's
    own CPU on this machine, is shown next to it); multipart PUT only has the SDK.
    """
    disk_write, disk_read = disk_figures(report.results)
    writing = scenario.endswith("put")
    disk = disk_write if writing else disk_read
    label = (
        f"{large_label(report.settings, scenario)} ≥ {DISK_FRACTION_TARGET:.0%} of the disk's "
        f"{'write' if writing else 'read'}"
    )
    lean = find(report.results, backend="tidings", scenario=scenario, client="lean")
    sdk = find(report.results, backend="tidings", scenario=scenario, client="sdk")
    judged = lean or sdk
    if judged is None or disk is None:
        return TargetCheck(label, "not measured", None)
    fraction = judged.mbps / disk
    measured = f"{judged.mbps:,.0f} of {disk:,.0f} MB/s = {fraction:.0%} ({judged.client} client)"
    if lean is not None and sdk is not None:
        measured += f"; oss2 {sdk.mbps:,.0f} MB/s = {sdk.mbps / disk:.0%}"
    return TargetCheck(label, measured, fraction >= DISK_FRACTION_TARGET)


def check_targets(report: Report) -> list[TargetCheck]:
    """Every target of the issue, for Tidings."""
    large = ("large-put", "large-get-cold", "multipart-put", "multipart-get-cold")
    return [
        small_check(report, "put", SMALL_PUT_TARGET),
        small_check(report, "get", SMALL_GET_TARGET),
        *(disk_check(report, scenario) for scenario in large),
    ]


def footnotes(report: Report) -> list[str]:
    """Method, caveats and failures, printed under the tables."""
    settings = report.settings
    notes = [
        f"{os.cpu_count()} CPUs shared by the server and the clients; 1-minute load average "
        f"{LOAD_AT_START:.2f} before the run, {report.load_after:.2f} after (that one "
        "includes this benchmark's own 8 client processes; other work on the machine skews "
        "the figures).",
        "SDK rows: one client process per client (oss2 for Tidings, boto3 for moto, default "
        "checksums on); lean rows: aiohttp in one process, one keep-alive connection per "
        "client. PUTs write new keys; GETs read "
        f"{settings.get_keys:,} prefilled objects.",
        "cores srv / cli: CPU cores used by the server and by the clients during the run. "
        "Targets are judged on the lean clients where there are some: the SDKs' own CPU "
        "(requests, signing, oss2's crcmod CRC-64 at ~0.5 GB/s) competes with the server "
        "for the same 2 cores, so their rows measure client and server together.",
        f"MB/s = 10^6 bytes/s; large PUT/GET: median of {settings.large_repeats} objects; "
        "'cache dropped': the object's files were evicted from the page cache "
        "(posix_fadvise) before the GET.",
    ]
    disk_read = find(report.results, backend="disk", scenario="disk-read")
    if disk_read is not None and disk_read.note:
        notes.append(f"disk read: {disk_read.note}.")
    if any(r.backend == "moto" and r.note for r in report.results):
        notes.append(
            "moto keeps objects in memory (large ones in unlinked temp files): its "
            "'cache dropped' GETs are from memory."
        )
    for result in report.results:
        if result.samples and len(result.samples) > 1:
            low, high = min(result.samples), max(result.samples)
            if high > 1.3 * low:
                notes.append(
                    f"{result.backend} {result.scenario} ({CLIENT_LABELS[result.client]}): "
                    f"repeats ranged {low:,.0f}–{high:,.0f} MB/s."
                )
        if result.errors:
            notes.append(
                f"! {result.backend} {result.scenario} ({result.clients} {result.client} "
                f"clients): {result.errors} failed request(s), not counted; first: "
                f"{result.first_error}"
            )
    notes.extend(report.notes)
    notes.extend(report.failures)
    return notes


def render(report: Report) -> None:
    """Print the tables, the target checks and the footnotes."""
    sections = [disk_section(report), small_section(report), large_section(report)]
    sections = [section for section in sections if section.rows]
    print_report(
        sections, check_targets(report), footnotes(report), left_columns=3, width=REPORT_WIDTH
    )


def write_json(path: Path, report: Report) -> None:
    """Write settings, every measurement, the target checks and any failures as JSON."""
    document = {
        "settings": dataclasses.asdict(report.settings),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": LOAD_AT_START,
            "load_after": report.load_after,
        },
        "serve_args": os.environ.get("TIDINGS_BENCH_SERVE_ARGS", ""),
        "results": [
            {**dataclasses.asdict(r), "rate": round(r.rate, 1), "mbps": round(r.mbps, 1)}
            for r in report.results
        ],
        "targets": [dataclasses.asdict(check) for check in check_targets(report)],
        "failures": report.failures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1.5 s runs, 16 MiB and 128 MiB objects"
    )
    parser.add_argument("--duration", type=float, help="seconds per 1 KiB run")
    parser.add_argument(
        "--backend", choices=("both", "tidings", "moto"), default="both", help="what to measure"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_KEYS,
        help="run only this scenario (repeatable; the disk baseline comes with the large "
        "ones): " + "; ".join(f"{s.key} = {s.label}" for s in SCENARIOS),
    )
    parser.add_argument(
        "--dir", type=Path, help="where the data directories go (default: the temp directory)"
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    return parser.parse_args(argv)


def selected_scenarios(chosen: Sequence[str] | None) -> tuple[str, ...]:
    """The scenarios to run: all by default; a large one brings the disk baseline along,
    since its figure is a fraction of the disk's."""
    if not chosen:
        return SCENARIO_KEYS
    wanted = set(chosen)
    if wanted & {"large-put", "large-get", "multipart-put", "multipart-get"}:
        wanted.add("disk")
    return tuple(key for key in SCENARIO_KEYS if key in wanted)


class RootedReport(Protocol):
    """What `run_in_root` needs of a benchmark's report."""

    notes: list[str]
    load_after: float


def run_in_root(
    report: RootedReport,
    run_all: Callable[[Any, Path], Awaitable[None]],
    prefix: str,
    directory: Path | None,
) -> None:
    """Run `run_all(report, root)` on a fresh event loop, with `root` a temporary
    directory (under `directory`) removed afterwards; note TIDINGS_BENCH_SERVE_ARGS and
    the load average after the run in the report."""
    if serve_args := os.environ.get("TIDINGS_BENCH_SERVE_ARGS"):
        report.notes.append(f"tidings serve ran with TIDINGS_BENCH_SERVE_ARGS={serve_args!r}.")
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(run_all(report, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.load_after = os.getloadavg()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the results."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.duration:
        settings = dataclasses.replace(settings, duration=args.duration)
    backends = ("tidings", "moto") if args.backend == "both" else (args.backend,)
    report = Report(settings, backends, selected_scenarios(args.scenario))
    run_in_root(report, run_all, "tidings-objects-bench-", args.dir)
    render(report)
    progress("done")
    if args.output:
        write_json(args.output, report)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
