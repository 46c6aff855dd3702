#!/usr/bin/env python3
"""CRC-64/XZ throughput of the implementations on PyPI, with MD5 as the baseline.

OSS checksums every object with CRC-64/XZ (`x-oss-hash-crc64ecma`) and the blob store
computes it, and MD5, while a body streams through. This script measures each candidate
that is installed on the same 64 MiB buffer of random bytes, fed in blob-store chunks
(`tidings.blobs.base.CHUNK_SIZE`, each call continuing the previous CRC, the way the
store uses it) and, where that differs, in one call. Each candidate is first checked
against the reference (the spec's bit-by-bit definition): the check value of
``123456789``, ``hello``, and continuation across a split. A wrong one is reported, not
timed. Candidates that are not installed are listed as missing; install them with pip to
measure them (``pip install anycrc fastcrc libscrc crcc``). Note that ``crcmod-plus``
installs a module named ``crcmod`` over ``crcmod`` itself; the table says which
distribution provided it.

Usage::

    python bench/blobs_crc.py [--size-mib 64] [--repeat 3]

Takes a few seconds per candidate; the pure-Python rows run on 256 KiB and are
extrapolated.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib
import importlib.metadata
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

from tidings.blobs.base import CHUNK_SIZE

MIB = 1024 * 1024
# Pure Python is so slow that a full buffer would take minutes; it runs on this much.
PURE_PYTHON_BYTES = 256 * 1024

POLY_REFLECTED = 0xC96C5795D7870F42
POLY_CRCMOD = 0x142F0E1EBA9EA3693  # the form oss2 hands to crcmod (x^64 term included)
MASK = 0xFFFFFFFFFFFFFFFF
CHECK_123456789 = 11051210869376104954
CHECK_HELLO = 11177612005948864433

# update(data, previous_crc) -> crc; previous_crc 0 starts a new computation.
Update = Callable[[bytes | memoryview, int], int]


def reference_crc64(data: bytes | memoryview, crc: int = 0) -> int:
    """The spec's bit-by-bit definition (§5.3)."""
    crc ^= MASK
    for byte in bytes(data):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (POLY_REFLECTED if crc & 1 else 0)
    return crc ^ MASK


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (POLY_REFLECTED if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _table()


def table_crc64(data: bytes | memoryview, crc: int = 0) -> int:
    """Byte-at-a-time table lookup: the fastest plain Python gets."""
    crc ^= MASK
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ MASK


def _distribution(module: str) -> str:
    names = importlib.metadata.packages_distributions().get(module, [module])
    name = names[0]
    return f"{name} {importlib.metadata.version(name)}"


def _crcmod() -> tuple[str, Update]:
    crcmod: Any = importlib.import_module("crcmod")
    native = importlib.util.find_spec("crcmod._crcfunext") is not None
    fun = crcmod.mkCrcFun(POLY_CRCMOD, initCrc=0, rev=True, xorOut=MASK)
    label = f"{_distribution('crcmod')} ({'C extension' if native else 'pure Python'})"
    return label, lambda data, crc: int(fun(data, crc))


def _anycrc() -> tuple[str, Update]:
    anycrc: Any = importlib.import_module("anycrc")
    model = anycrc.Model("CRC64-XZ")

    def update(data: bytes | memoryview, crc: int) -> int:
        # anycrc takes the running value as its init; an empty buffer returns it as is.
        return int(model.calc(data, crc)) if crc else int(model.calc(data))

    return _distribution("anycrc"), update


def _fastcrc() -> tuple[str, Update]:
    fastcrc: Any = importlib.import_module("fastcrc")
    xz = fastcrc.crc64.xz
    return _distribution("fastcrc"), lambda data, crc: int(xz(data, crc) if crc else xz(data))


def _libscrc() -> tuple[str, Update]:
    libscrc: Any = importlib.import_module("libscrc")
    xz64 = libscrc.xz64
    return _distribution("libscrc"), lambda data, crc: int(xz64(data, crc) if crc else xz64(data))


def _crcc() -> tuple[str, Update]:
    crcc: Any = importlib.import_module("crcc")
    model = crcc.predefined_model_by_name(b"CRC-64/XZ")

    def update(data: bytes | memoryview, crc: int) -> int:
        raw = bytes(data) if isinstance(data, memoryview) else data
        # crcc works on the raw register: undo the final XOR of the previous value.
        register = crcc.init(model) if crc == 0 else crc ^ MASK
        register = crcc.update(model, ctypes.c_char_p(raw), len(raw), register)
        return int(crcc.final(model, register))

    return _distribution("crcc"), update


CANDIDATES: list[tuple[str, Callable[[], tuple[str, Update]]]] = [
    ("crcmod", _crcmod),
    ("anycrc", _anycrc),
    ("fastcrc", _fastcrc),
    ("libscrc", _libscrc),
    ("crcc", _crcc),
]


def correct(update: Update) -> bool:
    """Whether `update` is CRC-64/XZ, including continuation across a split."""
    sample = os.urandom(10_000)
    return (
        update(b"123456789", 0) == CHECK_123456789
        and update(b"hello", 0) == CHECK_HELLO
        and update(b"lo", update(b"hel", 0)) == CHECK_HELLO
        and update(sample[3000:], update(sample[:3000], 0)) == reference_crc64(sample)
    )


def throughput(run: Callable[[], object], size: int, repeat: int) -> float:
    """Best of `repeat` runs, in MB/s (10^6 bytes per second)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return size / best / 1e6


def chunked(update: Update, view: memoryview) -> Callable[[], int]:
    """Feed `view` to `update` in CHUNK_SIZE pieces, each continuing the previous CRC."""

    def run() -> int:
        crc = 0
        for offset in range(0, len(view), CHUNK_SIZE):
            crc = update(view[offset : offset + CHUNK_SIZE], crc)
        return crc

    return run


def md5_chunked(view: memoryview) -> Callable[[], str]:
    """hashlib.md5 over `view` in CHUNK_SIZE pieces."""

    def run() -> str:
        digest = hashlib.md5()
        for offset in range(0, len(view), CHUNK_SIZE):
            digest.update(view[offset : offset + CHUNK_SIZE])
        return digest.hexdigest()

    return run


def main() -> None:
    """Print a table of MB/s per candidate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB
    buffer = os.urandom(size)
    view = memoryview(buffer)
    small = view[:PURE_PYTHON_BYTES]

    rows: list[tuple[str, str, str]] = []

    def row(name: str, chunked_mbs: float | None, whole_mbs: float | None) -> None:
        rows.append(
            (
                name,
                f"{chunked_mbs:,.0f}" if chunked_mbs is not None else "-",
                f"{whole_mbs:,.0f}" if whole_mbs is not None else "-",
            )
        )
        print(f"  measured {name}", flush=True)

    print(
        f"buffer: {args.size_mib} MiB random, chunk {CHUNK_SIZE // 1024} KiB, best of {args.repeat}"
    )
    row(
        "hashlib.md5 (baseline)",
        throughput(md5_chunked(view), size, args.repeat),
        throughput(lambda: hashlib.md5(view).digest(), size, args.repeat),
    )
    row(
        "zlib.crc32 (a CRC-32, for scale)",
        None,
        throughput(lambda: zlib.crc32(view), size, args.repeat),
    )
    for label, function in [
        ("pure Python, bitwise", reference_crc64),
        ("pure Python, table", table_crc64),
    ]:
        row(label + " (256 KiB)", None, throughput(lambda f=function: f(small), len(small), 1))

    for module, factory in CANDIDATES:
        try:
            label, update = factory()
        except ImportError:
            rows.append((f"{module} (not installed)", "-", "-"))
            continue
        if not correct(update):
            rows.append((f"{label}: WRONG RESULT", "-", "-"))
            continue
        whole = throughput(lambda u=update: u(view, 0), size, args.repeat)
        row(label, throughput(chunked(update, view), size, args.repeat), whole)

    width = max(len(name) for name, _, _ in rows)
    print()
    print(f"| {'implementation':<{width}} | {'MB/s, chunked':>13} | {'MB/s, one call':>14} |")
    print(f"|{'-' * (width + 2)}|{'-' * 14}:|{'-' * 15}:|")
    for name, chunk_mbs, whole_mbs in rows:
        print(f"| {name:<{width}} | {chunk_mbs:>13} | {whole_mbs:>14} |")


if __name__ == "__main__":
    main()
