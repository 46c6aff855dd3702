"""Blobs as files under one local directory.

Layout under `root`::

    blobs/3f/a2/3fa2...   a written blob: a header (fileformat), then its bytes
    blobs/3f/a2/3fa2.../  a composed blob: a manifest and hard links to its pieces
    tmp/                  blobs being written or composed, composed blobs being deleted

Two levels of fan-out by id prefix (65,536 leaf directories) keep every directory
small even with hundreds of millions of blobs. tmp/ is on the same filesystem, so a
finished blob moves into place with one atomic rename. Everything in tmp/ belongs to a
write, compose or delete in progress: after a crash it is garbage, which `cleanup`
(run by `open`) removes.

All blocking calls run on a small thread pool of the store's own; the event loop only
coordinates. One store instance per directory and per process: the bookkeeping of
in-flight work (what `cleanup` must spare, which composed blobs are being read) lives
in memory and assumes a single event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tidings.blobs.base import (
    BLOB_ID_PATTERN,
    CHUNK_SIZE,
    READ_CHUNK_SIZE,
    BlobInfo,
    BlobTooLarge,
    BodyTooLong,
    IncompleteBody,
    InvalidRange,
    check_blob_id,
    new_blob_id,
)
from tidings.blobs.fileformat import Header
from tidings.blobs.local_io import (
    BlobSource,
    DirMaker,
    PendingBlob,
    build_composed,
    commit_dir,
    read_info,
    remove_blob,
    remove_path,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Threads for file I/O. Most of their time is spent waiting for the disk (fsync above
# all), so a few more than the cores lets uploads overlap their fsyncs.
IO_THREADS = 8
BLOBS_DIR = "blobs"
TEMP_DIR = "tmp"
# Fan-out: FANOUT_LEVELS directories of FANOUT_WIDTH hex characters each.
FANOUT_LEVELS = 2
FANOUT_WIDTH = 2
TEMP_SUFFIX = ".part"
COMPOSE_SUFFIX = ".compose"
TRASH_SUFFIX = ".trash"


def _info(blob_id: str, header: Header) -> BlobInfo:
    return BlobInfo(
        blob_id=blob_id,
        size=header.size,
        md5_hex=header.md5.hex(),
        crc64=header.crc64,
        part_count=header.part_count,
    )


class LocalBlobStore:
    """A `BlobStore` on a local directory."""

    def __init__(self, root: Path, *, fsync: bool = True, io_threads: int = IO_THREADS) -> None:
        self.root = root
        self.blobs_dir = root / BLOBS_DIR
        self.temp_dir = root / TEMP_DIR
        # Without fsync a crash may lose recent blobs (never expose torn ones: the
        # rename still comes last); for tests and throwaway data.
        self.fsync = fsync
        self._executor = ThreadPoolExecutor(io_threads, thread_name_prefix="tidings-blobs")
        self._dirs = DirMaker(fsync)
        # Names in tmp/ that belong to work in progress, which cleanup() must spare.
        self._in_flight: set[str] = set()
        # Open reads per blob id, and composed blobs deleted while being read, whose
        # pieces are removed when the last of those reads ends.
        self._readers: Counter[str] = Counter()
        self._doomed: dict[str, Path] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self, clean_temp: bool = True) -> None:
        """Create the directories and remove whatever a crash left in tmp/.

        Only the process that owns the data dir (the server) may clean: a CLI command
        opening the same store would delete a running server's uploads in progress.
        """
        await self._run(self._make_dirs)
        if not clean_temp:
            return
        removed = await self.cleanup()
        if removed:
            log.info("removed %d leftover temp entries from %s", removed, self.temp_dir)

    def _make_dirs(self) -> None:
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        """Wait for running file operations, then stop the threads."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    async def cleanup(self) -> int:
        """Remove entries of tmp/ that no operation of this store is using.

        At startup that is everything: temp files of writes cut short by a crash,
        half-built composed blobs, deleted ones not yet emptied. Returns how many
        entries were removed.
        """
        spare = frozenset(self._in_flight)
        return await self._run(self._cleanup, spare)

    def _cleanup(self, spare: frozenset[str]) -> int:
        removed = 0
        with os.scandir(self.temp_dir) as entries:
            for entry in entries:
                if entry.name not in spare:
                    remove_path(Path(entry.path))
                    removed += 1
        return removed

    # -- paths and threads -------------------------------------------------------------

    def path_of(self, blob_id: str) -> Path:
        """Where the blob with this (validated) id lives; never derived from a key."""
        check_blob_id(blob_id)
        levels = [
            blob_id[level * FANOUT_WIDTH : (level + 1) * FANOUT_WIDTH]
            for level in range(FANOUT_LEVELS)
        ]
        return self.blobs_dir.joinpath(*levels, blob_id)

    def _submit(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        # Shielded: a cancelled caller must not make the future look finished while the
        # thread is still working on files the caller's cleanup is about to remove.
        return await asyncio.shield(self._submit(function, *args))

    async def _settle(self, running: asyncio.Future[Any] | None, undo: Callable[[], None]) -> None:
        """Run `undo` in a thread once `running` (the last thread call) has finished."""
        if running is not None:
            await asyncio.wait([running])
        try:
            await self._submit(undo)
        except Exception:
            # The caller is already failing with the error that matters; what is left
            # in tmp/ goes at the next cleanup().
            log.exception("could not remove the traces of a failed blob operation")

    # -- writing -----------------------------------------------------------------------

    async def write(
        self,
        chunks: AsyncIterator[bytes],
        *,
        expected_size: int | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        """Store the bytes of `chunks` as a new blob (see `BlobStore.write`).

        Chunks are gathered into CHUNK_SIZE writes; while one is hashed and written in a
        thread the next is being received, and never more than one is waiting, so
        memory stays near two chunks whatever the body's size.
        """
        if expected_size is not None and expected_size < 0:
            raise ValueError("expected_size must not be negative")
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must not be negative")
        if max_size is not None and expected_size is not None and expected_size > max_size:
            raise BlobTooLarge(max_size)  # refuse before reading a byte
        blob_id = new_blob_id()
        temp_name = blob_id + TEMP_SUFFIX
        pending = PendingBlob(blob_id, self.temp_dir / temp_name, self.fsync)
        self._in_flight.add(temp_name)
        running: asyncio.Future[Any] | None = None
        try:
            running = self._submit(pending.open)
            await asyncio.shield(running)
            received = 0
            buffer = bytearray()
            async for chunk in chunks:
                received += len(chunk)
                if max_size is not None and received > max_size:
                    raise BlobTooLarge(max_size)
                if expected_size is not None and received > expected_size:
                    raise BodyTooLong(expected_size)
                if not buffer and len(chunk) >= CHUNK_SIZE and isinstance(chunk, bytes):
                    data: bytes | bytearray = chunk  # immutable and big enough: no copy
                else:
                    # Copied: a caller may reuse a mutable buffer once it has yielded it.
                    buffer += chunk
                    if len(buffer) < CHUNK_SIZE:
                        continue
                    data, buffer = buffer, bytearray()
                await asyncio.shield(running)
                running = self._submit(pending.append, data)
            if buffer:
                await asyncio.shield(running)
                running = self._submit(pending.append, buffer)
            await asyncio.shield(running)
            if expected_size is not None and received < expected_size:
                raise IncompleteBody(expected_size, received)
            running = self._submit(pending.commit, self.path_of(blob_id), self._dirs)
            header = await asyncio.shield(running)
        except BaseException:
            # Shielded so that even a cancelled write removes its traces before it ends.
            await asyncio.shield(self._settle(running, pending.abort))
            raise
        finally:
            self._in_flight.discard(temp_name)
        return _info(blob_id, header)

    async def compose(self, blob_ids: list[str]) -> BlobInfo:
        """A new blob concatenating `blob_ids` without copying bytes where possible.

        Each part's file is hard-linked into the new blob's directory (a composed part
        contributes its pieces), and a manifest lists the pieces' sizes; `read` follows
        it. Trade-offs: a composed blob is a directory of up to thousands of links
        rather than one file, so ranged reads open a piece at a time and deleting it
        removes many entries; a filesystem without hard links (or across devices) falls
        back to an in-kernel copy of each part. The parts' bytes are never read: the
        CRC is combined from their CRCs and sizes, which is exact, and the MD5 is the
        multipart form (MD5 of the parts' MD5s), which is what OSS reports too.
        """
        if not blob_ids:
            raise ValueError("compose needs at least one blob")
        parts = [(blob_id, self.path_of(blob_id)) for blob_id in blob_ids]
        blob_id = new_blob_id()
        temp_name = blob_id + COMPOSE_SUFFIX
        temp_dir = self.temp_dir / temp_name
        dest = self.path_of(blob_id)
        self._in_flight.add(temp_name)
        running: asyncio.Future[Any] | None = None
        try:
            running = self._submit(build_composed, parts, temp_dir, self.fsync)
            header = await asyncio.shield(running)
            running = self._submit(commit_dir, temp_dir, dest, self._dirs, self.fsync)
            await asyncio.shield(running)
        except BaseException:

            def undo() -> None:
                remove_path(temp_dir)
                remove_path(dest)

            await asyncio.shield(self._settle(running, undo))
            raise
        finally:
            self._in_flight.discard(temp_name)
        return _info(blob_id, header)

    # -- reading -----------------------------------------------------------------------

    async def read(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of a blob (see `BlobStore.read`).

        The next chunk is read in a thread while the consumer handles the current one;
        at most those two chunks are in memory.
        """
        path = self.path_of(blob_id)
        self._readers[blob_id] += 1
        source: BlobSource | None = None
        running: asyncio.Future[Any] | None = None
        try:
            running = self._submit(BlobSource, blob_id, path)
            opened: BlobSource = await asyncio.shield(running)
            source = opened
            stop = opened.size if end is None else end
            if not 0 <= start <= stop <= opened.size:
                raise InvalidRange(start, end, opened.size)
            position = start
            running = None
            if position < stop:
                running = self._submit(opened.read, position, min(READ_CHUNK_SIZE, stop - start))
            while running is not None:
                data: bytes = await asyncio.shield(running)
                position += len(data)
                running = None
                if position < stop:
                    running = self._submit(
                        opened.read, position, min(READ_CHUNK_SIZE, stop - position)
                    )
                yield data
        finally:
            # No awaiting here: this also runs when an abandoned generator is closed. A
            # thread call still running (a prefetch, or the open itself) finishes first.
            release = functools.partial(self._release_reader, blob_id, source)
            if running is not None and not running.done():
                running.add_done_callback(release)
            else:
                release(running)

    def _release_reader(
        self, blob_id: str, source: BlobSource | None, last: asyncio.Future[Any] | None
    ) -> None:
        if last is not None and not last.cancelled() and last.exception() is None:
            result = last.result()
            if source is None and isinstance(result, BlobSource):
                source = result  # opened, but the reader was gone before it saw it
        # (Calling exception() above also marks an abandoned prefetch's error as seen.)
        if source is not None:
            source.close()  # closing descriptors does not wait for the disk
        self._readers[blob_id] -= 1
        if self._readers[blob_id] > 0:
            return
        del self._readers[blob_id]
        trash = self._doomed.pop(blob_id, None)
        if trash is not None:
            # RuntimeError: the store is closed; the next open() empties tmp/.
            with contextlib.suppress(RuntimeError):
                self._executor.submit(self._empty_trash, trash)

    def _empty_trash(self, trash: Path) -> None:
        remove_path(trash)
        self._in_flight.discard(trash.name)

    async def stat(self, blob_id: str) -> BlobInfo:
        """The info of a blob; BlobNotFound if there is none."""
        header = await self._run(read_info, self.path_of(blob_id), blob_id)
        return _info(blob_id, header)

    async def exists(self, blob_id: str) -> bool:
        """Whether a blob with this id exists."""
        return await self._run(os.path.lexists, self.path_of(blob_id))

    async def ids(self) -> AsyncIterator[str]:
        """Every stored blob id, one top-level fan-out directory listed at a time."""
        top_level = await self._run(_list_dir, self.blobs_dir)
        for name in sorted(top_level):
            for blob_id in await self._run(_list_ids, self.blobs_dir / name, FANOUT_LEVELS - 1):
                yield blob_id

    # -- deleting ----------------------------------------------------------------------

    async def delete(self, blob_id: str) -> bool:
        """Delete a blob; returns whether it existed.

        Not fsynced: a delete that a crash undoes leaves an unreferenced blob, which the
        object store's orphan collection (`ids`) finds; it never exposes anything.
        """
        path = self.path_of(blob_id)
        # Unique even if two deletes of one blob race (only one rename can succeed).
        trash_name = f"{blob_id}.{new_blob_id()[:8]}{TRASH_SUFFIX}"
        self._in_flight.add(trash_name)
        try:
            outcome = await self._run(remove_blob, path, self.temp_dir / trash_name)
        except BaseException:
            self._in_flight.discard(trash_name)
            raise
        if not isinstance(outcome, Path):
            self._in_flight.discard(trash_name)
            return outcome
        if self._readers[blob_id] > 0:
            self._doomed[blob_id] = outcome  # the last reader empties it
        else:
            await self._run(self._empty_trash, outcome)
        return True


def _list_dir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _list_ids(directory: Path, depth: int) -> list[str]:
    """Blob ids in the fan-out tree below `directory`, `depth` levels down."""
    if depth == 0:
        return [name for name in _list_dir(directory) if BLOB_ID_PATTERN.fullmatch(name)]
    found: list[str] = []
    for name in _list_dir(directory):
        found.extend(_list_ids(directory / name, depth - 1))
    return found
