"""The blob-store interface: opaque, immutable byte streams under store-chosen ids.

A blob is written once, read any number of times (whole or by byte range) and deleted.
Its id is random and chosen by the store, never derived from an object key, so keys
never become file paths: no key can traverse a directory, and any UTF-8 key works.
The object store keeps the mapping key -> blob id in its own metadata and commits it
only after `write` has returned, so a blob that is not yet (or no longer) referenced is
simply invisible.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Reads yield chunks of this size (the last may be shorter) and writes hand the disk
# chunks of this size: large enough that a thread hop per chunk costs little next to the
# I/O, small enough that memory per stream stays around two chunks.
CHUNK_SIZE = 1024 * 1024
# Reads hand out larger chunks: each costs a thread hop and an ASGI send, which at 1 MiB
# held a download to about half of what the disk can read.
READ_CHUNK_SIZE = 4 * CHUNK_SIZE

# Blob ids are 32 lower-case hex characters (128 random bits). Anything else is refused
# before it gets near the filesystem.
BLOB_ID_BYTES = 16
BLOB_ID_PATTERN = re.compile(r"[0-9a-f]{32}")


class BlobError(Exception):
    """Base class of the blob store's own errors."""


class InvalidBlobId(BlobError, ValueError):
    """A blob id not of the shape the store hands out."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"not a blob id: {blob_id!r}")
        self.blob_id = blob_id


class BlobNotFound(BlobError, KeyError):
    """No blob with this id."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(blob_id)
        self.blob_id = blob_id

    def __str__(self) -> str:
        return f"no such blob: {self.blob_id}"


class BlobTooLarge(BlobError):
    """The stream carried more than `max_size` bytes; nothing was stored."""

    def __init__(self, max_size: int) -> None:
        super().__init__(f"body exceeds the limit of {max_size} bytes")
        self.max_size = max_size


class IncompleteBody(BlobError):
    """The stream ended before `expected_size` bytes; nothing was stored."""

    def __init__(self, expected: int, received: int) -> None:
        super().__init__(f"body ended after {received} of {expected} bytes")
        self.expected = expected
        self.received = received


class BodyTooLong(BlobError):
    """The stream carried more than `expected_size` bytes; nothing was stored."""

    def __init__(self, expected: int) -> None:
        super().__init__(f"body is longer than the expected {expected} bytes")
        self.expected = expected


class CorruptBlob(BlobError):
    """A stored blob that does not read back as written (bad header, truncated file)."""

    def __init__(self, blob_id: str, reason: str) -> None:
        super().__init__(f"blob {blob_id} is corrupt: {reason}")
        self.blob_id = blob_id


class InvalidRange(BlobError, ValueError):
    """A byte range outside the blob."""

    def __init__(self, start: int, end: int | None, size: int) -> None:
        super().__init__(f"range [{start}, {end}) is outside a blob of {size} bytes")
        self.start = start
        self.end = end
        self.size = size


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows about a blob.

    `md5_hex` is lower-case hex. For a blob written by `write` it is the MD5 of the
    bytes. For a blob made by `compose` it is the multipart form: the MD5 of the
    concatenated binary MD5s of the parts, and `part_count` is the number of parts (0
    for a written blob). `crc64` is the CRC-64/XZ of the bytes in both cases, an
    unsigned 64-bit int (the `x-oss-hash-crc64ecma` value).
    """

    blob_id: str
    size: int
    md5_hex: str
    crc64: int
    part_count: int = 0

    @property
    def etag(self) -> str:
        """The OSS ETag, unquoted: upper-case MD5, or `HEX-N` for a composed blob."""
        if self.part_count:
            return f"{self.md5_hex.upper()}-{self.part_count}"
        return self.md5_hex.upper()


def new_blob_id() -> str:
    """A fresh random blob id (128 bits from the system's random source)."""
    return secrets.token_hex(BLOB_ID_BYTES)


def check_blob_id(blob_id: str) -> str:
    """Return `blob_id` unchanged, or raise InvalidBlobId if it is not one of ours."""
    if not isinstance(blob_id, str) or BLOB_ID_PATTERN.fullmatch(blob_id) is None:
        raise InvalidBlobId(blob_id)
    return blob_id


def multipart_md5(part_md5s: list[str]) -> str:
    """MD5 (lower-case hex) of the concatenated binary MD5s, the multipart ETag's body."""
    digest = hashlib.md5()
    for md5_hex in part_md5s:
        digest.update(bytes.fromhex(md5_hex))
    return digest.hexdigest()


@runtime_checkable
class BlobStore(Protocol):
    """Immutable blobs under random ids; every method is safe to call from the event loop."""

    async def write(
        self,
        chunks: AsyncIterator[bytes],
        *,
        expected_size: int | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        """Store the bytes of `chunks` as a new blob and return its info.

        MD5 and CRC-64 are computed while the bytes stream through. The blob becomes
        visible (durably: fsynced, renamed into place) only when the stream has ended and
        every check passed. If the stream carries more than `max_size` bytes
        (BlobTooLarge), more than `expected_size` (BodyTooLong) or fewer (IncompleteBody),
        fails, or the caller is cancelled, nothing is left behind.
        """
        ...

    def read(self, blob_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of a blob (end exclusive, None = to the end).

        Chunks are at most READ_CHUNK_SIZE bytes. Errors (BlobNotFound, InvalidRange) are
        raised by the first iteration, so an HTTP layer should pull the first chunk
        before sending its headers. Once the first chunk has arrived the stream completes
        even if the blob is deleted meanwhile.
        """
        ...

    async def stat(self, blob_id: str) -> BlobInfo:
        """The info of a blob; BlobNotFound if there is none."""
        ...

    async def exists(self, blob_id: str) -> bool:
        """Whether a blob with this id exists."""
        ...

    async def delete(self, blob_id: str) -> bool:
        """Delete a blob; returns whether it existed (deleting twice is not an error)."""
        ...

    async def compose(self, blob_ids: list[str]) -> BlobInfo:
        """A new blob whose bytes are the concatenation of the given blobs, in order.

        For multipart completion. The parts stay valid blobs of their own: deleting a
        part afterwards does not affect the composed blob, nor the reverse. The CRC-64
        of the whole is combined from the parts' CRCs and sizes, and `md5_hex` is the
        multipart MD5 (see BlobInfo), so no part's bytes are read.
        """
        ...

    def ids(self) -> AsyncIterator[str]:
        """Every stored blob id, in no particular order (for collecting orphans)."""
        ...
