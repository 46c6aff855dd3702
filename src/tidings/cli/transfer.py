"""Moving object bodies between local files and the store, for `tidings object`.

An upload reads a file (or stdin) chunk by chunk in a worker thread and goes through the
same blob store path as a PutObject (temp file, fsync, rename, then the metadata commit),
or through a multipart upload when the file is too large for one. A download is written
to a temp file beside the destination that replaces it only once every byte arrived and
the CRC-64 matched. A progress bar on stderr shows either, when wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tidings.app import Tidings
from tidings.blobs.base import CHUNK_SIZE, BlobTooLarge, BodyTooLong, IncompleteBody
from tidings.blobs.checksums import crc64
from tidings.errors import ServiceError
from tidings.object_models import Bucket, ObjectVersion, WriteOutcome
from tidings.services.multipart import MAX_PART_NUMBER, CompletedPart
from tidings.services.objects import ObjectAttrs

# Progress bars appear by themselves only on a terminal and only for transfers at least
# this large (or of unknown size): a small copy is over before a bar would be readable.
PROGRESS_THRESHOLD = 8 * 1024 * 1024
# Part size for files too large for one PutObject (and the unit of --part-size hints).
DEFAULT_PART_SIZE = 64 * 1024 * 1024


# -- progress ----------------------------------------------------------------------------


@contextlib.contextmanager
def transfer_progress(
    description: str, total: int | None, show: bool | None
) -> Iterator[Callable[[int], None]]:
    """A callback to report transferred bytes to, drawing a bar on stderr when wanted.

    `show` None means: only when stderr is a terminal and the transfer is large (or of
    unknown size), so scripts, pipes and tests get clean output. stdout is never used:
    it may be carrying the object itself (`object get KEY -`).
    """
    if show is None:
        show = sys.stderr.isatty() and (total is None or total >= PROGRESS_THRESHOLD)
    if not show:
        yield lambda _count: None
        return
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task(description, total=total)
    with progress:
        yield lambda count: progress.advance(task, count)


def progress_option(func: Any) -> Any:
    return click.option(
        "--progress/--no-progress",
        default=None,
        help=f"Show a progress bar on stderr (default: on a terminal, from"
        f" {PROGRESS_THRESHOLD // 1024**2} MiB).",
    )(func)


# -- uploading ---------------------------------------------------------------------------


class Source:
    """A local file (or stdin) read chunk by chunk in a worker thread.

    One chunk can be pushed back, which is how a multipart upload looks ahead for the
    end of the stream without knowing its size.
    """

    def __init__(self, handle: IO[bytes], size: int | None, advance: Callable[[int], None]):
        self.handle = handle
        self.size = size  # None for a pipe or stdin
        self.consumed = 0
        self._advance = advance
        self._pushed = b""

    async def read(self, limit: int) -> bytes:
        """Up to `limit` (at most CHUNK_SIZE) bytes; b"" at the end."""
        if self._pushed:
            data, self._pushed = self._pushed[:limit], self._pushed[limit:]
        else:
            data = await asyncio.to_thread(self.handle.read, min(limit, CHUNK_SIZE))
            self._advance(len(data))
        self.consumed += len(data)
        return data

    async def at_end(self) -> bool:
        """Whether the stream is exhausted (reads ahead one chunk and pushes it back)."""
        if self._pushed:
            return False
        data = await self.read(CHUNK_SIZE)
        self._pushed = data
        self.consumed -= len(data)
        return not data

    async def chunks(self, limit: int | None = None) -> AsyncIterator[bytes]:
        """The next `limit` bytes (None: the rest of the stream), chunk by chunk."""
        remaining = limit
        while remaining is None or remaining > 0:
            data = await self.read(CHUNK_SIZE if remaining is None else remaining)
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data


async def _put_parts(
    app: Tidings,
    bucket: Bucket,
    key: str,
    source: Source,
    attrs: ObjectAttrs,
    part_size: int,
    forbid_overwrite: bool,
) -> WriteOutcome:
    """Upload `source` as a multipart upload of `part_size` parts; abort it on failure."""
    started = await app.multipart.initiate(bucket, key, attrs)
    try:
        parts: list[CompletedPart] = []
        # The first part always exists (an empty file is one empty part); later ones
        # only while bytes remain, found by reading ahead since stdin has no size.
        while not parts or not await source.at_end():
            number = len(parts) + 1
            if number > MAX_PART_NUMBER:
                raise ServiceError(
                    "InvalidArgument",
                    f"More than {MAX_PART_NUMBER} parts of {part_size} bytes: use a larger"
                    " --part-size.",
                )
            part = await app.multipart.upload_part(
                bucket,
                key,
                started.upload_id,
                number,
                source.chunks(part_size),
                expected_size=None,
                content_md5=None,
            )
            parts.append(CompletedPart(part.number, part.etag))
        if source.size is not None and source.consumed != source.size:
            # A single PutObject gets this check from the blob store (expected_size).
            raise ServiceError(
                "IncompleteBody",
                f"The file changed while it was read: {source.consumed} bytes instead of"
                f" {source.size}.",
            )
        return await app.multipart.complete(
            bucket, key, started.upload_id, parts, forbid_overwrite=forbid_overwrite
        )
    except BaseException:
        # Also on Ctrl-C (cancellation): the parts are released for collection rather
        # than left as an upload nobody will finish.
        with contextlib.suppress(ServiceError):
            await app.multipart.abort(bucket, key, started.upload_id)
        raise


async def upload(
    app: Tidings,
    bucket: Bucket,
    key: str,
    source: Source,
    attrs: ObjectAttrs,
    part_size: int | None,
    forbid_overwrite: bool,
) -> WriteOutcome:
    """Store `source` as `key`: one PutObject, or multipart for --part-size or huge files."""
    if part_size is None and source.size is not None and source.size > app.objects.max_object_size:
        part_size = max(DEFAULT_PART_SIZE, math.ceil(source.size / MAX_PART_NUMBER))
    try:
        if part_size is not None:
            return await _put_parts(app, bucket, key, source, attrs, part_size, forbid_overwrite)
        return await app.objects.put(
            bucket,
            key,
            source.chunks(),
            expected_size=source.size,
            attrs=attrs,
            forbid_overwrite=forbid_overwrite,
        )
    except BlobTooLarge as error:  # the blob store's refusals, in the API's vocabulary
        raise ServiceError("EntityTooLarge", str(error)) from None
    except (IncompleteBody, BodyTooLong) as error:
        raise ServiceError(
            "IncompleteBody", f"The file changed while it was read: {error}."
        ) from None


@contextlib.contextmanager
def open_source(file: str) -> Iterator[tuple[IO[bytes], int | None]]:
    """The file's handle and size (None unless it is a regular file), or stdin for `-`."""
    if file == "-":
        yield sys.stdin.buffer, None
        return
    try:
        handle = open(file, "rb")  # noqa: SIM115 - closed below, after the upload
    except OSError as error:
        raise click.FileError(file, error.strerror) from None
    with handle:
        status = os.fstat(handle.fileno())
        # A FIFO or device has no size to promise; its end is where the stream ends.
        yield handle, status.st_size if stat.S_ISREG(status.st_mode) else None


# -- downloading -------------------------------------------------------------------------


@contextlib.contextmanager
def open_sink(dest: str) -> Iterator[IO[bytes]]:
    """Where a download goes: stdout for `-`, else a temp file renamed to `dest` at the end.

    The temp file sits beside `dest`, so the rename is atomic: FILE is either its old
    self or the complete object, never a torn download. (It is not fsynced: like cp,
    a download is durable when the OS writes it back; what matters is never exposing a
    partial file under the final name.)
    """
    if dest == "-":
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    path = Path(dest)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    except OSError as error:
        raise click.FileError(dest, error.strerror) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _write(out: IO[bytes], data: bytes, crc: int) -> int:
    out.write(data)
    return crc64(data, crc)


async def download(
    app: Tidings, version: ObjectVersion, out: IO[bytes], advance: Callable[[int], None]
) -> None:
    """Stream a version's body into `out`, checking its CRC-64 as oss2 would."""
    chunks = app.objects.read(version)
    crc = 0
    try:
        async for chunk in chunks:
            # Written (and hashed) in a thread while the blob store reads the next chunk.
            crc = await asyncio.to_thread(_write, out, chunk, crc)
            advance(len(chunk))
    finally:
        # Closes the blob store's reader at once, also when writing failed halfway.
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    if crc != version.crc64:
        raise ServiceError(
            "InvalidDigest",
            f"The object read back with CRC-64 {crc}, but {version.crc64} was stored.",
        )
