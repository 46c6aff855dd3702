"""Multipart uploads driven by the official `oss2` SDK against a real `tidings serve`
process: initiate, upload parts, complete (with oss2's CRC check over the part CRCs) and
its refusals, `x-oss-complete-all`, abort, ListMultipartUploads, ListParts,
UploadPartCopy, and oss2's resumable upload and download helpers (spec section 8)."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import oss2
import pytest
from oss2.models import PartInfo

from tests.integration.oss2_support import (
    bucket_handle,
    crc64,
    error_of,
    md5_hex,
    signed_request,
)
from tests.support import ServerProcess

KIB = 1024
MIN_PART = 100 * KIB


def multipart_etag(parts: list[bytes]) -> str:
    """`HEX-N`: MD5 of the parts' binary MD5s, then the part count (spec 5.1)."""
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f"{hashlib.md5(digests).hexdigest().upper()}-{len(parts)}"


def upload(bucket: oss2.Bucket, key: str, upload_id: str, number: int, data: bytes) -> PartInfo:
    """UploadPart (oss2 checks the part's CRC), as the PartInfo a completion needs."""
    result = bucket.upload_part(key, upload_id, number, data)
    assert result.etag == md5_hex(data)
    assert result.crc == crc64(data)
    return PartInfo(number, result.etag, size=len(data), part_crc=result.crc)


def blocks(*sizes: int) -> list[bytes]:
    """Distinct pseudo-random bodies of the given sizes."""
    return [os.urandom(size) for size in sizes]


def test_upload_and_complete(oss2_bucket: oss2.Bucket) -> None:
    """Initiate stores the final object's headers; parts upload with their MD5 and CRC;
    Complete assembles them (oss2 checks the combined CRC against the response) into a
    Multipart object with an `HEX-N` ETag and the initiation's headers and metadata."""
    init = oss2_bucket.init_multipart_upload(
        "big.bin",
        headers={
            "Content-Type": "application/x-big",
            "x-oss-meta-origin": "multipart",
            "x-oss-storage-class": "IA",
            "x-oss-tagging": "kind=big",
        },
    )
    assert len(init.upload_id) == 32
    data = blocks(MIN_PART, MIN_PART + 7, 1234)
    parts = [upload(oss2_bucket, "big.bin", init.upload_id, n, d) for n, d in enumerate(data, 1)]
    done = oss2_bucket.complete_multipart_upload("big.bin", init.upload_id, parts)
    whole = b"".join(data)
    assert done.crc == crc64(whole)
    assert done.etag == multipart_etag(data)

    got = oss2_bucket.get_object("big.bin")
    assert got.read() == whole
    assert got.object_type == "Multipart"
    assert got.etag == multipart_etag(data)
    assert got.server_crc == crc64(whole)
    assert got.headers["Content-Type"] == "application/x-big"
    assert got.headers["x-oss-meta-origin"] == "multipart"
    assert got.headers["x-oss-storage-class"] == "IA"
    assert oss2_bucket.get_object_tagging("big.bin").tag_set.tagging_rule == {"kind": "big"}
    # The upload is over.
    error = error_of(oss2_bucket.list_parts, "big.bin", init.upload_id)
    assert isinstance(error, oss2.exceptions.NoSuchUpload)


def test_reuploading_a_part_replaces_it_and_unlisted_parts_are_dropped(
    oss2_bucket: oss2.Bucket,
) -> None:
    """Uploading a part number again replaces that part; parts the completion does not
    name are discarded, and a single small part is a valid (last) part."""
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    upload(oss2_bucket, "k", upload_id, 1, b"first try")
    again = upload(oss2_bucket, "k", upload_id, 1, b"second try")
    upload(oss2_bucket, "k", upload_id, 2, b"never used")
    (listed_one, listed_two) = oss2_bucket.list_parts("k", upload_id).parts
    assert (listed_one.etag, listed_one.size) == (again.etag, 10)
    assert listed_two.part_number == 2
    oss2_bucket.complete_multipart_upload("k", upload_id, [again])
    assert oss2_bucket.get_object("k").read() == b"second try"


def test_completion_refusals_keep_the_upload(oss2_bucket: oss2.Bucket) -> None:
    """Completion is refused, leaving the upload intact to retry: parts not ascending or
    repeated (`InvalidPartOrder`), a part never uploaded or with another ETag
    (`InvalidPart`), a non-last part under 100 KiB (`EntityTooSmall`), and an unknown
    upload id (`404 NoSuchUpload`)."""
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    big, small, last = blocks(MIN_PART, MIN_PART - 1, 10)
    p1 = upload(oss2_bucket, "k", upload_id, 1, big)
    p2 = upload(oss2_bucket, "k", upload_id, 2, small)
    p3 = upload(oss2_bucket, "k", upload_id, 3, last)

    def refused(parts: list[PartInfo], code: str) -> None:
        error = error_of(oss2_bucket.complete_multipart_upload, "k", upload_id, parts)
        assert (error.status, error.code) == (400, code), error.details

    refused([p1, p1], "InvalidPartOrder")  # oss2 sorts parts; a repeat is still refused
    refused([p1, PartInfo(4, p1.etag)], "InvalidPart")
    refused([p1, PartInfo(3, p1.etag)], "InvalidPart")
    refused([p1, p2, p3], "EntityTooSmall")

    out_of_order = (
        "<CompleteMultipartUpload>"
        f'<Part><PartNumber>3</PartNumber><ETag>"{p3.etag}"</ETag></Part>'
        f'<Part><PartNumber>1</PartNumber><ETag>"{p1.etag}"</ETag></Part>'
        "</CompleteMultipartUpload>"
    )
    error = error_of(
        signed_request, oss2_bucket, "POST", "k",
        params={"uploadId": upload_id}, data=out_of_order.encode(),
    )  # fmt: skip
    assert (error.status, error.code) == (400, "InvalidPartOrder")

    error = error_of(oss2_bucket.complete_multipart_upload, "k", "0" * 32, [p1])
    assert isinstance(error, oss2.exceptions.NoSuchUpload)
    assert not oss2_bucket.object_exists("k")
    assert len(oss2_bucket.list_parts("k", upload_id).parts) == 3

    done = oss2_bucket.complete_multipart_upload("k", upload_id, [p1, p3])
    assert done.crc == crc64(big + last)
    assert oss2_bucket.get_object("k").read() == big + last


def test_complete_honours_forbid_overwrite_and_object_acl(oss2_bucket: oss2.Bucket) -> None:
    """`x-oss-forbid-overwrite: true` on Complete is `409 FileAlreadyExists` when the key
    exists (the upload survives for a retry); `x-oss-object-acl` on Complete sets the
    new object's ACL."""
    oss2_bucket.put_object("k", b"existing")
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    part = upload(oss2_bucket, "k", upload_id, 1, b"replacement")
    error = error_of(
        oss2_bucket.complete_multipart_upload, "k", upload_id, [part],
        headers={"x-oss-forbid-overwrite": "true"},
    )  # fmt: skip
    assert (error.status, error.code) == (409, "FileAlreadyExists")
    assert oss2_bucket.get_object("k").read() == b"existing"
    oss2_bucket.complete_multipart_upload(
        "k", upload_id, [part], headers={"x-oss-object-acl": "public-read"}
    )
    assert oss2_bucket.get_object("k").read() == b"replacement"
    assert oss2_bucket.get_object_acl("k").acl == "public-read"


def test_an_upload_belongs_to_its_bucket_and_key(
    oss2_bucket: oss2.Bucket, server: ServerProcess
) -> None:
    """An upload id used with another key is `404 NoSuchUpload`; initiating in a missing
    bucket is `404 NoSuchBucket`."""
    upload_id = oss2_bucket.init_multipart_upload("mine").upload_id
    error = error_of(oss2_bucket.upload_part, "other", upload_id, 1, b"x")
    assert isinstance(error, oss2.exceptions.NoSuchUpload)
    assert isinstance(error_of(oss2_bucket.list_parts, "other", upload_id),
                      oss2.exceptions.NoSuchUpload)  # fmt: skip
    gone = bucket_handle(server, f"gone-{uuid.uuid4().hex[:12]}")
    assert isinstance(error_of(gone.init_multipart_upload, "k"), oss2.exceptions.NoSuchBucket)


def test_complete_all_uses_every_part_in_order(oss2_bucket: oss2.Bucket) -> None:
    """`x-oss-complete-all: yes` with no body completes with every uploaded part in part
    number order (parts uploaded out of order, numbers with gaps)."""
    upload_id = oss2_bucket.init_multipart_upload("all").upload_id
    data = blocks(MIN_PART, MIN_PART, 5)
    for number, body in [(7, data[2]), (1, data[0]), (4, data[1])]:
        upload(oss2_bucket, "all", upload_id, number, body)
    done = oss2_bucket.complete_multipart_upload(
        "all", upload_id, None, headers={"x-oss-complete-all": "yes"}
    )
    assert done.crc == crc64(b"".join(data))
    assert oss2_bucket.get_object("all").read() == b"".join(data)


def test_abort_discards_the_upload(oss2_bucket: oss2.Bucket) -> None:
    """Abort ends an upload (`204`) and its parts; afterwards every use of the id is
    `404 NoSuchUpload`, and no object appears."""
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    part = upload(oss2_bucket, "k", upload_id, 1, b"x")
    assert oss2_bucket.abort_multipart_upload("k", upload_id).status == 204
    for call, args in [
        (oss2_bucket.abort_multipart_upload, ("k", upload_id)),
        (oss2_bucket.list_parts, ("k", upload_id)),
        (oss2_bucket.upload_part, ("k", upload_id, 2, b"y")),
        (oss2_bucket.complete_multipart_upload, ("k", upload_id, [part])),
    ]:
        assert isinstance(error_of(call, *args), oss2.exceptions.NoSuchUpload)
    assert not oss2_bucket.object_exists("k")
    assert oss2_bucket.list_multipart_uploads().upload_list == []


def test_part_numbers_outside_1_to_10000_are_invalid(oss2_bucket: oss2.Bucket) -> None:
    """UploadPart with part number 0 or 10001 is `400 InvalidArgument`; 10000 works."""
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    for number in (0, 10001):
        error = error_of(oss2_bucket.upload_part, "k", upload_id, number, b"x")
        assert (error.status, error.code) == (400, "InvalidArgument")
    upload(oss2_bucket, "k", upload_id, 10000, b"x")


def test_upload_part_checks_content_md5_and_accepts_chunked_bodies(
    oss2_bucket: oss2.Bucket,
) -> None:
    """A wrong Content-MD5 on UploadPart is `InvalidDigest` and stores no part; a part sent
    as a chunked iterable is stored whole."""
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    bad = {"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
    error = error_of(oss2_bucket.upload_part, "k", upload_id, 1, b"data", headers=bad)
    assert error.code == "InvalidDigest"
    assert oss2_bucket.list_parts("k", upload_id).parts == []

    result = oss2_bucket.upload_part("k", upload_id, 1, iter([b"chu", b"nked"]))
    assert result.crc == crc64(b"chunked")
    assert oss2_bucket.list_parts("k", upload_id).parts[0].size == 7


# -- listings ----------------------------------------------------------------------------


def test_list_multipart_uploads_pages_with_delimiter(oss2_bucket: oss2.Bucket) -> None:
    """ListMultipartUploads orders uploads by key then initiation, pages with
    key-marker / upload-id-marker (several uploads of one key split across pages), and
    with a delimiter collapses keys into common prefixes listed once."""
    keys = ["a/1", "a/2", "b", "b", "b", "c/d/e", "ünï/x", "z z", "a/1"]
    uploads: dict[str, list[str]] = {}
    for key in keys:
        uploads.setdefault(key, []).append(oss2_bucket.init_multipart_upload(key).upload_id)
    expected = [(k, u) for k in sorted(uploads, key=lambda k: k.encode()) for u in uploads[k]]

    for max_uploads in (1, 2, 4, 1000):
        listed = [
            (u.key, u.upload_id)
            for u in oss2.MultipartUploadIterator(oss2_bucket, max_uploads=max_uploads)
        ]
        assert listed == expected
        found = oss2.MultipartUploadIterator(oss2_bucket, delimiter="/", max_uploads=max_uploads)
        entries = [u.key if u.is_prefix() else (u.key, u.upload_id) for u in found]
        assert entries == [
            "a/",
            *[(k, u) for k, u in expected if k in ("b",)],
            "c/",
            *[(k, u) for k, u in expected if k == "z z"],
            "ünï/",  # UTF-8 byte order: 'ü' (0xC3) sorts after 'z'
        ]

    page = oss2_bucket.list_multipart_uploads(max_uploads=3)
    assert page.is_truncated
    assert [u.key for u in page.upload_list] == ["a/1", "a/1", "a/2"]
    assert (page.next_key_marker, page.next_upload_id_marker) == ("a/2", uploads["a/2"][0])
    prefixed = list(oss2.MultipartUploadIterator(oss2_bucket, prefix="a/", max_uploads=1))
    assert [(u.key, u.upload_id) for u in prefixed] == [e for e in expected if e[0][:2] == "a/"]
    initiated = oss2_bucket.list_multipart_uploads().upload_list[0].initiation_date
    assert initiated > 0


def test_list_parts_pages_by_part_number(oss2_bucket: oss2.Bucket) -> None:
    """ListParts returns parts by number with ETag, size and last-modified; it pages with
    part-number-marker and NextPartNumberMarker; oss2's PartIterator walks them all."""
    upload_id = oss2_bucket.init_multipart_upload("k").upload_id
    numbers = [1, 2, 3, 5, 8, 13]
    infos = {n: upload(oss2_bucket, "k", upload_id, n, os.urandom(n)) for n in numbers}

    walked = list(oss2.PartIterator(oss2_bucket, "k", upload_id, max_parts=2))
    assert [p.part_number for p in walked] == numbers
    for part in walked:
        assert (part.etag, part.size) == (infos[part.part_number].etag, part.part_number)
        assert part.last_modified > 0

    page = oss2_bucket.list_parts("k", upload_id, marker="2", max_parts=2)
    assert [p.part_number for p in page.parts] == [3, 5]
    assert (page.is_truncated, page.next_marker) == (True, "5")
    last = oss2_bucket.list_parts("k", upload_id, marker="8", max_parts=10)
    assert [p.part_number for p in last.parts] == [13]
    assert last.is_truncated is False


# -- UploadPartCopy ----------------------------------------------------------------------


def test_upload_part_copy_whole_and_ranged(oss2_bucket: oss2.Bucket) -> None:
    """UploadPartCopy takes a whole source object (Normal or Appendable) or an inclusive
    byte range of it as a part (ETag = MD5 of the copied bytes), and the completed object
    is the concatenation."""
    source = os.urandom(3 * MIN_PART)
    oss2_bucket.put_object("src", source)
    name = oss2_bucket.bucket_name
    upload_id = oss2_bucket.init_multipart_upload("dst").upload_id

    whole = oss2_bucket.upload_part_copy(name, "src", None, "dst", upload_id, 1)
    assert whole.etag == md5_hex(source)
    first, last = MIN_PART, 2 * MIN_PART + 99
    ranged = oss2_bucket.upload_part_copy(name, "src", (first, last), "dst", upload_id, 2)
    assert ranged.etag == md5_hex(source[first : last + 1])
    oss2_bucket.append_object("appended", 0, b"0123456789")
    tail = oss2_bucket.upload_part_copy(name, "appended", None, "dst", upload_id, 3)
    assert tail.etag == md5_hex(b"0123456789")

    parts = oss2_bucket.list_parts("dst", upload_id).parts
    assert [p.size for p in parts] == [len(source), last - first + 1, 10]
    oss2_bucket.complete_multipart_upload(
        "dst",
        upload_id,
        [PartInfo(1, whole.etag), PartInfo(2, ranged.etag), PartInfo(3, tail.etag)],
    )
    expected = source + source[first : last + 1] + b"0123456789"
    got = oss2_bucket.get_object("dst")
    assert got.read() == expected
    assert got.server_crc == crc64(expected)


def test_upload_part_copy_refusals(oss2_bucket: oss2.Bucket) -> None:
    """UploadPartCopy from a missing source is `404 NoSuchKey`, into an unknown upload
    `404 NoSuchUpload`, with a failed source precondition `412`, and from an unrestored
    Archive object `403 InvalidObjectState`."""
    oss2_bucket.put_object("src", b"0123456789")
    oss2_bucket.put_object("cold", b"x", headers={"x-oss-storage-class": "Archive"})
    name = oss2_bucket.bucket_name
    upload_id = oss2_bucket.init_multipart_upload("dst").upload_id
    error = error_of(oss2_bucket.upload_part_copy, name, "absent", None, "dst", upload_id, 1)
    assert isinstance(error, oss2.exceptions.NoSuchKey)
    error = error_of(oss2_bucket.upload_part_copy, name, "src", None, "dst", "F" * 32, 1)
    assert isinstance(error, oss2.exceptions.NoSuchUpload)
    error = error_of(
        oss2_bucket.upload_part_copy, name, "src", None, "dst", upload_id, 1,
        headers={"x-oss-copy-source-if-match": '"0000"'},
    )  # fmt: skip
    assert error.status == 412
    error = error_of(oss2_bucket.upload_part_copy, name, "cold", None, "dst", upload_id, 1)
    assert (error.status, error.code) == (403, "InvalidObjectState")
    assert oss2_bucket.list_parts("dst", upload_id).parts == []


# -- resumable helpers -------------------------------------------------------------------


def test_resumable_upload_and_download_of_five_mebibytes(
    oss2_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """oss2's `resumable_upload` (multipart, parallel parts, CRC checked at completion)
    and `resumable_download` (parallel ranged GETs, CRC of the whole checked against
    HEAD) move a ~5 MiB file intact."""
    data = os.urandom(5 * 1024 * KIB + 12345)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    key = f"resumable/{uuid.uuid4().hex}.bin"

    result = oss2.resumable_upload(
        oss2_bucket,
        key,
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path / "upload-state")),
        multipart_threshold=MIN_PART,
        part_size=512 * KIB,
        num_threads=4,
    )
    assert result.crc == crc64(data)
    head = oss2_bucket.head_object(key)
    assert (head.object_type, head.content_length) == ("Multipart", len(data))
    assert head.etag.endswith("-11")

    target = tmp_path / "target.bin"
    oss2.resumable_download(
        oss2_bucket,
        key,
        str(target),
        store=oss2.ResumableDownloadStore(root=str(tmp_path / "download-state")),
        multiget_threshold=MIN_PART,
        part_size=700 * KIB,
        num_threads=4,
    )
    assert target.read_bytes() == data
    assert not list((tmp_path / "upload-state").rglob("*.json"))


class Interrupted(Exception):
    """Raised from a progress callback to cut an upload short."""


def test_resumable_upload_resumes_an_interrupted_upload(
    oss2_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """An interrupted `resumable_upload` leaves its upload and a record behind; the next
    call finds the upload, lists its parts (ListParts), uploads only the missing ones and
    completes it."""
    data = os.urandom(2 * 1024 * KIB)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    store = oss2.ResumableStore(root=str(tmp_path / "state"))
    options = {"store": store, "multipart_threshold": MIN_PART, "part_size": 256 * KIB}

    def stop_midway(consumed: int, total: int | None) -> None:
        if consumed > len(data) // 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        oss2.resumable_upload(
            oss2_bucket, "k", str(source), progress_callback=stop_midway, num_threads=1, **options
        )
    (pending,) = oss2.MultipartUploadIterator(oss2_bucket)
    done_before = sum(p.size for p in oss2.PartIterator(oss2_bucket, "k", pending.upload_id))
    assert 0 < done_before < len(data)

    reports: list[int] = []
    oss2.resumable_upload(
        oss2_bucket,
        "k",
        str(source),
        progress_callback=lambda consumed, total: reports.append(consumed),
        num_threads=2,
        **options,
    )
    assert reports[0] >= done_before  # the finished parts were not sent again
    assert oss2_bucket.get_object("k").read() == data
    assert list(oss2.MultipartUploadIterator(oss2_bucket)) == []
