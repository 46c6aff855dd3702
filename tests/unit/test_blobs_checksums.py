"""CRC-64/XZ and MD5 as the blob store computes them, checked against oss2 and the spec."""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.blobs.base import BlobInfo, multipart_md5
from tidings.blobs.checksums import StreamDigest, crc64, crc64_combine, crc64_concat

MASK = 0xFFFFFFFFFFFFFFFF

# Values computed with oss2 2.19.1's own `oss2.utils.Crc64` (crcmod underneath), so the
# check holds where oss2 is not installed; test_matches_oss2_* recompute them live.
OSS2_VALUES = [
    (b"", 0),
    (b"a", 3675645893302102789),
    (b"123456789", 11051210869376104954),
    (b"hello", 11177612005948864433),
    (bytes(range(256)) * 4, 15357192874899391488),
    (b"\x00" * 1000, 3975238299387831631),
    (b"\xff" * 1000, 3616120757339400262),
    ("dir/a b+c.txt ✓".encode(), 3133247606313372228),
    (random.Random(4).randbytes(1 << 20), 1301040616551373188),
]


def spec_crc64(data: bytes, crc: int = 0) -> int:
    """The bit-by-bit definition from the OSS spec, §5.3."""
    crc ^= MASK
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xC96C5795D7870F42 if crc & 1 else 0)
    return crc ^ MASK


def oss2_crc64(data: bytes) -> int:
    utils: Any = pytest.importorskip("oss2.utils")
    digest = utils.Crc64()
    digest.update(data)
    return int(digest.crc)


@pytest.mark.parametrize(("data", "expected"), OSS2_VALUES, ids=range(len(OSS2_VALUES)))
def test_known_values(data: bytes, expected: int) -> None:
    assert crc64(data) == expected


def test_spec_check_values() -> None:
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA == 11051210869376104954
    assert crc64(b"") == 0
    assert crc64(b"hello") == 11177612005948864433
    assert crc64(b"lo", crc64(b"hel")) == crc64(b"hello")


def test_accepts_any_bytes_like() -> None:
    assert crc64(bytearray(b"hello")) == crc64(memoryview(b"xhello")[1:]) == crc64(b"hello")


@pytest.mark.parametrize(("data", "expected"), OSS2_VALUES, ids=range(len(OSS2_VALUES)))
def test_matches_oss2_known_inputs(data: bytes, expected: int) -> None:
    assert oss2_crc64(data) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000))
def test_matches_oss2_random(data: bytes) -> None:
    assert crc64(data) == oss2_crc64(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(0, MASK))
def test_matches_spec_definition_with_continuation(data: bytes, start: int) -> None:
    assert crc64(data) == spec_crc64(data)
    assert crc64(data, start) == spec_crc64(data, start)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_combine_equals_crc_of_concatenation(a: bytes, b: bytes) -> None:
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=500), st.binary(max_size=500))
def test_combine_matches_oss2(a: bytes, b: bytes) -> None:
    utils: Any = pytest.importorskip("oss2.utils")
    theirs = utils.Crc64().combine(crc64(a), crc64(b), len(b))
    assert crc64_combine(crc64(a), crc64(b), len(b)) == theirs


def test_combine_large_lengths() -> None:
    # Part-sized and object-sized lengths, checked against continuing the CRC over the
    # same bytes (1 MiB of pattern fed again and again, so nothing large is held).
    block = random.Random(7).randbytes(1 << 20)
    prefix = b"some prefix"
    for blocks in (5, 1024):  # 5 MiB, 1 GiB
        second = 0
        for _ in range(blocks):
            second = crc64(block, second)
        continued = crc64(prefix)
        for _ in range(blocks):
            continued = crc64(block, continued)
        assert crc64_combine(crc64(prefix), second, blocks << 20) == continued


def test_combine_refuses_negative_length() -> None:
    with pytest.raises(ValueError):
        crc64_combine(1, 2, -1)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_concat_of_parts(parts: list[bytes]) -> None:
    assert crc64_concat([(crc64(p), len(p)) for p in parts]) == crc64(b"".join(parts))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=6))
def test_stream_digest_is_split_independent(data: bytes, cuts: list[int]) -> None:
    digest = StreamDigest()
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    for lo, hi in itertools.pairwise(bounds):
        digest.update(data[lo:hi])
    assert digest.size == len(data)
    assert digest.crc64 == crc64(data)
    assert digest.md5_hex == hashlib.md5(data).hexdigest()
    assert digest.md5_digest == hashlib.md5(data).digest()


def test_multipart_md5_and_etag() -> None:
    parts = [b"a" * 10, b"b" * 20]
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert multipart_md5(md5s) == expected
    composed = BlobInfo("0" * 32, 30, expected, crc64(b"".join(parts)), part_count=2)
    assert composed.etag == expected.upper() + "-2"
    single = BlobInfo("0" * 32, 5, hashlib.md5(b"hello").hexdigest(), crc64(b"hello"))
    assert single.etag == "5D41402ABC4B2A76B9719D911017C592"  # the spec's example
