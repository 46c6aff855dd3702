"""Helpers shared by the `oss2` integration tests (test_oss2_*.py)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import oss2
import pytest
from oss2.exceptions import BucketNotEmpty, NoSuchBucket, OssError
from oss2.models import BatchDeleteObjectVersion, BatchDeleteObjectVersionList

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess


def error_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> OssError:
    """The OssError a call raises (fails the test if it raises nothing)."""
    with pytest.raises(OssError) as caught:
        call(*args, **kwargs)
    return caught.value


def md5_hex(data: bytes) -> str:
    """The ETag OSS gives a PutObject body or a part: upper-case hex MD5."""
    return hashlib.md5(data).hexdigest().upper()


def md5_b64(data: bytes) -> str:
    """A Content-MD5 header value."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def crc64(data: bytes, init: int = 0) -> int:
    """CRC-64/XZ as oss2 computes it (continuing from `init`)."""
    crc = oss2.utils.Crc64(init)
    crc.update(data)
    return int(crc.crc)


def signed_request(
    bucket: oss2.Bucket, method: str, key: str = "", **kwargs: Any
) -> oss2.http.Response:
    """A V1-signed request through oss2's own transport, for what no public oss2 call
    sends (a quiet DeleteMultipleObjects, an out-of-order completion); raises OssError
    as oss2 does."""
    return bucket._do(method, bucket.bucket_name, key, **kwargs)


def bucket_handle(server: ServerProcess, name: str | None = None) -> oss2.Bucket:
    """An oss2 Bucket (V1 signatures, CRC checks on) for `name`; nothing is created."""
    name = name or f"b-{uuid.uuid4().hex[:16]}"
    return oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.oss_url, name)


def new_bucket(server: ServerProcess, name: str | None = None) -> oss2.Bucket:
    """A freshly created bucket."""
    bucket = bucket_handle(server, name)
    bucket.create_bucket()
    return bucket


def remove_bucket(bucket: oss2.Bucket) -> None:
    """Delete every version, delete marker and multipart upload, then the bucket itself.

    The account may own only 100 buckets (spec 9.2), and the whole suite shares one
    server, so every bucket a test creates is removed again.
    """
    try:
        while True:
            listed = bucket.list_object_versions(max_keys=1000)
            entries = [BatchDeleteObjectVersion(v.key, v.versionid) for v in listed.versions]
            entries += [BatchDeleteObjectVersion(m.key, m.versionid) for m in listed.delete_marker]
            if not entries:
                break
            try:
                bucket.delete_object_versions(BatchDeleteObjectVersionList(entries))
            except OssError:
                # A key XML cannot carry (a control character) must go one by one; one
                # that `requests` rewrites (dot segments) oss2 cannot delete at all, and
                # is left to the test that made it.
                for entry in entries:
                    with contextlib.suppress(OssError):
                        bucket.delete_object(entry.key, params={"versionId": entry.versionid})
                break
        for upload in oss2.MultipartUploadIterator(bucket):
            bucket.abort_multipart_upload(upload.key, upload.upload_id)
        bucket.delete_bucket()
    except NoSuchBucket:
        pass  # the test removed it already
    except BucketNotEmpty:
        pass  # keys only raw requests can address; the session server allows many buckets
