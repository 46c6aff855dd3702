"""On-disk format of the local blob store's files.

Every blob file starts with a fixed-size header carrying what `stat` and `compose`
need (size, MD5, CRC-64), so a blob describes itself and one rename makes bytes and
info appear together. A written blob's bytes follow its header. A composed blob is a
directory holding a `manifest` (header, then the size of each piece in order) and the
pieces themselves, named 0, 1, 2, ...: hard links to (or, where links are not possible,
copies of) the parts' files, each with its own header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"TDBL"
FORMAT_VERSION = 1
KIND_DATA = 0
KIND_MANIFEST = 1

# magic, version, kind, reserved, size, crc64, part_count, reserved, md5 (binary).
_HEADER = struct.Struct("<4sBBHQQI4x16s")
# Room for later fields without moving the data of existing blobs.
HEADER_SIZE = 64
_PADDING = bytes(HEADER_SIZE - _HEADER.size)

MANIFEST_NAME = "manifest"
_PIECE_SIZE = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded header of a blob file or manifest."""

    kind: int
    size: int
    crc64: int
    part_count: int
    md5: bytes


def pack_header(header: Header) -> bytes:
    """The HEADER_SIZE bytes that start a blob file or manifest."""
    packed = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        header.kind,
        0,
        header.size,
        header.crc64,
        header.part_count,
        header.md5,
    )
    return packed + _PADDING


def unpack_header(raw: bytes) -> Header | None:
    """Decode a header, or None if `raw` is not one this version wrote."""
    if len(raw) < HEADER_SIZE:
        return None
    magic, version, kind, _, size, crc, part_count, md5 = _HEADER.unpack_from(raw)
    if magic != MAGIC or version != FORMAT_VERSION or kind not in (KIND_DATA, KIND_MANIFEST):
        return None
    return Header(kind=kind, size=size, crc64=crc, part_count=part_count, md5=md5)


def pack_piece_sizes(sizes: list[int]) -> bytes:
    """The manifest's body: the size of each piece, in order."""
    return b"".join(_PIECE_SIZE.pack(size) for size in sizes)


def unpack_piece_sizes(raw: bytes) -> list[int] | None:
    """Decode a manifest's body, or None if it is not a whole number of entries."""
    if len(raw) % _PIECE_SIZE.size:
        return None
    return [size for (size,) in _PIECE_SIZE.iter_unpack(raw)]


def piece_name(index: int) -> str:
    """The file name of a composed blob's piece number `index`."""
    return str(index)
