"""The local blob store: round trips, ranges, refusals, atomicity, compose, deletes."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.blobs import (
    CHUNK_SIZE,
    READ_CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    BodyTooLong,
    CorruptBlob,
    IncompleteBody,
    InvalidBlobId,
    InvalidRange,
    LocalBlobStore,
    crc64,
    local,
    local_io,
)
from tidings.blobs.base import BLOB_ID_PATTERN, multipart_md5
from tidings.blobs.fileformat import HEADER_SIZE, MANIFEST_NAME


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    blobs = LocalBlobStore(tmp_path / "data")
    await blobs.open()
    yield blobs
    await blobs.close()


async def stream(data: bytes, step: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), step):
        yield data[offset : offset + step]


async def read_all(
    store: LocalBlobStore, blob_id: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(blob_id, start, end)])


def temp_entries(store: LocalBlobStore) -> list[str]:
    return sorted(os.listdir(store.temp_dir))


async def all_ids(store: LocalBlobStore) -> list[str]:
    return sorted([blob_id async for blob_id in store.ids()])


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def wait_until_empty(store: LocalBlobStore) -> None:
    for _ in range(200):
        if not temp_entries(store):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tmp/ still holds {temp_entries(store)}")


# -- writing and reading ---------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17],
)
@pytest.mark.parametrize("step", [1000, 64 * 1024, 3 * CHUNK_SIZE])
async def test_round_trip(store: LocalBlobStore, size: int, step: int) -> None:
    data = data_of(size, seed=size)
    info = await store.write(stream(data, step))
    assert BLOB_ID_PATTERN.fullmatch(info.blob_id)
    assert info.size == size
    assert info.md5_hex == hashlib.md5(data).hexdigest()
    assert info.crc64 == crc64(data)
    assert info.part_count == 0
    assert info.etag == hashlib.md5(data).hexdigest().upper()
    chunks = [chunk async for chunk in store.read(info.blob_id)]
    assert all(0 < len(chunk) <= READ_CHUNK_SIZE for chunk in chunks)
    assert b"".join(chunks) == data
    assert await store.stat(info.blob_id) == info
    assert await store.exists(info.blob_id)
    assert temp_entries(store) == []


async def test_store_satisfies_the_protocol(store: LocalBlobStore) -> None:
    assert isinstance(store, BlobStore)


async def test_same_bytes_get_different_ids(store: LocalBlobStore) -> None:
    first = await store.write(stream(b"same"))
    second = await store.write(stream(b"same"))
    assert first.blob_id != second.blob_id
    assert await all_ids(store) == sorted([first.blob_id, second.blob_id])


async def test_blob_files_fan_out_by_id_prefix(store: LocalBlobStore) -> None:
    info = await store.write(stream(b"x"))
    path = store.path_of(info.blob_id)
    assert path.relative_to(store.blobs_dir).parts == (
        info.blob_id[:2],
        info.blob_id[2:4],
        info.blob_id,
    )
    assert path.stat().st_size == HEADER_SIZE + 1


async def test_ranges(store: LocalBlobStore) -> None:
    data = data_of(2 * CHUNK_SIZE + CHUNK_SIZE // 2)
    info = await store.write(stream(data))
    size = len(data)
    for start, end in [
        (0, None),
        (0, 0),
        (size, None),
        (size, size),
        (5, 6),
        (CHUNK_SIZE - 3, CHUNK_SIZE + 3),
        (1, size - 1),
        (size - 1, None),
        (CHUNK_SIZE, 2 * CHUNK_SIZE),
    ]:
        assert await read_all(store, info.blob_id, start, end) == data[start:end]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (11, None), (0, 11), (5, 4)])
async def test_invalid_ranges(store: LocalBlobStore, start: int, end: int | None) -> None:
    info = await store.write(stream(b"0123456789"))
    with pytest.raises(InvalidRange):
        await read_all(store, info.blob_id, start, end)
    assert store._readers == {}  # the failed read released its bookkeeping


async def test_reused_mutable_buffer_is_copied(store: LocalBlobStore) -> None:
    buffer = bytearray(1000)

    async def reusing() -> AsyncIterator[bytes]:
        for value in range(5):
            buffer[:] = bytes([value]) * 1000
            yield buffer  # type: ignore[misc]  # a bytearray, as some producers do

    info = await store.write(reusing())
    expected = b"".join(bytes([value]) * 1000 for value in range(5))
    assert await read_all(store, info.blob_id) == expected


async def test_concurrent_writes(store: LocalBlobStore) -> None:
    bodies = [data_of(100_000 + n * 12_345, seed=n) for n in range(16)]
    infos = await asyncio.gather(*(store.write(stream(body)) for body in bodies))
    for body, info in zip(bodies, infos, strict=True):
        assert await read_all(store, info.blob_id) == body
        assert info.crc64 == crc64(body)


async def test_blobs_survive_reopening(tmp_path: Path) -> None:
    first = LocalBlobStore(tmp_path / "data")
    await first.open()
    data = data_of(200_000)
    info = await first.write(stream(data))
    await first.close()
    second = LocalBlobStore(tmp_path / "data")
    await second.open()
    try:
        assert await second.stat(info.blob_id) == info
        assert await read_all(second, info.blob_id) == data
    finally:
        await second.close()


@pytest.mark.parametrize(
    "bad",
    ["", "../../etc/passwd", "0" * 31, "0" * 33, "A" * 32, "0" * 30 + "/x", "ü" * 32, "..", "."],
)
async def test_refuses_ids_it_did_not_make(store: LocalBlobStore, bad: str) -> None:
    with pytest.raises(InvalidBlobId):
        await store.stat(bad)
    with pytest.raises(InvalidBlobId):
        await store.exists(bad)
    with pytest.raises(InvalidBlobId):
        await store.delete(bad)
    with pytest.raises(InvalidBlobId):
        await read_all(store, bad)
    with pytest.raises(InvalidBlobId):
        await store.compose([bad])


async def test_unknown_blob(store: LocalBlobStore) -> None:
    unknown = "0123456789abcdef" * 2
    assert not await store.exists(unknown)
    with pytest.raises(BlobNotFound):
        await store.stat(unknown)
    with pytest.raises(BlobNotFound):
        await read_all(store, unknown)
    assert await store.delete(unknown) is False


# -- refusals and atomicity --------------------------------------------------------------


class CountingStream:
    """Yields `data` in steps and remembers how far the consumer pulled."""

    def __init__(self, data: bytes, step: int = 64 * 1024) -> None:
        self.data = data
        self.step = step
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for offset in range(0, len(self.data), self.step):
            chunk = self.data[offset : offset + self.step]
            self.pulled += len(chunk)
            yield chunk


async def assert_nothing_stored(store: LocalBlobStore) -> None:
    assert await all_ids(store) == []
    assert temp_entries(store) == []


async def test_max_size_refusal_stops_reading(store: LocalBlobStore) -> None:
    source = CountingStream(data_of(5 * CHUNK_SIZE))
    with pytest.raises(BlobTooLarge) as refused:
        await store.write(aiter(source), max_size=2 * CHUNK_SIZE)
    assert refused.value.max_size == 2 * CHUNK_SIZE
    assert source.pulled <= 2 * CHUNK_SIZE + source.step
    await assert_nothing_stored(store)


async def test_max_size_is_inclusive(store: LocalBlobStore) -> None:
    info = await store.write(stream(b"x" * 100), max_size=100)
    assert info.size == 100


async def test_expected_size_above_max_size_is_refused_unread(store: LocalBlobStore) -> None:
    source = CountingStream(b"x" * 100)
    with pytest.raises(BlobTooLarge):
        await store.write(aiter(source), expected_size=100, max_size=99)
    assert source.pulled == 0
    await assert_nothing_stored(store)


async def test_short_body(store: LocalBlobStore) -> None:
    with pytest.raises(IncompleteBody) as refused:
        await store.write(stream(data_of(CHUNK_SIZE + 5)), expected_size=CHUNK_SIZE + 6)
    assert (refused.value.expected, refused.value.received) == (CHUNK_SIZE + 6, CHUNK_SIZE + 5)
    await assert_nothing_stored(store)


async def test_long_body(store: LocalBlobStore) -> None:
    with pytest.raises(BodyTooLong):
        await store.write(stream(data_of(3 * CHUNK_SIZE)), expected_size=CHUNK_SIZE)
    await assert_nothing_stored(store)


async def test_exact_expected_size(store: LocalBlobStore) -> None:
    info = await store.write(stream(b"abc"), expected_size=3, max_size=3)
    assert await read_all(store, info.blob_id) == b"abc"


async def test_negative_limits_are_programming_errors(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError):
        await store.write(stream(b""), expected_size=-1)
    with pytest.raises(ValueError):
        await store.write(stream(b""), max_size=-1)


async def test_stream_failing_midway_leaves_nothing(store: LocalBlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield data_of(3 * CHUNK_SIZE)
        yield b"more"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.write(broken())
    await assert_nothing_stored(store)


async def test_cancelled_write_leaves_nothing(store: LocalBlobStore) -> None:
    sent = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield data_of(2 * CHUNK_SIZE + 10)
        sent.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b"never"

    task = asyncio.create_task(store.write(stalled()))
    await sent.wait()
    assert len(temp_entries(store)) == 1  # the write is under way in tmp/
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_nothing_stored(store)


async def test_write_cancelled_during_commit_leaves_nothing(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold the commit's thread right after the rename (at the directory fsync), cancel
    # the caller there, then let the thread finish: the blob must be taken back.
    renamed = threading.Event()
    proceed = threading.Event()
    real_fsync_dir = local_io.fsync_dir

    def held_fsync_dir(path: Path) -> None:
        if any(entry.is_file() for entry in path.iterdir()):
            renamed.set()
            proceed.wait(10)
        real_fsync_dir(path)

    monkeypatch.setattr(local_io, "fsync_dir", held_fsync_dir)
    task = asyncio.create_task(store.write(stream(b"almost stored")))
    assert await asyncio.to_thread(renamed.wait, 10)
    assert len(await all_ids(store)) == 1  # renamed into place, not yet acknowledged
    task.cancel()
    await asyncio.sleep(0.05)
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_nothing_stored(store)


async def test_open_removes_leftovers_of_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = LocalBlobStore(root)
    await first.open()
    kept = await first.write(stream(b"kept"))
    await first.close()
    temp = root / "tmp"
    (temp / ("ab" * 16 + ".part")).write_bytes(b"half a body")
    (temp / ("cd" * 16 + ".compose")).mkdir()
    (temp / ("cd" * 16 + ".compose") / "0").write_bytes(b"piece")
    (temp / ("ef" * 16 + ".1234abcd.trash")).mkdir()
    second = LocalBlobStore(root)
    await second.open()
    try:
        assert temp_entries(second) == []
        assert await all_ids(second) == [kept.blob_id]
        assert await read_all(second, kept.blob_id) == b"kept"
    finally:
        await second.close()


async def test_cleanup_spares_writes_in_progress(store: LocalBlobStore) -> None:
    (store.temp_dir / "stale.part").write_bytes(b"old")
    release = asyncio.Event()
    halfway = asyncio.Event()
    body = data_of(3 * CHUNK_SIZE)

    async def slow() -> AsyncIterator[bytes]:
        yield body[: 2 * CHUNK_SIZE]
        halfway.set()
        await release.wait()
        yield body[2 * CHUNK_SIZE :]

    task = asyncio.create_task(store.write(slow()))
    await halfway.wait()
    assert await store.cleanup() == 1
    assert len(temp_entries(store)) == 1  # the write's own temp file
    release.set()
    info = await task
    assert await read_all(store, info.blob_id) == body
    assert temp_entries(store) == []


# -- compose -----------------------------------------------------------------------------


async def write_parts(store: LocalBlobStore, sizes: list[int]) -> tuple[list[str], list[bytes]]:
    bodies = [data_of(size, seed=index) for index, size in enumerate(sizes)]
    infos = [await store.write(stream(body)) for body in bodies]
    return [info.blob_id for info in infos], bodies


async def test_compose_reads_back_as_the_concatenation(store: LocalBlobStore) -> None:
    sizes = [CHUNK_SIZE + 7, 0, 5, 2 * CHUNK_SIZE, 100_000]
    ids, bodies = await write_parts(store, sizes)
    whole = b"".join(bodies)
    info = await store.compose(ids)
    assert info.size == len(whole)
    assert info.crc64 == crc64(whole)
    assert info.md5_hex == multipart_md5([hashlib.md5(body).hexdigest() for body in bodies])
    assert info.part_count == len(sizes)
    assert info.etag == f"{info.md5_hex.upper()}-{len(sizes)}"
    assert await store.stat(info.blob_id) == info
    chunks = [chunk async for chunk in store.read(info.blob_id)]
    assert b"".join(chunks) == whole
    assert all(len(chunk) == CHUNK_SIZE for chunk in chunks[:-1])  # chunks span parts
    boundary = sizes[0]
    for start, end in [(boundary - 3, boundary + 3), (boundary, boundary + 5), (1, len(whole))]:
        assert await read_all(store, info.blob_id, start, end) == whole[start:end]
    assert temp_entries(store) == []


async def test_compose_links_instead_of_copying(store: LocalBlobStore) -> None:
    ids, _ = await write_parts(store, [1000, 2000])
    info = await store.compose(ids)
    composed = store.path_of(info.blob_id)
    for index, part in enumerate(ids):
        piece = (composed / str(index)).stat()
        assert piece.st_ino == store.path_of(part).stat().st_ino
        assert piece.st_nlink == 2


async def test_compose_reads_headers_not_bytes(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, bodies = await write_parts(store, [CHUNK_SIZE, CHUNK_SIZE, 17])
    read_bytes = 0
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        nonlocal read_bytes
        data = real_pread(fd, length, offset)
        read_bytes += len(data)
        return data

    monkeypatch.setattr(local_io.os, "pread", counting_pread)
    info = await store.compose(ids)
    assert read_bytes <= len(ids) * HEADER_SIZE
    monkeypatch.undo()
    assert info.crc64 == crc64(b"".join(bodies))


async def test_compose_falls_back_to_copies(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, bodies = await write_parts(store, [3000, CHUNK_SIZE + 1])

    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(local_io.os, "link", no_links)
    info = await store.compose(ids)
    monkeypatch.undo()
    piece = (store.path_of(info.blob_id) / "0").stat()
    assert piece.st_ino != store.path_of(ids[0]).stat().st_ino
    assert await read_all(store, info.blob_id) == b"".join(bodies)
    assert info.crc64 == crc64(b"".join(bodies))


async def test_parts_and_composed_blob_are_independent(store: LocalBlobStore) -> None:
    ids, bodies = await write_parts(store, [5000, 7000])
    info = await store.compose(ids)
    for part in ids:
        assert await store.delete(part)
    assert await read_all(store, info.blob_id) == b"".join(bodies)
    again_ids, again_bodies = await write_parts(store, [10, 20])
    other = await store.compose(again_ids)
    assert await store.delete(other.blob_id)
    for part, body in zip(again_ids, again_bodies, strict=True):
        assert await read_all(store, part) == body
    assert not await store.exists(other.blob_id)
    assert temp_entries(store) == []


async def test_compose_of_composed_blobs_flattens(store: LocalBlobStore) -> None:
    ids, bodies = await write_parts(store, [100, 200, 300])
    inner = await store.compose(ids[:2])
    outer = await store.compose([inner.blob_id, ids[2], ids[0]])
    whole = bodies[0] + bodies[1] + bodies[2] + bodies[0]
    assert outer.crc64 == crc64(whole)
    assert outer.part_count == 3
    assert outer.md5_hex == multipart_md5(
        [inner.md5_hex, hashlib.md5(bodies[2]).hexdigest(), hashlib.md5(bodies[0]).hexdigest()]
    )
    pieces = sorted(os.listdir(store.path_of(outer.blob_id)))
    assert pieces == ["0", "1", "2", "3", MANIFEST_NAME]
    await store.delete(inner.blob_id)
    assert await read_all(store, outer.blob_id) == whole


async def test_compose_with_a_missing_part_leaves_nothing(store: LocalBlobStore) -> None:
    ids, _ = await write_parts(store, [10, 10])
    await store.delete(ids[1])
    with pytest.raises(BlobNotFound) as missing:
        await store.compose(ids)
    assert missing.value.blob_id == ids[1]
    assert await all_ids(store) == [ids[0]]
    assert temp_entries(store) == []


async def test_compose_needs_parts(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError):
        await store.compose([])


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=5),
    bounds=st.tuples(st.integers(0, 16000), st.integers(0, 16000)),
)
def test_composed_ranges(sizes: list[int], bounds: tuple[int, int]) -> None:
    async def scenario(root: Path) -> None:
        blobs = LocalBlobStore(root, fsync=False)
        await blobs.open()
        try:
            ids, bodies = await write_parts(blobs, sizes)
            whole = b"".join(bodies)
            info = await blobs.compose(ids)
            start, end = sorted(min(bound, len(whole)) for bound in bounds)
            assert await read_all(blobs, info.blob_id, start, end) == whole[start:end]
        finally:
            await blobs.close()

    with tempfile.TemporaryDirectory() as root:
        asyncio.run(scenario(Path(root)))


# -- deleting and reading concurrently ---------------------------------------------------


async def test_delete(store: LocalBlobStore) -> None:
    info = await store.write(stream(b"bye"))
    assert await store.delete(info.blob_id) is True
    assert await store.delete(info.blob_id) is False
    assert not await store.exists(info.blob_id)
    with pytest.raises(BlobNotFound):
        await read_all(store, info.blob_id)


async def test_reading_goes_on_after_delete(store: LocalBlobStore) -> None:
    data = data_of(4 * CHUNK_SIZE)
    info = await store.write(stream(data))
    reader = store.read(info.blob_id)
    first = await anext(reader)
    await store.delete(info.blob_id)
    rest = b"".join([chunk async for chunk in reader])
    assert first + rest == data


async def test_reading_a_composed_blob_goes_on_after_delete(store: LocalBlobStore) -> None:
    ids, bodies = await write_parts(store, [CHUNK_SIZE] * 4)
    info = await store.compose(ids)
    for part in ids:
        await store.delete(part)
    reader = store.read(info.blob_id)
    first = await anext(reader)
    assert await store.delete(info.blob_id)
    assert not await store.exists(info.blob_id)
    assert len(temp_entries(store)) == 1  # kept in tmp/ for the reader
    assert await store.cleanup() == 0  # and spared by cleanup
    rest = b"".join([chunk async for chunk in reader])
    assert first + rest == b"".join(bodies)
    await wait_until_empty(store)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_abandoned_read_closes_its_files(store: LocalBlobStore) -> None:
    ids, _ = await write_parts(store, [3 * CHUNK_SIZE, CHUNK_SIZE])
    info = await store.compose(ids)
    before = open_descriptors()
    for blob_id in (ids[0], info.blob_id):
        reader = store.read(blob_id)
        await anext(reader)
        await reader.aclose()
    for _ in range(100):  # a prefetch still running closes the files when it ends
        if open_descriptors() == before:
            break
        await asyncio.sleep(0.01)
    assert open_descriptors() == before
    assert store._readers == {}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_read_cancelled_while_opening_closes_its_files(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = await store.write(stream(b"data"))
    opening = threading.Event()

    class SlowSource(local.BlobSource):
        def __init__(self, blob_id: str, path: Path) -> None:
            super().__init__(blob_id, path)
            opening.set()
            time.sleep(0.2)

    monkeypatch.setattr(local, "BlobSource", SlowSource)
    before = open_descriptors()
    task = asyncio.create_task(anext(store.read(info.blob_id)))
    assert await asyncio.to_thread(opening.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if open_descriptors() == before and not store._readers:
            break
        await asyncio.sleep(0.01)
    assert open_descriptors() == before
    assert store._readers == {}


async def test_corrupt_blobs_are_reported(store: LocalBlobStore) -> None:
    info = await store.write(stream(data_of(10_000)))
    path = store.path_of(info.blob_id)
    with path.open("r+b") as file:
        file.truncate(HEADER_SIZE + 5_000)
    with pytest.raises(CorruptBlob):
        await read_all(store, info.blob_id)
    with path.open("r+b") as file:
        file.write(b"JUNK")
    with pytest.raises(CorruptBlob):
        await store.stat(info.blob_id)


def test_no_path_is_built_from_anything_but_an_id(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    blob_id = "0123456789abcdef" * 2
    assert blobs.path_of(blob_id).is_relative_to(blobs.blobs_dir)
    with pytest.raises(InvalidBlobId):
        blobs.path_of("../" * 10 + "etc")
