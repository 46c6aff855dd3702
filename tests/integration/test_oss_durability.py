"""Object durability under `kill -9`: every acknowledged upload is intact, nothing torn shows.

The proof, in four steps:

1. Load. Six threads, each with its own `oss2` client (CRC checks on), upload unique
   keys in turn of four kinds: small PutObjects (0-64 KiB), large ones (1-3 MiB),
   multipart uploads (2-4 parts of 256 KiB and a short last one) and appendable objects
   (2-4 appends of up to 300 KiB, each checked by oss2 against the running CRC). Every
   body is a pure function of its key's seed, so the check can regenerate it. A thread
   records a step as acknowledged only after the SDK call returned success (the server
   replied 2xx), with the ETag and CRC-64 the reply carried.
2. Crash. While the load runs the server gets SIGKILL. A thread stops at its first
   exception, so each has at most one upload in flight: a PutObject, a part or the
   completion of a multipart upload, or one append.
3. Recovery. The server restarts on the same data dir; before it listens it has swept
   blobs no row references and collected released ones.
4. Checks, with a fresh client:
   - every acknowledged upload is listed and intact: HEAD gives the size, ETag and CRC-64
     acknowledged (and the CRC-64 and, for Normal and Multipart objects, the ETag match
     what the bytes must give), and a full GET returns exactly the bytes sent, which oss2
     verifies against the CRC-64 as well;
   - every listed key was acknowledged or in flight, and is whole: an in-flight PutObject
     or multipart upload is absent or complete, an appendable object has the length of
     its last acknowledged append or of the one in flight, never anything between;
   - the only multipart uploads left open are ones in flight at the crash;
   - no orphaned blob: the blob ids on disk are exactly those the metadata references
     (listed objects plus the parts of open uploads), and tmp/ is empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2
import pytest

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

pytestmark = pytest.mark.slow

KIB = 1024
MIB = 1024 * KIB
BUCKET = "durable"
THREADS = 6
KINDS = ("small", "large", "multipart", "append")
LOAD_SECONDS = 3.0
MIN_ACKS_BEFORE_CRASH = 30
LOAD_DEADLINE = 20.0
JOIN_TIMEOUT = 15.0
PART_SIZE = 256 * KIB
BLOB_ID = re.compile(r"[0-9a-f]{32}")


def crc64(data: bytes) -> int:
    """CRC-64 as oss2 computes it (its own crcmod code, not the server's)."""
    crc = oss2.utils.Crc64(0)
    crc.update(data)
    return int(crc.crc)


@dataclass(frozen=True)
class Upload:
    """One key's upload: its kind and the sizes of its pieces (parts or appends)."""

    key: str
    kind: str
    seed: int
    sizes: tuple[int, ...]

    def body(self, length: int | None = None) -> bytes:
        """The bytes of the whole upload (or its first `length` bytes)."""
        data = random.Random(self.seed).randbytes(sum(self.sizes))
        return data if length is None else data[:length]

    def pieces(self) -> list[bytes]:
        data, start, pieces = self.body(), 0, []
        for size in self.sizes:
            pieces.append(data[start : start + size])
            start += size
        return pieces

    def expected_etag(self) -> str | None:
        """The ETag the finished object's bytes determine (appendable ETags are opaque)."""
        if self.kind in ("small", "large"):
            return hashlib.md5(self.body()).hexdigest().upper()
        if self.kind == "multipart":
            digests = b"".join(hashlib.md5(p).digest() for p in self.pieces())
            return f"{hashlib.md5(digests).hexdigest().upper()}-{len(self.sizes)}"
        return None

    def allowed_lengths(self, acked: int | None, finished: bool) -> set[int | None]:
        """Lengths the object may have after the crash (None: absent)."""
        if finished:
            return {sum(self.sizes)}
        if self.kind != "append":
            return {None, sum(self.sizes)}  # in flight: all or nothing
        # The appends before the one in flight are acknowledged: that length, or one
        # more whole append; nothing in between.
        done = acked or 0
        if done >= sum(self.sizes):
            return {acked}
        boundaries = [sum(self.sizes[: i + 1]) for i in range(len(self.sizes))]
        following = next(b for b in boundaries if b > done)
        return {acked, following}


def plan(kind: str, key: str, rng: random.Random) -> Upload:
    """A fresh upload of `kind` with random sizes."""
    sizes: tuple[int, ...]
    if kind == "small":
        sizes = (rng.randint(0, 64 * KIB),)
    elif kind == "large":
        sizes = (rng.randint(MIB + 1, 3 * MIB),)
    elif kind == "multipart":
        sizes = (*[PART_SIZE] * rng.randint(2, 4), rng.randint(1, 200 * KIB))
    else:
        sizes = tuple(rng.randint(1, 300 * KIB) for _ in range(rng.randint(2, 4)))
    return Upload(key, kind, rng.getrandbits(63), sizes)


@dataclass(frozen=True)
class Ack:
    """What the server's last acknowledgement for a key said."""

    length: int
    etag: str
    crc: int | None


@dataclass
class Ledger:
    """What the clients know for certain, shared by every load thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: dict[str, Upload] = field(default_factory=dict)
    acked: dict[str, Ack] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    stops: list[tuple[str, str, int]] = field(default_factory=list)  # thread, error, time

    def start(self, upload: Upload) -> None:
        with self.lock:
            self.started[upload.key] = upload

    def ack(self, key: str, length: int, etag: str, crc: int | None) -> None:
        with self.lock:
            self.acked[key] = Ack(length, etag, crc)

    def finish(self, key: str) -> None:
        with self.lock:
            self.finished.add(key)

    def stop(self, thread: str, error: BaseException) -> None:
        with self.lock:
            self.stops.append(
                (thread, f"{type(error).__name__}: {error}"[:300], time.monotonic_ns())
            )

    def finished_kinds(self) -> Counter[str]:
        with self.lock:
            return Counter(self.started[key].kind for key in self.finished)


# -- load -------------------------------------------------------------------------------


def client(server: ServerProcess) -> Any:
    """An oss2 Bucket of its own (one per thread) with CRC checks on."""
    return oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.oss_url, BUCKET)


def put(bucket: Any, upload: Upload, ledger: Ledger) -> None:
    body = upload.body()
    result = bucket.put_object(upload.key, body)  # oss2 checks the reply's CRC-64
    ledger.ack(upload.key, len(body), result.etag, result.crc)


def multipart(bucket: Any, upload: Upload, ledger: Ledger) -> None:
    upload_id = bucket.init_multipart_upload(upload.key).upload_id
    parts = [
        oss2.models.PartInfo(number, bucket.upload_part(upload.key, upload_id, number, data).etag)
        for number, data in enumerate(upload.pieces(), start=1)
    ]
    result = bucket.complete_multipart_upload(upload.key, upload_id, parts)
    ledger.ack(upload.key, sum(upload.sizes), result.etag, result.crc)


def append(bucket: Any, upload: Upload, ledger: Ledger) -> None:
    position, crc = 0, None
    for piece in upload.pieces():
        # With init_crc oss2 checks the object's CRC-64 after each append.
        result = bucket.append_object(upload.key, position, piece, init_crc=crc)
        position, crc = result.next_position, result.crc
        ledger.ack(upload.key, position, result.etag, crc)


PERFORM: dict[str, Callable[[Any, Upload, Ledger], None]] = {
    "small": put,
    "large": put,
    "multipart": multipart,
    "append": append,
}


def worker(server: ServerProcess, index: int, ledger: Ledger, stop: threading.Event) -> None:
    """Upload keys of every kind in turn until stopped or failing (the crash)."""
    name = f"t{index}"
    try:
        bucket = client(server)
        rng = random.Random(index)
        n = 0
        while not stop.is_set():
            kind = KINDS[(index + n) % len(KINDS)]
            upload = plan(kind, f"{name}/{n:04d}-{kind}", rng)
            ledger.start(upload)
            PERFORM[kind](bucket, upload, ledger)
            ledger.finish(upload.key)
            n += 1
    except Exception as error:  # the crash (or anything else): not acknowledged
        ledger.stop(name, error)


def wait_for_load(ledger: Ledger) -> None:
    """Let the load run LOAD_SECONDS, and until every kind finished at least once."""
    started = time.monotonic()
    while True:
        time.sleep(0.05)
        kinds = ledger.finished_kinds()
        busy = sum(kinds.values()) >= MIN_ACKS_BEFORE_CRASH and all(kinds[k] for k in KINDS)
        if busy and time.monotonic() - started >= LOAD_SECONDS:
            return
        assert time.monotonic() - started < LOAD_DEADLINE, f"load too slow: {kinds}"


# -- checks -----------------------------------------------------------------------------


def check_object(bucket: Any, upload: Upload, ack: Ack | None, length: int) -> None:
    """The object holds exactly the first `length` bytes of the upload, consistently."""
    expected = upload.body(length)
    head = bucket.head_object(upload.key)
    assert head.content_length == length, upload.key
    assert head.server_crc == crc64(expected), f"{upload.key}: CRC-64 of HEAD"
    if ack is not None and ack.length == length:
        assert head.etag == ack.etag, f"{upload.key}: ETag differs from the acknowledged one"
        assert ack.crc in (None, head.server_crc), f"{upload.key}: acknowledged CRC-64"
    if length == sum(upload.sizes) and upload.expected_etag() is not None:
        assert head.etag == upload.expected_etag(), f"{upload.key}: ETag of the bytes"
    result = bucket.get_object(upload.key)
    got = result.read()  # oss2 raises InconsistentError if the bytes' CRC-64 differs
    assert got == expected, f"{upload.key}: bytes differ"
    assert result.etag == head.etag


def blob_ids_on_disk(data_dir: Path) -> set[str]:
    """Blob ids in the local blob store's fan-out tree (a composed blob is a directory)."""
    root = data_dir / "blobs" / "blobs"
    return {p.name for p in root.glob("*/*/*") if BLOB_ID.fullmatch(p.name)}


def referenced_blob_ids(data_dir: Path) -> set[str]:
    """Blob ids the metadata refers to: object versions and parts of open uploads."""
    uri = f"file:{data_dir / 'tidings.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute(
            "SELECT blob_id FROM object_versions WHERE blob_id IS NOT NULL"
            " UNION ALL SELECT blob_id FROM multipart_parts"
        ).fetchall()
    return {row[0] for row in rows}


def test_acknowledged_uploads_survive_sigkill(fresh_server: ServerProcess) -> None:
    began = time.monotonic()
    fresh_server.start()
    client(fresh_server).create_bucket()
    ledger = Ledger()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=worker, args=(fresh_server, i, ledger, stop), name=f"load-{i}", daemon=True
        )
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    wait_for_load(ledger)
    crash_ns = time.monotonic_ns()
    fresh_server.kill()
    stop.set()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} did not stop after the crash"

    # What the crash left, for the figures: temp files of cut writes, unreferenced blobs.
    data_dir = fresh_server.data_dir
    temp_at_crash = len(list((data_dir / "blobs" / "tmp").iterdir()))
    blobs_at_crash = len(blob_ids_on_disk(data_dir))

    fresh_server.start()
    bucket = client(fresh_server)
    listed = {o.key: o for o in oss2.ObjectIterator(bucket)}
    open_uploads = list(oss2.MultipartUploadIterator(bucket))
    in_flight = {key: u for key, u in ledger.started.items() if key not in ledger.finished}

    unknown = sorted(set(listed) - set(ledger.started))
    assert not unknown, f"listed keys nobody uploaded: {unknown[:5]}"
    lost = sorted(key for key in ledger.acked if key not in listed)
    assert not lost, f"acknowledged uploads missing after restart: {lost[:5]}"
    committed_in_flight: list[str] = []
    for key, upload in ledger.started.items():
        ack = ledger.acked.get(key)
        length = listed[key].size if key in listed else None
        allowed = upload.allowed_lengths(ack.length if ack else None, key in ledger.finished)
        assert length in allowed, f"{key} ({upload.kind}) is {length} bytes, not one of {allowed}"
        if key in in_flight and length != (ack.length if ack else None):
            committed_in_flight.append(key)  # the step cut by the crash had committed
        if length is None:
            continue
        check_object(bucket, upload, ack, length)
        assert listed[key].etag == bucket.head_object(key).etag, f"{key}: listing vs HEAD"
    stray = sorted(u.key for u in open_uploads if u.key not in in_flight)
    assert not stray, f"multipart uploads left open that were completed or never begun: {stray}"

    # Orphans: what the start-up sweep and collection left must be exactly what rows use.
    on_disk = blob_ids_on_disk(data_dir)
    referenced = referenced_blob_ids(data_dir)
    open_parts = sum(len(list(oss2.PartIterator(bucket, u.key, u.upload_id))) for u in open_uploads)
    temp_left = list((data_dir / "blobs" / "tmp").iterdir())
    elapsed = time.monotonic() - began
    kinds = Counter(u.kind for u in in_flight.values())
    early_stops = [s for s in ledger.stops if s[2] < crash_ns]
    print(
        f"\ndurability: acknowledged uploads={len(ledger.finished)}"
        f" {dict(ledger.finished_kinds())} (appends acked on unfinished keys:"
        f" {sum(1 for k in in_flight if k in ledger.acked)})"
        f" | in flight={len(in_flight)} {dict(kinds)}, of which committed"
        f" {len(committed_in_flight)}, open uploads={len(open_uploads)}"
        f" | listed={len(listed)}"
        f" | at the crash: blobs={blobs_at_crash} tmp entries={temp_at_crash}"
        f" | after restart: blobs={len(on_disk)} = listed {len(listed)} + open parts"
        f" {open_parts} (referenced {len(referenced)}), tmp entries={len(temp_left)}"
        f" | {elapsed:.1f} s"
    )
    assert not early_stops, f"load threads failed before the crash: {early_stops}"
    assert on_disk == referenced, (
        f"orphaned blobs: {sorted(on_disk - referenced)[:5]},"
        f" missing blobs: {sorted(referenced - on_disk)[:5]}"
    )
    # Small objects keep their bytes in their row: only the others have a blob each.
    with_blobs = sum(
        1 for info in listed.values() if info.size > 64 * 1024 or info.type != "Normal"
    )
    assert len(on_disk) <= len(listed) + open_parts
    assert len(on_disk) >= with_blobs
    assert not temp_left, f"temp entries survived the restart: {temp_left[:5]}"
