"""Blob storage: immutable byte streams under random ids, the object store's bodies."""

from tidings.blobs.base import (
    CHUNK_SIZE,
    READ_CHUNK_SIZE,
    BlobError,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    BodyTooLong,
    CorruptBlob,
    IncompleteBody,
    InvalidBlobId,
    InvalidRange,
)
from tidings.blobs.checksums import StreamDigest, crc64, crc64_combine, crc64_concat
from tidings.blobs.local import LocalBlobStore

__all__ = [
    "CHUNK_SIZE",
    "READ_CHUNK_SIZE",
    "BlobError",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "BodyTooLong",
    "CorruptBlob",
    "IncompleteBody",
    "InvalidBlobId",
    "InvalidRange",
    "LocalBlobStore",
    "StreamDigest",
    "crc64",
    "crc64_combine",
    "crc64_concat",
]
