"""The official `alibabacloud-oss-v2` SDK, unchanged and with its defaults, against Tidings.

The client of the `oss_v2_client` fixture signs with V4 and checks CRC-64 on every upload
and download, exactly as a user's would; every SDK call below would raise if the server
mis-signed, mis-encoded or sent a wrong CRC. One test repeats the basics with
`signature_version = "v1"`, and the virtual-hosted style is exercised with raw HTTP
requests (a `bucket.localhost` Host does not resolve on every machine).
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

MiB = 1024 * 1024
# Keys that need percent-encoding in a path and url-encoding in listings.
AWKWARD_KEYS = [
    "plain.txt",
    "dir/a b+c.txt",
    "dir/ünï©ødé 文件.bin",
    "dir/sub/100% sure?.txt",
    "dir/tab\tand&amp;.txt",
    "plus+plus",
    "space at end ",
]


def crc64(data: bytes) -> int:
    """CRC-64/XZ of `data` by the SDK's own (crcmod) implementation: independent of the
    server's."""
    crc = oss.crc.Crc64(0)
    crc.update(data)
    return int(crc.sum64())


def purge_bucket(server: ServerProcess, name: str) -> None:
    """Delete a test's bucket with everything in it (uploads, versions, delete markers),
    if it exists: the account may own at most 100 buckets, and the session server is
    shared by the whole suite."""
    bucket = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.oss_url, name)
    try:
        for upload in oss2.MultipartUploadIterator(bucket):
            bucket.abort_multipart_upload(upload.key, upload.upload_id)
        while True:
            listed = bucket.list_object_versions(max_keys=1000)
            entries = [*listed.versions, *listed.delete_marker]
            if not entries:
                break
            # A batch delete names keys in the body, where no dot segment can be resolved
            # by the HTTP client; keys XML cannot carry (control characters) go one by one.
            batch = oss2.models.BatchDeleteObjectVersionList()
            for entry in entries:
                if any(ord(char) < 0x20 for char in entry.key):
                    bucket.delete_object(entry.key, params={"versionId": entry.versionid})
                else:
                    batch.append(oss2.models.BatchDeleteObjectVersion(entry.key, entry.versionid))
            if batch.len():
                bucket.delete_object_versions(batch)
        bucket.delete_bucket()
    except oss2.exceptions.NoSuchBucket:
        pass


@pytest.fixture(autouse=True)
def _purge_test_bucket(server: ServerProcess, bucket_name: str) -> Iterator[None]:
    """Remove the test's bucket afterwards."""
    yield
    purge_bucket(server, bucket_name)


def _client(server: ServerProcess, **settings: Any) -> oss.Client:
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        ACCESS_KEY_ID, ACCESS_KEY_SECRET
    )
    config.region = "cn-hangzhou"
    config.endpoint = server.oss_url
    for name, value in settings.items():
        setattr(config, name, value)
    return oss.Client(config)


def _service_error(excinfo: pytest.ExceptionInfo[BaseException]) -> oss.exceptions.ServiceError:
    """The ServiceError inside an SDK OperationError."""
    error: BaseException | None = excinfo.value
    while error is not None and not isinstance(error, oss.exceptions.ServiceError):
        unwrap = getattr(error, "unwrap", None)
        error = unwrap() if unwrap is not None else error.__cause__
    assert isinstance(error, oss.exceptions.ServiceError), excinfo.value
    return error


@pytest.fixture
def bucket(oss_v2_client: oss.Client, bucket_name: str) -> Iterator[str]:
    """A fresh bucket created through the v2 SDK."""
    oss_v2_client.put_bucket(oss.PutBucketRequest(bucket=bucket_name))
    yield bucket_name


def _put(client: oss.Client, bucket: str, key: str, data: bytes, **kwargs: Any) -> Any:
    return client.put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=data, **kwargs))


def _get(client: oss.Client, bucket: str, key: str, **kwargs: Any) -> bytes:
    result = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key, **kwargs))
    with result.body as body:
        return bytes(body.read())


# -- basic object operations --------------------------------------------------------------


def test_put_get_head_delete(oss_v2_client: oss.Client, bucket: str) -> None:
    """PutObject (CRC checked by the SDK), GetObject, HeadObject and DeleteObject round trip
    with metadata and stored headers, and the CRC/ETag the server reports are the right ones."""
    data = os.urandom(200_000)
    put = _put(
        oss_v2_client,
        bucket,
        "dir/a b+c.txt",
        data,
        content_type="text/plain",
        metadata={"Author": "alice", "x": "1"},
        cache_control="no-cache",
    )
    assert put.status_code == 200
    assert put.etag == f'"{hashlib.md5(data).hexdigest().upper()}"'
    assert put.hash_crc64 == str(crc64(data))

    got = oss_v2_client.get_object(oss.GetObjectRequest(bucket=bucket, key="dir/a b+c.txt"))
    assert got.body.read() == data
    assert got.content_type == "text/plain"
    assert got.metadata == {"author": "alice", "x": "1"}
    assert got.hash_crc64 == put.hash_crc64
    assert got.object_type == "Normal"

    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="dir/a b+c.txt"))
    assert head.content_length == len(data)
    assert head.etag == put.etag
    assert head.cache_control == "no-cache"
    assert head.storage_class == "Standard"

    deleted = oss_v2_client.delete_object(
        oss.DeleteObjectRequest(bucket=bucket, key="dir/a b+c.txt")
    )
    assert deleted.status_code == 204
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="dir/a b+c.txt"))
    error = _service_error(excinfo)
    assert (error.status_code, error.code) == (404, "NoSuchKey")


def test_ranged_get_and_conditions(oss_v2_client: oss.Client, bucket: str) -> None:
    """A ranged GET returns 206 with the right bytes; If-None-Match on the ETag is a 304
    (the SDK raises) and If-Match on another ETag is 412 PreconditionFailed."""
    data = bytes(range(256)) * 40
    put = _put(oss_v2_client, bucket, "r.bin", data)
    result = oss_v2_client.get_object(
        oss.GetObjectRequest(bucket=bucket, key="r.bin", range_header="bytes=10-19")
    )
    assert result.status_code == 206
    assert result.content_range == f"bytes 10-19/{len(data)}"
    assert result.body.read() == data[10:20]

    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.get_object(oss.GetObjectRequest(bucket=bucket, key="r.bin", if_match='"0"'))
    assert _service_error(excinfo).code == "PreconditionFailed"
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.get_object(
            oss.GetObjectRequest(bucket=bucket, key="r.bin", if_none_match=put.etag)
        )
    assert _service_error(excinfo).status_code == 304


def test_exist_helpers(oss_v2_client: oss.Client, bucket: str) -> None:
    """is_bucket_exist / is_object_exist rely on the error codes (HEAD errors via x-oss-err)."""
    assert oss_v2_client.is_bucket_exist(bucket)
    assert not oss_v2_client.is_bucket_exist(f"missing-{uuid.uuid4().hex[:12]}")
    assert not oss_v2_client.is_object_exist(bucket, "nothing-here")
    _put(oss_v2_client, bucket, "here", b"x")
    assert oss_v2_client.is_object_exist(bucket, "here")
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.is_object_exist(f"missing-{uuid.uuid4().hex[:12]}", "k")
    assert _service_error(excinfo).code == "NoSuchBucket"


def test_get_object_meta(oss_v2_client: oss.Client, bucket: str) -> None:
    """GetObjectMeta reports size, ETag, CRC-64 and Last-Modified."""
    data = b"hello"
    put = _put(oss_v2_client, bucket, "meta.txt", data)
    meta = oss_v2_client.get_object_meta(oss.GetObjectMetaRequest(bucket=bucket, key="meta.txt"))
    assert meta.content_length == 5
    assert meta.etag == put.etag
    assert meta.hash_crc64 == "11177612005948864433"
    assert meta.last_modified is not None


# -- copy ---------------------------------------------------------------------------------


def test_copy_object_and_metadata_directive(oss_v2_client: oss.Client, bucket: str) -> None:
    """CopyObject keeps the source's metadata by default and replaces it with REPLACE; the
    copy's ETag is the source's."""
    data = os.urandom(5000)
    put = _put(oss_v2_client, bucket, "src/ü key", data, metadata={"a": "1"})
    copied = oss_v2_client.copy_object(
        oss.CopyObjectRequest(
            bucket=bucket, key="dst/copy", source_bucket=bucket, source_key="src/ü key"
        )
    )
    assert copied.etag == put.etag
    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="dst/copy"))
    assert head.metadata == {"a": "1"}
    assert _get(oss_v2_client, bucket, "dst/copy") == data

    oss_v2_client.copy_object(
        oss.CopyObjectRequest(
            bucket=bucket,
            key="dst/replaced",
            source_bucket=bucket,
            source_key="src/ü key",
            metadata_directive="REPLACE",
            metadata={"b": "2"},
            content_type="text/csv",
        )
    )
    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="dst/replaced"))
    assert head.metadata == {"b": "2"}
    assert head.content_type == "text/csv"


def test_copier_single_and_multipart(oss_v2_client: oss.Client, bucket: str) -> None:
    """The Copier: a small object in one CopyObject; with a lowered threshold and shallow
    copy disabled, a multipart copy via UploadPartCopy whose CRC the Copier checks against
    the source's."""
    data = os.urandom(350 * 1024)
    _put(oss_v2_client, bucket, "big-source", data)
    copier = oss_v2_client.copier()
    single = copier.copy(
        oss.CopyObjectRequest(
            bucket=bucket, key="single", source_bucket=bucket, source_key="big-source"
        )
    )
    assert single.upload_id is None
    assert _get(oss_v2_client, bucket, "single") == data

    multi = copier.copy(
        oss.CopyObjectRequest(
            bucket=bucket, key="multi", source_bucket=bucket, source_key="big-source"
        ),
        part_size=100 * 1024,
        multipart_copy_threshold=100 * 1024,
        disable_shallow_copy=True,
    )
    assert multi.upload_id
    assert multi.hash_crc64 == str(crc64(data))
    assert multi.etag is not None and multi.etag.endswith('-4"')
    assert _get(oss_v2_client, bucket, "multi") == data
    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="multi"))
    assert head.object_type == "Multipart"


# -- append -------------------------------------------------------------------------------


def test_append_object(oss_v2_client: oss.Client, bucket: str) -> None:
    """AppendObject at 0 then at the next position; a wrong position is 409
    PositionNotEqualToLength; the CRC reported is the whole object's."""
    first = oss_v2_client.append_object(
        oss.AppendObjectRequest(bucket=bucket, key="log", position=0, body=b"hel")
    )
    assert first.next_position == 3
    second = oss_v2_client.append_object(
        oss.AppendObjectRequest(bucket=bucket, key="log", position=3, body=b"lo")
    )
    assert second.next_position == 5
    assert second.hash_crc64 == "11177612005948864433"
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.append_object(
            oss.AppendObjectRequest(bucket=bucket, key="log", position=1, body=b"x")
        )
    error = _service_error(excinfo)
    assert (error.status_code, error.code) == (409, "PositionNotEqualToLength")
    assert error.headers.get("x-oss-next-append-position") == "5"
    assert _get(oss_v2_client, bucket, "log") == b"hello"


def test_append_file_and_reopen(oss_v2_client: oss.Client, bucket: str) -> None:
    """AppendOnlyFile creates an appendable object; reopening it picks up the length and
    CRC from HEAD (x-oss-object-type: Appendable) and continues where it ended."""
    params = oss.AppendObjectRequest(content_type="text/plain", metadata={"who": "me"})
    with oss_v2_client.append_file(bucket, "journal.txt", create_parameter=params) as f:
        assert f.write(b"line one\n") == 9
        assert f.write(b"line two\n") == 9
        assert f.tell() == 18
    with oss_v2_client.append_file(bucket, "journal.txt") as f:
        assert f.tell() == 18
        f.write(b"line three\n")
        f.write_from(b"x" * 70_000)
    expected = b"line one\nline two\nline three\n" + b"x" * 70_000
    result = oss_v2_client.get_object(oss.GetObjectRequest(bucket=bucket, key="journal.txt"))
    assert result.body.read() == expected
    assert result.object_type == "Appendable"
    assert result.content_type == "text/plain"
    assert result.metadata == {"who": "me"}
    assert result.hash_crc64 == str(crc64(expected))
    assert result.headers.get("x-oss-next-append-position") == str(len(expected))


def test_append_file_refuses_normal_object(oss_v2_client: oss.Client, bucket: str) -> None:
    """Opening a Normal object for appending fails in the SDK (the HEAD says Normal), and a
    raw AppendObject on it is 409 ObjectNotAppendable."""
    _put(oss_v2_client, bucket, "normal", b"abc")
    with pytest.raises(Exception, match=r"(?i)appendable"):
        oss_v2_client.append_file(bucket, "normal")
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.append_object(
            oss.AppendObjectRequest(bucket=bucket, key="normal", position=3, body=b"d")
        )
    assert _service_error(excinfo).code == "ObjectNotAppendable"


# -- multipart: uploader, listing ---------------------------------------------------------


def test_uploader_multipart_with_crc(
    oss_v2_client: oss.Client, bucket: str, tmp_path: Path
) -> None:
    """The Uploader splits a ~5 MiB file into 1 MiB parts uploaded in parallel and compares
    the CRC it combines from the UploadPart responses with CompleteMultipartUpload's."""
    data = os.urandom(5 * MiB + 12345)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    uploader = oss_v2_client.uploader(part_size=1 * MiB, parallel_num=3)
    result = uploader.upload_file(
        oss.PutObjectRequest(bucket=bucket, key="multi/ü.bin", content_type="application/x-test"),
        filepath=str(source),
    )
    assert result.upload_id
    assert result.hash_crc64 == str(crc64(data))
    assert result.etag is not None and result.etag.endswith('-6"')
    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="multi/ü.bin"))
    assert head.content_length == len(data)
    assert head.object_type == "Multipart"
    assert head.content_type == "application/x-test"
    assert _get(oss_v2_client, bucket, "multi/ü.bin") == data


def test_downloader_ranged_parallel(oss_v2_client: oss.Client, bucket: str, tmp_path: Path) -> None:
    """The Downloader fetches 1 MiB ranges in parallel (x-oss-range-behavior: standard) and
    checks the combined CRC against the object's; get_object_to_file checks the whole CRC."""
    data = os.urandom(3 * MiB + 777)
    _put(oss_v2_client, bucket, "dl/ß.bin", data)
    target = tmp_path / "download.bin"
    downloader = oss_v2_client.downloader(part_size=1 * MiB, parallel_num=3)
    result = downloader.download_file(
        oss.GetObjectRequest(bucket=bucket, key="dl/ß.bin"), filepath=str(target)
    )
    assert result.written == len(data)
    assert target.read_bytes() == data
    # The Downloader skips its check if the header is missing: make sure it was there.
    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="dl/ß.bin"))
    assert head.hash_crc64 == str(crc64(data))

    whole = tmp_path / "whole.bin"
    oss_v2_client.get_object_to_file(
        oss.GetObjectRequest(bucket=bucket, key="dl/ß.bin"), str(whole)
    )
    assert whole.read_bytes() == data


def test_range_behavior_standard(oss_v2_client: oss.Client, bucket: str) -> None:
    """With x-oss-range-behavior: standard an end past the object is clamped (206) and a
    start past it is 416 InvalidRange."""
    _put(oss_v2_client, bucket, "ten", b"0123456789")
    clamped = oss_v2_client.get_object(
        oss.GetObjectRequest(
            bucket=bucket, key="ten", range_header="bytes=5-100", range_behavior="standard"
        )
    )
    assert clamped.status_code == 206
    assert clamped.body.read() == b"56789"
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.get_object(
            oss.GetObjectRequest(
                bucket=bucket, key="ten", range_header="bytes=10-20", range_behavior="standard"
            )
        )
    error = _service_error(excinfo)
    assert (error.status_code, error.code) == (416, "InvalidRange")


def test_list_uploads_and_parts(oss_v2_client: oss.Client, bucket: str) -> None:
    """InitiateMultipartUpload, UploadPart (CRC checked), ListParts with HashCrc64ecma and
    paging, ListMultipartUploads with a url-encoded key, CompleteMultipartUpload and
    AbortMultipartUpload."""
    key = "mp/ä b+c"
    init = oss_v2_client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=bucket, key=key)
    )
    assert init.key == key
    upload_id = init.upload_id
    chunks = [os.urandom(100 * 1024), os.urandom(100 * 1024), b"tail"]
    uploaded = []
    for number, chunk in enumerate(chunks, start=1):
        part = oss_v2_client.upload_part(
            oss.UploadPartRequest(
                bucket=bucket, key=key, upload_id=upload_id, part_number=number, body=chunk
            )
        )
        assert part.hash_crc64 == str(crc64(chunk))
        uploaded.append(oss.UploadPart(part_number=number, etag=part.etag))
    other = oss_v2_client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=bucket, key="mp/other")
    )

    listed = oss_v2_client.list_parts(
        oss.ListPartsRequest(bucket=bucket, key=key, upload_id=upload_id, max_parts=2)
    )
    assert listed.is_truncated
    assert [p.part_number for p in listed.parts] == [1, 2]
    assert listed.parts[0].hash_crc64 == str(crc64(chunks[0]))
    rest = oss_v2_client.list_parts(
        oss.ListPartsRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            part_number_marker=listed.next_part_number_marker,
        )
    )
    assert [p.part_number for p in rest.parts] == [3]
    assert rest.parts[0].size == 4

    uploads = oss_v2_client.list_multipart_uploads(
        oss.ListMultipartUploadsRequest(bucket=bucket, prefix="mp/")
    )
    assert sorted((u.key, u.upload_id) for u in uploads.uploads) == sorted(
        [(key, upload_id), ("mp/other", other.upload_id)]
    )
    paged = list(
        oss_v2_client.list_multipart_uploads_paginator(limit=1).iter_page(
            oss.ListMultipartUploadsRequest(bucket=bucket)
        )
    )
    assert [u.key for page in paged for u in page.uploads or []] == ["mp/other", key]

    complete = oss_v2_client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=uploaded),
        )
    )
    assert complete.key == key
    assert complete.hash_crc64 == str(crc64(b"".join(chunks)))
    oss_v2_client.abort_multipart_upload(
        oss.AbortMultipartUploadRequest(bucket=bucket, key="mp/other", upload_id=other.upload_id)
    )
    left = oss_v2_client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket))
    assert not left.uploads
    assert _get(oss_v2_client, bucket, key) == b"".join(chunks)


# -- listing ------------------------------------------------------------------------------


def test_list_objects_v2_paginator_awkward_keys(oss_v2_client: oss.Client, bucket: str) -> None:
    """ListObjectsV2 pages of 2 with encoding-type=url give every awkward key back decoded,
    once, in byte order; with a delimiter the common prefixes come back decoded too."""
    for key in AWKWARD_KEYS:
        _put(oss_v2_client, bucket, key, key.encode())
    paginator = oss_v2_client.list_objects_v2_paginator(limit=2)
    pages = list(paginator.iter_page(oss.ListObjectsV2Request(bucket=bucket, encoding_type="url")))
    keys = [obj.key for page in pages for obj in page.contents or []]
    assert keys == sorted(AWKWARD_KEYS, key=lambda k: k.encode())
    assert len(pages) == 4
    assert all(page.encoding_type == "url" for page in pages)

    grouped = list(
        paginator.iter_page(
            oss.ListObjectsV2Request(bucket=bucket, delimiter="/", encoding_type="url")
        )
    )
    top = [obj.key for page in grouped for obj in page.contents or []]
    prefixes = [p.prefix for page in grouped for p in page.common_prefixes or []]
    assert top == ["plain.txt", "plus+plus", "space at end "]
    assert prefixes == ["dir/"]

    inside = oss_v2_client.list_objects_v2(
        oss.ListObjectsV2Request(bucket=bucket, prefix="dir/", delimiter="/", encoding_type="url")
    )
    assert [p.prefix for p in inside.common_prefixes or []] == ["dir/sub/"]
    assert inside.prefix == "dir/"
    assert sorted(obj.key for obj in inside.contents or []) == sorted(
        k for k in AWKWARD_KEYS if k.startswith("dir/") and "/sub/" not in k
    )

    v1 = list(
        oss_v2_client.list_objects_paginator(limit=3).iter_page(
            oss.ListObjectsRequest(bucket=bucket, encoding_type="url")
        )
    )
    assert [obj.key for page in v1 for obj in page.contents or []] == keys


def test_versioning_and_list_object_versions(oss_v2_client: oss.Client, bucket: str) -> None:
    """Versioning Enabled: each PUT a new version, DELETE adds a marker, old versions stay
    readable by id, and the ListObjectVersions paginator (url-encoded) returns every version
    and marker of awkward keys once, newest first per key."""
    assert (
        oss_v2_client.get_bucket_versioning(
            oss.GetBucketVersioningRequest(bucket=bucket)
        ).version_status
        is None
    )
    oss_v2_client.put_bucket_versioning(
        oss.PutBucketVersioningRequest(
            bucket=bucket,
            versioning_configuration=oss.VersioningConfiguration(status="Enabled"),
        )
    )
    got = oss_v2_client.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=bucket))
    assert got.version_status == "Enabled"

    keys = ["a b+c", "ü/x", "z%"]
    ids: dict[str, list[str]] = {}
    for key in keys:
        for n in range(2):
            result = _put(oss_v2_client, bucket, key, f"{key}-{n}".encode())
            assert result.version_id
            ids.setdefault(key, []).append(result.version_id)
    deleted = oss_v2_client.delete_object(oss.DeleteObjectRequest(bucket=bucket, key="a b+c"))
    assert deleted.delete_marker is True
    assert deleted.version_id
    assert not oss_v2_client.is_object_exist(bucket, "a b+c")
    old = _get(oss_v2_client, bucket, "a b+c", version_id=ids["a b+c"][0])
    assert old == b"a b+c-0"

    paginator = oss_v2_client.list_object_versions_paginator(limit=2)
    pages = list(
        paginator.iter_page(oss.ListObjectVersionsRequest(bucket=bucket, encoding_type="url"))
    )
    assert len(pages) >= 3
    seen: list[tuple[str, str, bool]] = []
    for page in pages:
        entries = [(v.key, v.version_id, False) for v in page.version or []]
        entries += [(m.key, m.version_id, True) for m in page.delete_marker or []]
        seen.extend(entries)
    markers = [(k, v) for k, v, is_marker in seen if is_marker]
    assert markers == [("a b+c", deleted.version_id)]
    versions = sorted((k, v) for k, v, is_marker in seen if not is_marker)
    assert versions == sorted((k, v) for k in keys for v in ids[k])

    # Removing the marker by id brings the newest version back.
    oss_v2_client.delete_object(
        oss.DeleteObjectRequest(bucket=bucket, key="a b+c", version_id=deleted.version_id)
    )
    assert _get(oss_v2_client, bucket, "a b+c") == b"a b+c-1"


def test_delete_multiple_objects(oss_v2_client: oss.Client, bucket: str) -> None:
    """DeleteMultipleObjects (Content-MD5 and encoding-type=url from the SDK) removes awkward
    keys, reports them decoded, and counts a missing key as deleted; quiet mode lists none."""
    for key in AWKWARD_KEYS:
        _put(oss_v2_client, bucket, key, b"x")
    result = oss_v2_client.delete_multiple_objects(
        oss.DeleteMultipleObjectsRequest(
            bucket=bucket,
            encoding_type="url",
            delete=oss.Delete(
                objects=[oss.ObjectIdentifier(key=k) for k in [*AWKWARD_KEYS[:4], "missing"]]
            ),
        )
    )
    assert sorted(d.key for d in result.deleted_objects) == sorted([*AWKWARD_KEYS[:4], "missing"])
    quiet = oss_v2_client.delete_multiple_objects(
        oss.DeleteMultipleObjectsRequest(
            bucket=bucket,
            encoding_type="url",
            delete=oss.Delete(
                objects=[oss.ObjectIdentifier(key=k) for k in AWKWARD_KEYS[4:]], quiet=True
            ),
        )
    )
    assert not quiet.deleted_objects
    left = oss_v2_client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket))
    assert not left.contents


# -- tagging, ACL, lifecycle --------------------------------------------------------------


def test_object_tagging(oss_v2_client: oss.Client, bucket: str) -> None:
    """Put/Get/DeleteObjectTagging, and x-oss-tagging on PutObject counted on HEAD."""
    _put(oss_v2_client, bucket, "tagged", b"x", tagging="a=1&b=two%20words")
    head = oss_v2_client.head_object(oss.HeadObjectRequest(bucket=bucket, key="tagged"))
    assert head.tagging_count == 2
    tags = oss_v2_client.get_object_tagging(
        oss.GetObjectTaggingRequest(bucket=bucket, key="tagged")
    )
    assert {t.key: t.value for t in tags.tag_set.tags} == {"a": "1", "b": "two words"}

    oss_v2_client.put_object_tagging(
        oss.PutObjectTaggingRequest(
            bucket=bucket,
            key="tagged",
            tagging=oss.Tagging(tag_set=oss.TagSet(tags=[oss.Tag(key="k<&>", value="v ü")])),
        )
    )
    tags = oss_v2_client.get_object_tagging(
        oss.GetObjectTaggingRequest(bucket=bucket, key="tagged")
    )
    assert {t.key: t.value for t in tags.tag_set.tags} == {"k<&>": "v ü"}
    oss_v2_client.delete_object_tagging(oss.DeleteObjectTaggingRequest(bucket=bucket, key="tagged"))
    tags = oss_v2_client.get_object_tagging(
        oss.GetObjectTaggingRequest(bucket=bucket, key="tagged")
    )
    assert not (tags.tag_set and tags.tag_set.tags)


def test_acls_and_anonymous_access(
    oss_v2_client: oss.Client, bucket: str, server: ServerProcess
) -> None:
    """Bucket and object ACLs round trip; anonymous GETs follow them (private -> 403
    AccessDenied, public-read object -> 200, public-read bucket -> 200)."""
    _put(oss_v2_client, bucket, "obj", b"secret")
    url = f"{server.oss_url}/{bucket}/obj"
    denied = requests.get(url, timeout=10)
    assert denied.status_code == 403
    assert "<Code>AccessDenied</Code>" in denied.text

    acl = oss_v2_client.get_bucket_acl(oss.GetBucketAclRequest(bucket=bucket))
    assert acl.acl == "private"
    oss_v2_client.put_object_acl(
        oss.PutObjectAclRequest(bucket=bucket, key="obj", acl="public-read")
    )
    got = oss_v2_client.get_object_acl(oss.GetObjectAclRequest(bucket=bucket, key="obj"))
    assert got.acl == "public-read"
    assert requests.get(url, timeout=10).content == b"secret"

    oss_v2_client.put_object_acl(oss.PutObjectAclRequest(bucket=bucket, key="obj", acl="default"))
    assert requests.get(url, timeout=10).status_code == 403
    oss_v2_client.put_bucket_acl(oss.PutBucketAclRequest(bucket=bucket, acl="public-read"))
    assert oss_v2_client.get_bucket_acl(oss.GetBucketAclRequest(bucket=bucket)).acl == "public-read"
    assert requests.get(url, timeout=10).content == b"secret"
    # public-read does not let strangers write.
    assert requests.put(url, data=b"vandal", timeout=10).status_code == 403
    assert _get(oss_v2_client, bucket, "obj") == b"secret"


def test_lifecycle_round_trip(oss_v2_client: oss.Client, bucket: str) -> None:
    """PutBucketLifecycle in the SDK's own element order and date forms, GetBucketLifecycle
    returns the same rules, DeleteBucketLifecycle leaves NoSuchLifecycle."""
    rules = [
        oss.LifecycleRule(
            id="logs",
            prefix="logs/",
            status="Enabled",
            expiration=oss.LifecycleRuleExpiration(days=30),
            transitions=[oss.LifecycleRuleTransition(days=10, storage_class="IA")],
            abort_multipart_upload=oss.LifecycleRuleAbortMultipartUpload(days=3),
        ),
        oss.LifecycleRule(
            id="old",
            prefix="old/",
            status="Disabled",
            expiration=oss.LifecycleRuleExpiration(
                created_before_date=datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
            ),
        ),
    ]
    oss_v2_client.put_bucket_lifecycle(
        oss.PutBucketLifecycleRequest(
            bucket=bucket, lifecycle_configuration=oss.LifecycleConfiguration(rules=rules)
        )
    )
    got = oss_v2_client.get_bucket_lifecycle(oss.GetBucketLifecycleRequest(bucket=bucket))
    by_id = {rule.id: rule for rule in got.lifecycle_configuration.rules}
    assert set(by_id) == {"logs", "old"}
    logs = by_id["logs"]
    assert (logs.prefix, logs.status, logs.expiration.days) == ("logs/", "Enabled", 30)
    assert [(t.days, t.storage_class) for t in logs.transitions] == [(10, "IA")]
    assert logs.abort_multipart_upload.days == 3
    old = by_id["old"]
    assert old.status == "Disabled"
    assert old.expiration.created_before_date == datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
    oss_v2_client.delete_bucket_lifecycle(oss.DeleteBucketLifecycleRequest(bucket=bucket))
    with pytest.raises(oss.exceptions.OperationError) as excinfo:
        oss_v2_client.get_bucket_lifecycle(oss.GetBucketLifecycleRequest(bucket=bucket))
    assert _service_error(excinfo).code == "NoSuchLifecycle"


# -- presigned URLs -----------------------------------------------------------------------


def test_presign_get_put_head(oss_v2_client: oss.Client, bucket: str) -> None:
    """V4 presigned GET, PUT (with a signed Content-Type) and HEAD URLs work from a plain
    HTTP client that has no credentials."""
    key = "pre/ü a+b.txt"
    put = oss_v2_client.presign(
        oss.PutObjectRequest(bucket=bucket, key=key, content_type="text/plain")
    )
    assert put.method == "PUT"
    assert "x-oss-signature" in put.url
    response = requests.put(put.url, data=b"presigned body", headers=put.signed_headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["x-oss-hash-crc64ecma"] == str(crc64(b"presigned body"))

    get = oss_v2_client.presign(oss.GetObjectRequest(bucket=bucket, key=key))
    response = requests.get(get.url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"presigned body"
    assert response.headers["Content-Type"] == "text/plain"

    head = oss_v2_client.presign(oss.HeadObjectRequest(bucket=bucket, key=key))
    response = requests.head(head.url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(b"presigned body"))

    # The GET URL does not authorise a DELETE.
    response = requests.delete(get.url, timeout=10)
    assert response.status_code == 403
    assert oss_v2_client.is_object_exist(bucket, key)


# -- V1 signatures ------------------------------------------------------------------------


def test_signature_v1_client(server: ServerProcess, bucket_name: str, tmp_path: Path) -> None:
    """The same SDK with `signature_version = "v1"`: bucket creation, put/get/head, copy,
    listing with awkward keys, append, multipart upload and a V1 presigned GET."""
    client = _client(server, signature_version="v1")
    client.put_bucket(oss.PutBucketRequest(bucket=bucket_name))
    data = os.urandom(10_000)
    for key in AWKWARD_KEYS:
        _put(client, bucket_name, key, data)
    assert _get(client, bucket_name, "dir/a b+c.txt") == data
    head = client.head_object(oss.HeadObjectRequest(bucket=bucket_name, key="dir/ünï©ødé 文件.bin"))
    assert head.content_length == len(data)
    client.copy_object(
        oss.CopyObjectRequest(
            bucket=bucket_name, key="copy", source_bucket=bucket_name, source_key="plus+plus"
        )
    )
    listed = [
        obj.key
        for page in client.list_objects_v2_paginator(limit=3).iter_page(
            oss.ListObjectsV2Request(bucket=bucket_name, encoding_type="url")
        )
        for obj in page.contents or []
    ]
    assert listed == sorted([*AWKWARD_KEYS, "copy"], key=lambda k: k.encode())
    client.append_object(
        oss.AppendObjectRequest(bucket=bucket_name, key="ap", position=0, body=b"a")
    )
    client.append_object(
        oss.AppendObjectRequest(bucket=bucket_name, key="ap", position=1, body=b"b")
    )
    assert _get(client, bucket_name, "ap") == b"ab"
    source = tmp_path / "v1.bin"
    big = os.urandom(300 * 1024)
    source.write_bytes(big)
    result = client.uploader(part_size=100 * 1024).upload_file(
        oss.PutObjectRequest(bucket=bucket_name, key="v1/multi"), filepath=str(source)
    )
    assert result.hash_crc64 == str(crc64(big))
    presigned = client.presign(oss.GetObjectRequest(bucket=bucket_name, key="dir/a b+c.txt"))
    assert "OSSAccessKeyId=" in presigned.url
    assert requests.get(presigned.url, timeout=10).content == data
    tags = client.get_object_tagging(oss.GetObjectTaggingRequest(bucket=bucket_name, key="copy"))
    assert not (tags.tag_set and tags.tag_set.tags)
    client.put_bucket_acl(oss.PutBucketAclRequest(bucket=bucket_name, acl="public-read"))
    assert client.get_bucket_acl(oss.GetBucketAclRequest(bucket=bucket_name)).acl == "public-read"


# -- virtual-hosted style -----------------------------------------------------------------


def _v1_authorization(method: str, resource: str, date: str, content_type: str = "") -> str:
    string_to_sign = f"{method}\n\n{content_type}\n{date}\n{resource}"
    digest = hmac.new(ACCESS_KEY_SECRET.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return f"OSS {ACCESS_KEY_ID}:{base64.b64encode(digest).decode()}"


def _raw(
    server: ServerProcess,
    method: str,
    target: str,
    host: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    address = urlsplit(server.oss_url)
    assert address.hostname is not None
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_virtual_hosted_style(
    oss_v2_client: oss.Client, bucket: str, server: ServerProcess
) -> None:
    """A `Host: <bucket>.localhost:<port>` request addresses the bucket by host: a V1-signed
    PUT and GET of `/<key>` (signed as `/<bucket>/<key>`), a bucket-level listing at `/`,
    and an anonymous GET once the bucket is public-read."""
    port = urlsplit(server.oss_url).port
    host = f"{bucket}.localhost:{port}"
    key = "vh/a b.txt"
    target = "/" + quote(key)
    date = email.utils.formatdate(usegmt=True)
    auth = _v1_authorization("PUT", f"/{bucket}/{key}", date, "text/plain")
    status, _, body = _raw(
        server,
        "PUT",
        target,
        host,
        b"virtual",
        {"Date": date, "Content-Type": "text/plain", "Authorization": auth},
    )
    assert status == 200, body
    assert _get(oss_v2_client, bucket, key) == b"virtual"

    auth = _v1_authorization("GET", f"/{bucket}/{key}", date)
    status, headers, body = _raw(
        server, "GET", target, host, headers={"Date": date, "Authorization": auth}
    )
    assert (status, body) == (200, b"virtual")
    assert headers["content-type"] == "text/plain"

    auth = _v1_authorization("GET", f"/{bucket}/", date)
    status, _, body = _raw(
        server, "GET", "/?prefix=vh%2F", host, headers={"Date": date, "Authorization": auth}
    )
    assert status == 200
    assert f"<Name>{bucket}</Name>".encode() in body
    assert b"<Key>vh/a b.txt</Key>" in body

    status, _, body = _raw(server, "GET", target, host)
    assert status == 403
    oss_v2_client.put_bucket_acl(oss.PutBucketAclRequest(bucket=bucket, acl="public-read"))
    status, _, body = _raw(server, "GET", target, host)
    assert (status, body) == (200, b"virtual")
    # A host under the domain whose first label is not a bucket name is not virtual-hosted
    # at all: `a.b.localhost` is path style and `/` is the service (signed only).
    status, _, body = _raw(server, "GET", "/", f"a.b.localhost:{port}")
    assert status == 403
