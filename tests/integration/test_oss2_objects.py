"""Object operations driven by the official `oss2` SDK (V1 signatures, CRC-64 checks on)
against a real `tidings serve` process: PutObject, GetObject, HeadObject, GetObjectMeta,
DeleteObject, DeleteMultipleObjects, CopyObject, AppendObject, object ACL and tagging,
storage classes and RestoreObject (spec sections 5-7)."""

from __future__ import annotations

import base64
import email.utils
import http.client
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import oss2
import pytest
import requests

from tests.integration.oss2_support import (
    bucket_handle,
    crc64,
    error_of,
    md5_b64,
    md5_hex,
    new_bucket,
    remove_bucket,
    signed_request,
)
from tests.support import ServerProcess

EMPTY_MD5 = "D41D8CD98F00B204E9800998ECF8427E"


def http_date(seconds: float) -> str:
    """An RFC 1123 date for conditional headers."""
    return email.utils.formatdate(seconds, usegmt=True)


def anonymous(server: ServerProcess, bucket: oss2.Bucket) -> oss2.Bucket:
    """The same bucket seen by an unsigned (anonymous) client."""
    return oss2.Bucket(oss2.AnonymousAuth(), server.oss_url, bucket.bucket_name)


# -- PutObject ---------------------------------------------------------------------------


def test_put_returns_md5_etag_and_crc_and_stores_headers_and_user_metadata(
    oss2_bucket: oss2.Bucket,
) -> None:
    """PutObject answers with the body's MD5 as ETag and its CRC-64 (oss2 checks the CRC),
    and GET/HEAD return the stored HTTP headers and the user metadata, names lower-cased."""
    body = b"hello tidings"
    headers = {
        "Content-Type": "text/x-custom",
        "Content-Disposition": 'attachment; filename="x.txt"',
        "Cache-Control": "no-cache",
        "Content-Language": "en",
        "Content-Encoding": "identity",
        "Expires": "Thu, 01 Dec 2094 16:00:00 GMT",
        "x-oss-meta-Author": "Ada Lovelace",
        "x-oss-meta-empty": "",
    }
    result = oss2_bucket.put_object("doc", body, headers=headers)
    assert result.status == 200
    assert result.etag == md5_hex(body)
    assert result.crc == crc64(body)
    assert len(result.request_id) == 24

    got = oss2_bucket.get_object("doc")
    assert got.read() == body
    for name, value in headers.items():
        if not name.startswith("x-oss-meta-"):
            assert got.headers[name] == value
    assert got.headers["x-oss-meta-author"] == "Ada Lovelace"
    assert got.headers["x-oss-meta-empty"] == ""
    assert got.object_type == "Normal"
    assert got.headers["x-oss-storage-class"] == "Standard"
    assert got.server_crc == crc64(body)
    assert got.etag == md5_hex(body)

    head = oss2_bucket.head_object("doc")
    assert head.content_length == len(body)
    assert head.headers["x-oss-meta-author"] == "Ada Lovelace"
    assert head.content_type == "text/x-custom"


def test_content_type_is_guessed_from_the_key_when_the_request_has_none(
    oss2_bucket: oss2.Bucket,
) -> None:
    """Without a Content-Type (a presigned PUT from a plain client sends none) the server
    guesses one from the key's extension, else `application/octet-stream`; an explicit
    Content-Type wins over the extension."""
    for key, expected in [("page.html", "text/html"), ("noext", "application/octet-stream")]:
        url = oss2_bucket.sign_url("PUT", key, 60)
        response = requests.put(url, data=b"<p>x</p>", timeout=10)
        assert response.status_code == 200, response.text
        assert "Content-Type" not in response.request.headers
        assert oss2_bucket.head_object(key).content_type == expected

    oss2_bucket.put_object("data.json", b"{}")  # oss2 guesses too
    assert oss2_bucket.head_object("data.json").content_type == "application/json"
    oss2_bucket.put_object("plain.json", b"{}", headers={"Content-Type": "text/plain"})
    assert oss2_bucket.head_object("plain.json").content_type == "text/plain"


def test_put_honours_acl_storage_class_and_tagging_headers(oss2_bucket: oss2.Bucket) -> None:
    """`x-oss-object-acl`, `x-oss-storage-class` and `x-oss-tagging` on PutObject are
    stored: GetObjectAcl, the storage class header, the tag set and the tag count."""
    headers = {
        "x-oss-object-acl": oss2.OBJECT_ACL_PUBLIC_READ,
        "x-oss-storage-class": oss2.BUCKET_STORAGE_CLASS_IA,
        "x-oss-tagging": "project=tidings&note=a%20b%26c",
    }
    oss2_bucket.put_object("tagged", b"x", headers=headers)
    assert oss2_bucket.get_object_acl("tagged").acl == oss2.OBJECT_ACL_PUBLIC_READ
    head = oss2_bucket.head_object("tagged")
    assert head.headers["x-oss-storage-class"] == "IA"
    assert head.headers["x-oss-tagging-count"] == "2"
    tags = oss2_bucket.get_object_tagging("tagged").tag_set.tagging_rule
    assert tags == {"project": "tidings", "note": "a b&c"}


def test_put_refuses_unknown_storage_class_and_acl(oss2_bucket: oss2.Bucket) -> None:
    """An unknown storage class or object ACL is `400 InvalidArgument`; nothing stored."""
    for header, value in [("x-oss-storage-class", "Glacier"), ("x-oss-object-acl", "open")]:
        error = error_of(oss2_bucket.put_object, "bad", b"x", headers={header: value})
        assert (error.status, error.code) == (400, "InvalidArgument")
    assert not oss2_bucket.object_exists("bad")


def test_forbid_overwrite_refuses_an_existing_key_with_409(oss2_bucket: oss2.Bucket) -> None:
    """`x-oss-forbid-overwrite: true` creates a missing key but refuses an existing one
    with `409 FileAlreadyExists`, leaving the object untouched."""
    forbid = {"x-oss-forbid-overwrite": "true"}
    oss2_bucket.put_object("once", b"first", headers=forbid)
    error = error_of(oss2_bucket.put_object, "once", b"second", headers=forbid)
    assert (error.status, error.code) == (409, "FileAlreadyExists")
    assert oss2_bucket.get_object("once").read() == b"first"
    oss2_bucket.put_object("once", b"third", headers={"x-oss-forbid-overwrite": "false"})
    assert oss2_bucket.get_object("once").read() == b"third"


def test_content_md5_is_verified_and_a_mismatch_stores_nothing(
    oss2_bucket: oss2.Bucket,
) -> None:
    """A right Content-MD5 is accepted; a wrong or malformed one is `400 InvalidDigest`
    (oss2's InvalidDigest) and neither creates nor replaces the object."""
    body = b"checked body"
    oss2_bucket.put_object("md5", body, headers={"Content-MD5": md5_b64(body)})
    assert oss2_bucket.get_object("md5").read() == body

    for bad in [md5_b64(b"other"), "not-base64!", base64.b64encode(b"short").decode()]:
        error = error_of(oss2_bucket.put_object, "md5", b"evil", headers={"Content-MD5": bad})
        assert isinstance(error, oss2.exceptions.InvalidDigest)
        assert (error.status, error.code) == (400, "InvalidDigest")
        error = error_of(oss2_bucket.put_object, "fresh", b"evil", headers={"Content-MD5": bad})
        assert error.code == "InvalidDigest"
    assert oss2_bucket.get_object("md5").read() == body
    assert not oss2_bucket.object_exists("fresh")


def test_chunked_upload_of_an_iterable_body(oss2_bucket: oss2.Bucket) -> None:
    """oss2 streams a generator with `Transfer-Encoding: chunked` (no Content-Length);
    the server stores every byte and the CRC oss2 checks matches."""
    pieces = [bytes([i]) * (1000 + i) for i in range(50)]

    def generate() -> Iterator[bytes]:
        yield from pieces

    result = oss2_bucket.put_object("chunked.bin", generate())
    whole = b"".join(pieces)
    assert result.crc == crc64(whole)
    assert result.etag == md5_hex(whole)
    assert oss2_bucket.get_object("chunked.bin").read() == whole


def test_chunked_upload_with_content_md5(oss2_bucket: oss2.Bucket) -> None:
    """Content-MD5 is checked on chunked bodies too: right is stored, wrong is refused."""
    body = b"streamed and checked"
    good = {"Content-MD5": md5_b64(body)}
    oss2_bucket.put_object("c", iter([body[:5], body[5:]]), headers=good)
    assert oss2_bucket.get_object("c").read() == body
    bad = {"Content-MD5": md5_b64(b"x")}
    error = error_of(oss2_bucket.put_object, "c", iter([b"other", b" body"]), headers=bad)
    assert error.code == "InvalidDigest"
    assert oss2_bucket.get_object("c").read() == body


def test_a_body_cut_short_stores_nothing(oss2_bucket: oss2.Bucket) -> None:
    """A PUT whose connection closes before Content-Length bytes arrived leaves no object
    (and does not replace an existing one)."""
    oss2_bucket.put_object("kept", b"original")
    for key in ("fresh", "kept"):
        url = urlsplit(oss2_bucket.sign_url("PUT", key, 60))
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            request = (
                f"PUT /{oss2_bucket.bucket_name}/{key}?{url.query} HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nContent-Length: 1000\r\n\r\n"
            )
            sock.sendall(request.encode() + b"x" * 400)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(65536)  # whatever the server says, if anything
    assert not oss2_bucket.object_exists("fresh")
    assert oss2_bucket.get_object("kept").read() == b"original"


def test_user_metadata_over_8_kib_is_refused(oss2_bucket: oss2.Bucket) -> None:
    """User metadata above 8 KB in total is a 400 and stores nothing."""
    headers = {f"x-oss-meta-m{i}": "v" * 1000 for i in range(9)}
    error = error_of(oss2_bucket.put_object, "meta", b"x", headers=headers)
    assert error.status == 400
    assert not oss2_bucket.object_exists("meta")


def test_empty_object(oss2_bucket: oss2.Bucket) -> None:
    """An empty body is a valid object: MD5 of nothing, CRC 0, length 0 on GET and HEAD,
    and a Range on it is ignored (an empty object never yields 206)."""
    result = oss2_bucket.put_object("dir/", b"")
    assert (result.etag, result.crc) == (EMPTY_MD5, 0)
    got = oss2_bucket.get_object("dir/")
    assert (got.status, got.read(), got.content_length) == (200, b"", 0)
    assert oss2_bucket.head_object("dir/").content_length == 0
    ranged = oss2_bucket.get_object("dir/", byte_range=(0, 10))
    assert (ranged.status, ranged.read()) == (200, b"")


EDGE_KEYS = [
    "with space.txt",
    "a+b=c&d.txt",
    "100%",
    "50%25 encoded",
    "ünïcødé/日本語/😀.txt",
    "a//b",
    "a/../b",
    "./x/.",
    "tilde~star*quote'\"<tag>",
    "question?mark#hash",
    "semi;colon,comma:at@",
]


def test_key_edge_cases_round_trip(oss2_bucket: oss2.Bucket) -> None:
    """Keys are the percent-decoded path, never normalised: spaces, '+', '%', unicode,
    '//' and '..' segments and reserved characters all name distinct objects that PUT,
    GET, HEAD, list (url-encoded by the server, decoded by oss2), copy and delete."""
    for index, key in enumerate(EDGE_KEYS):
        body = f"{index}:{key}".encode()
        assert oss2_bucket.put_object(key, body).crc == crc64(body)
    for index, key in enumerate(EDGE_KEYS):
        body = f"{index}:{key}".encode()
        assert oss2_bucket.get_object(key).read() == body
        assert oss2_bucket.head_object(key).content_length == len(body)
    listed = [info.key for info in oss2.ObjectIterator(oss2_bucket)]
    assert listed == sorted(EDGE_KEYS, key=lambda k: k.encode())
    oss2_bucket.copy_object(oss2_bucket.bucket_name, EDGE_KEYS[4], "copy/" + EDGE_KEYS[9])
    assert oss2_bucket.get_object("copy/" + EDGE_KEYS[9]).read() == f"4:{EDGE_KEYS[4]}".encode()
    for key in EDGE_KEYS:
        oss2_bucket.delete_object(key)
        assert not oss2_bucket.object_exists(key)


def literal_request(bucket: oss2.Bucket, method: str, key: str, body: bytes = b"") -> bytes:
    """Send a presigned request whose path holds `key` literally (http.client does not
    collapse dot segments as `requests` does); return the body of the 200 response."""
    url = urlsplit(bucket.sign_url(method, key, 60))
    connection = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        connection.request(method, f"/{bucket.bucket_name}/{key}?{url.query}", body=body)
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, data
        return data
    finally:
        connection.close()


def test_dot_segments_sent_literally_are_not_collapsed(oss2_bucket: oss2.Bucket) -> None:
    """`requests` collapses a literal `/../` path (so oss2 cannot send the key `..`), but
    the server never does: presigned requests with literal dot segments and slashes
    address exactly those keys."""
    keys = ["..", "x/../y", "x/./y", "z//"]
    for key in keys:
        literal_request(oss2_bucket, "PUT", key, key.encode())
    for key in keys:
        assert literal_request(oss2_bucket, "GET", key) == key.encode()
    assert [info.key for info in oss2.ObjectIterator(oss2_bucket)] == keys


def test_key_length_limit_is_1023_bytes(oss2_bucket: oss2.Bucket) -> None:
    """A 1023-byte UTF-8 key works; 1024 bytes, or a key starting with '/' or '\\', is
    `400 InvalidObjectName` (oss2 does not check these client-side)."""
    longest = "é" * 511 + "k"
    assert len(longest.encode()) == 1023
    oss2_bucket.put_object(longest, b"long")
    assert oss2_bucket.get_object(longest).read() == b"long"
    assert [info.key for info in oss2.ObjectIterator(oss2_bucket)] == [longest]

    for bad in [longest + "k", "/leading-slash", "\\leading-backslash"]:
        error = error_of(oss2_bucket.put_object, bad, b"x")
        assert isinstance(error, oss2.exceptions.InvalidObjectName)
        assert (error.status, error.code) == (400, "InvalidObjectName")
    assert [info.key for info in oss2.ObjectIterator(oss2_bucket)] == [longest]


def test_unimplemented_object_subresources_never_fall_through(oss2_bucket: oss2.Bucket) -> None:
    """PutSymlink is not implemented: `PUT ?symlink` is `501 NotImplemented` and must not
    be taken for a PutObject that stores an empty object under the link's name."""
    oss2_bucket.put_object("target", b"t")
    error = error_of(oss2_bucket.put_symlink, "target", "link")
    assert (error.status, error.code) == (501, "NotImplemented")
    assert not oss2_bucket.object_exists("link")
    assert error_of(oss2_bucket.get_symlink, "target").code == "NotImplemented"


# -- GetObject ---------------------------------------------------------------------------

BODY = bytes(range(256)) * 4  # 1024 bytes, every byte value


@pytest.fixture
def kilobyte(oss2_bucket: oss2.Bucket) -> oss2.Bucket:
    """A bucket holding `k` = BODY (1024 bytes)."""
    oss2_bucket.put_object("k", BODY)
    return oss2_bucket


def test_single_ranges_are_206_with_content_range(kilobyte: oss2.Bucket) -> None:
    """`bytes=a-b`, `bytes=a-` and `bytes=-n` give `206` with exact Content-Range and
    Content-Length, and the whole object's CRC (oss2 skips checking it on ranges)."""
    cases = [
        ((0, 9), 0, 9),
        ((1000, None), 1000, 1023),
        ((None, 10), 1014, 1023),
        ((1023, 1023), 1023, 1023),
    ]
    for byte_range, first, last in cases:
        got = kilobyte.get_object("k", byte_range=byte_range)
        assert got.status == 206
        assert got.content_range == f"bytes {first}-{last}/1024"
        assert got.content_length == last - first + 1
        assert got.read() == BODY[first : last + 1]
        assert got.headers["x-oss-hash-crc64ecma"] == str(crc64(BODY))


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1024", "bytes=1024-", "bytes=2000-3000", "bytes=9-2", "items=0-1", "bytes=x-y"],
)
def test_invalid_ranges_are_ignored_without_standard_behaviour(
    kilobyte: oss2.Bucket, header: str
) -> None:
    """By default an unsatisfiable or malformed range is ignored: `200` and the whole
    object (an end past the size included)."""
    got = kilobyte.get_object("k", headers={"Range": header})
    assert got.status == 200
    assert got.content_range is None
    assert got.read() == BODY


def test_standard_range_behaviour_clamps_the_end_and_refuses_a_start_past_the_end(
    kilobyte: oss2.Bucket,
) -> None:
    """With `x-oss-range-behavior: standard` an end past the size is clamped (206), and a
    start at or past the end, a malformed range or several ranges is `416 InvalidRange`."""
    standard = {"x-oss-range-behavior": "standard"}
    got = kilobyte.get_object("k", byte_range=(1000, 5000), headers=standard)
    assert (got.status, got.content_range) == (206, "bytes 1000-1023/1024")
    assert got.read() == BODY[1000:]
    for header in ["bytes=1024-", "bytes=5000-6000", "bytes=0-1,4-5", "items=0-1"]:
        error = error_of(kilobyte.get_object, "k", headers={**standard, "Range": header})
        assert (error.status, error.code) == (416, "InvalidRange")


def test_multi_range_serves_only_the_first_range(kilobyte: oss2.Bucket) -> None:
    """Several ranges are not supported: without the standard behaviour only the first
    one is honoured."""
    got = kilobyte.get_object("k", headers={"Range": "bytes=0-1,4-5"})
    assert (got.status, got.content_range) == (206, "bytes 0-1/1024")
    assert got.read() == BODY[0:2]


def test_conditional_get_and_head(kilobyte: oss2.Bucket) -> None:
    """If-Match / If-Unmodified-Since failures are `412 PreconditionFailed`; If-None-Match
    matching / If-Modified-Since not exceeded are `304` (oss2's NotModified); the rest
    serve the object. ETags compare without quotes and case."""
    etag = md5_hex(BODY)
    modified = kilobyte.head_object("k").last_modified
    past, future = http_date(modified - 3600), http_date(modified + 3600)
    now = http_date(modified)

    ok = [
        {"If-Match": f'"{etag}"'},
        {"If-Match": etag.lower()},
        {"If-None-Match": '"0123"'},
        {"If-Modified-Since": past},
        {"If-Unmodified-Since": future},
        {"If-Unmodified-Since": now},
        {"If-Modified-Since": "not a date"},  # unparseable dates are ignored
    ]
    for headers in ok:
        assert kilobyte.get_object("k", headers=headers).read() == BODY
        assert kilobyte.head_object("k", headers=headers).status == 200

    failed = [{"If-Match": '"0123"'}, {"If-Unmodified-Since": past}]
    not_modified = [
        {"If-None-Match": f'"{etag}"'},
        {"If-Modified-Since": now},
        {"If-Modified-Since": future},
    ]
    for headers in failed:
        error = error_of(kilobyte.get_object, "k", headers=headers)
        assert isinstance(error, oss2.exceptions.PreconditionFailed)
        assert error.status == 412
        assert error_of(kilobyte.head_object, "k", headers=headers).status == 412
    for headers in not_modified:
        error = error_of(kilobyte.get_object, "k", headers=headers)
        assert isinstance(error, oss2.exceptions.NotModified)
        assert isinstance(error_of(kilobyte.head_object, "k", headers=headers),
                          oss2.exceptions.NotModified)  # fmt: skip
    # If-Match is evaluated before If-None-Match.
    both = {"If-Match": '"0123"', "If-None-Match": f'"{etag}"'}
    assert error_of(kilobyte.get_object, "k", headers=both).status == 412


def test_response_header_overrides(kilobyte: oss2.Bucket) -> None:
    """`response-*` query parameters (signed sub-resources in V1) replace the headers."""
    params = {
        "response-content-type": "text/csv",
        "response-content-language": "fr",
        "response-expires": "Fri, 01 Jan 2100 00:00:00 GMT",
        "response-cache-control": "max-age=60",
        "response-content-disposition": 'attachment; filename="k.csv"',
        "response-content-encoding": "identity",
    }
    got = kilobyte.get_object("k", params=params)
    assert got.read() == BODY
    assert got.headers["Content-Type"] == "text/csv"
    assert got.headers["Content-Language"] == "fr"
    assert got.headers["Expires"] == "Fri, 01 Jan 2100 00:00:00 GMT"
    assert got.headers["Cache-Control"] == "max-age=60"
    assert got.headers["Content-Disposition"] == 'attachment; filename="k.csv"'
    assert got.headers["Content-Encoding"] == "identity"


def test_get_object_to_file_checks_the_crc(kilobyte: oss2.Bucket, tmp_path: Path) -> None:
    """`get_object_to_file` verifies the CRC-64 of what it received against the header,
    and a ranged download writes just the range; `get_object().read()` exposes matching
    client and server CRCs."""
    target = tmp_path / "k.bin"
    result = kilobyte.get_object_to_file("k", str(target))
    assert target.read_bytes() == BODY
    assert result.server_crc == crc64(BODY)
    kilobyte.get_object_to_file("k", str(target), byte_range=(10, 19))
    assert target.read_bytes() == BODY[10:20]
    got = kilobyte.get_object("k")
    got.read()
    assert got.client_crc == got.server_crc == crc64(BODY)


# -- HeadObject, GetObjectMeta -----------------------------------------------------------


def test_head_and_get_object_meta_describe_the_object(kilobyte: oss2.Bucket) -> None:
    """HEAD carries every GET header and Content-Length = size (no body); GetObjectMeta is
    the light form: size, ETag, Last-Modified and CRC."""
    head = kilobyte.head_object("k")
    assert head.content_length == 1024
    assert head.etag == md5_hex(BODY)
    assert head.object_type == "Normal"
    assert head.server_crc == crc64(BODY)
    assert head.headers["Accept-Ranges"] == "bytes"
    assert abs(head.last_modified - time.time()) < 300

    meta = kilobyte.get_object_meta("k")
    assert (meta.content_length, meta.etag) == (1024, md5_hex(BODY))
    assert meta.last_modified == head.last_modified
    assert meta.headers["x-oss-hash-crc64ecma"] == str(crc64(BODY))
    assert kilobyte.object_exists("k")


def test_missing_key_and_missing_bucket_are_told_apart_on_head(
    oss2_bucket: oss2.Bucket, server: ServerProcess
) -> None:
    """HEAD errors have no body, so the server sends the error document in `x-oss-err`:
    oss2 then raises NoSuchKey or NoSuchBucket (not the generic NotFound), and
    `object_exists` is False for a missing key but raises for a missing bucket."""
    for call in (oss2_bucket.head_object, oss2_bucket.get_object_meta):
        error = error_of(call, "absent")
        assert isinstance(error, oss2.exceptions.NoSuchKey)
        assert error.details["Key"] == "absent"
        assert error.headers["x-oss-err"]
    assert oss2_bucket.object_exists("absent") is False
    assert isinstance(error_of(oss2_bucket.get_object, "absent"), oss2.exceptions.NoSuchKey)

    gone = bucket_handle(server, f"gone-{uuid.uuid4().hex}")
    for call in (gone.head_object, gone.get_object_meta, gone.object_exists, gone.get_object):
        error = error_of(call, "absent")
        assert isinstance(error, oss2.exceptions.NoSuchBucket)
        assert error.details["BucketName"] == gone.bucket_name


# -- DeleteObject, DeleteMultipleObjects ------------------------------------------------


def test_delete_is_idempotent(oss2_bucket: oss2.Bucket) -> None:
    """DeleteObject is `204` whether or not the key exists, and never claims a delete
    marker on an unversioned bucket."""
    oss2_bucket.put_object("gone", b"x")
    for _ in range(2):
        result = oss2_bucket.delete_object("gone")
        assert result.status == 204
        assert "x-oss-delete-marker" not in result.headers
    assert oss2_bucket.delete_object("never-was").status == 204
    assert not oss2_bucket.object_exists("gone")


def test_unversioned_objects_answer_to_version_null(oss2_bucket: oss2.Bucket) -> None:
    """On a never-versioned bucket the only version id is `null`: GET and HEAD accept it,
    another id is `404 NoSuchVersion`, and DELETE with `versionId=null` removes the
    object."""
    oss2_bucket.put_object("k", b"x")
    null = {"versionId": "null"}
    assert oss2_bucket.get_object("k", params=null).read() == b"x"
    assert oss2_bucket.head_object("k", params=null).content_length == 1
    error = error_of(oss2_bucket.get_object, "k", params={"versionId": "CAEQ1234"})
    assert (error.status, error.code) == (404, "NoSuchVersion")
    oss2_bucket.delete_object("k", params=null)
    assert not oss2_bucket.object_exists("k")


def test_batch_delete_reports_every_key(oss2_bucket: oss2.Bucket) -> None:
    """DeleteMultipleObjects (oss2 sends Content-MD5 and encoding-type=url) deletes the
    existing keys, counts missing ones as deleted, and lists each key decoded; more than
    1000 keys is `400 MalformedXML`."""
    keys = ["a.txt", "b&c <d>.txt", "ünï/cødé", "sp ace+plus"]
    for key in keys:
        oss2_bucket.put_object(key, b"x")
    oss2_bucket.put_object("keep", b"x")
    result = oss2_bucket.batch_delete_objects([*keys, "missing"])
    assert sorted(result.deleted_keys) == sorted([*keys, "missing"])
    assert [info.key for info in oss2.ObjectIterator(oss2_bucket)] == ["keep"]
    error = error_of(oss2_bucket.batch_delete_objects, [f"k{i}" for i in range(1001)])
    assert isinstance(error, oss2.exceptions.MalformedXml)
    assert oss2_bucket.object_exists("keep")


def test_quiet_batch_delete_lists_nothing_and_content_md5_is_required(
    oss2_bucket: oss2.Bucket,
) -> None:
    """`<Quiet>true</Quiet>` deletes the same but lists nothing; a missing Content-MD5 or
    a wrong one is refused before anything is deleted."""
    oss2_bucket.put_object("q1", b"x")
    oss2_bucket.put_object("q2", b"x")
    body = b"<Delete><Quiet>true</Quiet><Object><Key>q1</Key></Object></Delete>"
    params = {"delete": "", "encoding-type": "url"}

    error = error_of(signed_request, oss2_bucket, "POST", "", params=params, data=body)
    assert error.status == 400
    wrong = {"Content-MD5": md5_b64(b"other")}
    error = error_of(
        signed_request, oss2_bucket, "POST", "", params=params, data=body, headers=wrong
    )
    assert error.code == "InvalidDigest"
    assert oss2_bucket.object_exists("q1")

    response = signed_request(
        oss2_bucket, "POST", "", params=params, data=body, headers={"Content-MD5": md5_b64(body)}
    )
    assert response.status == 200
    assert b"<Deleted>" not in response.read()
    assert [info.key for info in oss2.ObjectIterator(oss2_bucket)] == ["q2"]


# -- CopyObject --------------------------------------------------------------------------


@pytest.fixture
def source(oss2_bucket: oss2.Bucket) -> oss2.Bucket:
    """A bucket holding `src` with stored headers, metadata and tags."""
    oss2_bucket.put_object(
        "src",
        b"source bytes",
        headers={
            "Content-Type": "text/plain",
            "Cache-Control": "no-store",
            "x-oss-meta-origin": "put",
            "x-oss-tagging": "t=1",
        },
    )
    return oss2_bucket


def test_copy_with_copy_directive_keeps_the_source_metadata(source: oss2.Bucket) -> None:
    """CopyObject defaults to COPY: the destination gets the source's bytes, ETag, CRC,
    stored headers, user metadata and tags; the request's metadata is ignored."""
    result = source.copy_object(
        source.bucket_name, "src", "dst", headers={"x-oss-meta-origin": "request"}
    )
    assert result.etag == md5_hex(b"source bytes")
    got = source.get_object("dst")
    assert got.read() == b"source bytes"
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Cache-Control"] == "no-store"
    assert got.headers["x-oss-meta-origin"] == "put"
    assert got.server_crc == crc64(b"source bytes")
    assert source.get_object_tagging("dst").tag_set.tagging_rule == {"t": "1"}


def test_copy_takes_the_buckets_storage_class_unless_the_request_names_one(
    source: oss2.Bucket,
) -> None:
    """Spec 6.2: a copy's storage class defaults to the bucket's, not the source's."""
    source.copy_object(source.bucket_name, "src", "ia", headers={"x-oss-storage-class": "IA"})
    assert source.head_object("ia").headers["x-oss-storage-class"] == "IA"
    source.copy_object(source.bucket_name, "ia", "plain")
    assert source.head_object("plain").headers["x-oss-storage-class"] == "Standard"


def test_copy_with_replace_directive_uses_the_request_metadata(source: oss2.Bucket) -> None:
    """`x-oss-metadata-directive: REPLACE` takes headers and metadata from the request;
    `x-oss-tagging-directive: Replace` takes the tags from `x-oss-tagging`."""
    source.copy_object(
        source.bucket_name,
        "src",
        "dst",
        headers={
            "x-oss-metadata-directive": "REPLACE",
            "Content-Type": "application/x-new",
            "x-oss-meta-fresh": "yes",
            "x-oss-tagging-directive": "Replace",
            "x-oss-tagging": "u=2&v=3",
            "x-oss-storage-class": "IA",
        },
    )
    head = source.head_object("dst")
    assert head.content_type == "application/x-new"
    assert head.headers["x-oss-meta-fresh"] == "yes"
    assert "x-oss-meta-origin" not in head.headers
    assert "Cache-Control" not in head.headers
    assert head.headers["x-oss-storage-class"] == "IA"
    assert source.get_object_tagging("dst").tag_set.tagging_rule == {"u": "2", "v": "3"}
    # Tags alone can be replaced while the metadata is copied.
    source.copy_object(
        source.bucket_name,
        "src",
        "dst2",
        headers={"x-oss-tagging-directive": "Replace", "x-oss-tagging": "only=tags"},
    )
    assert source.head_object("dst2").headers["x-oss-meta-origin"] == "put"
    assert source.get_object_tagging("dst2").tag_set.tagging_rule == {"only": "tags"}


def test_conditional_copy(source: oss2.Bucket) -> None:
    """`x-oss-copy-source-if-*` preconditions on the source: every failure is
    `412 PreconditionFailed` and writes nothing; satisfied ones copy."""
    etag = md5_hex(b"source bytes")
    modified = source.head_object("src").last_modified
    past, future = http_date(modified - 3600), http_date(modified + 3600)
    prefix = "x-oss-copy-source-"
    failing = [
        {f"{prefix}if-match": '"0123"'},
        {f"{prefix}if-none-match": f'"{etag}"'},
        {f"{prefix}if-unmodified-since": past},
        {f"{prefix}if-modified-since": future},
    ]
    for headers in failing:
        error = error_of(source.copy_object, source.bucket_name, "src", "dst", headers=headers)
        assert (error.status, error.code) == (412, "PreconditionFailed")
    assert not source.object_exists("dst")
    passing = {
        f"{prefix}if-match": f'"{etag}"',
        f"{prefix}if-none-match": '"0123"',
        f"{prefix}if-unmodified-since": future,
        f"{prefix}if-modified-since": past,
    }
    source.copy_object(source.bucket_name, "src", "dst", headers=passing)
    assert source.get_object("dst").read() == b"source bytes"


@pytest.fixture
def target(server: ServerProcess) -> Iterator[oss2.Bucket]:
    """A second bucket of the same account."""
    bucket = new_bucket(server)
    yield bucket
    remove_bucket(bucket)


def test_cross_bucket_copy_and_missing_sources(source: oss2.Bucket, target: oss2.Bucket) -> None:
    """CopyObject works across buckets; a missing source key is `404 NoSuchKey`, a
    missing source bucket `404 NoSuchBucket`; forbid-overwrite applies to the target."""
    target.copy_object(source.bucket_name, "src", "dir/copied")
    assert target.get_object("dir/copied").read() == b"source bytes"
    error = error_of(target.copy_object, source.bucket_name, "absent", "x")
    assert isinstance(error, oss2.exceptions.NoSuchKey)
    error = error_of(target.copy_object, f"gone-{uuid.uuid4().hex[:8]}", "src", "x")
    assert isinstance(error, oss2.exceptions.NoSuchBucket)
    error = error_of(
        target.copy_object,
        source.bucket_name,
        "src",
        "dir/copied",
        headers={"x-oss-forbid-overwrite": "true"},
    )
    assert error.code == "FileAlreadyExists"


def test_update_object_meta_copies_the_object_onto_itself(source: oss2.Bucket) -> None:
    """`update_object_meta` is a REPLACE copy onto the same key: the metadata changes,
    the bytes, ETag and CRC stay."""
    source.update_object_meta("src", {"Content-Type": "text/csv", "x-oss-meta-new": "1"})
    got = source.get_object("src")
    assert got.read() == b"source bytes"
    assert got.headers["Content-Type"] == "text/csv"
    assert got.headers["x-oss-meta-new"] == "1"
    assert "x-oss-meta-origin" not in got.headers
    assert got.etag == md5_hex(b"source bytes")
    assert got.server_crc == crc64(b"source bytes")


# -- AppendObject ------------------------------------------------------------------------


def test_append_positions_next_position_and_crc(oss2_bucket: oss2.Bucket) -> None:
    """Appends start at 0 and continue at the returned `next_position`; each returns the
    whole object's CRC (checked by oss2 when `init_crc` is given) and a new ETag; the
    first append's headers make the object's metadata."""
    first = oss2_bucket.append_object(
        "log", 0, b"hello ", headers={"Content-Type": "text/plain", "x-oss-meta-a": "1"}
    )
    assert (first.next_position, first.crc) == (6, crc64(b"hello "))
    second = oss2_bucket.append_object("log", first.next_position, b"world", init_crc=first.crc)
    assert (second.next_position, second.crc) == (11, crc64(b"hello world"))
    assert second.etag != first.etag

    def more() -> Iterator[bytes]:
        yield b"!"
        yield b"?"

    third = oss2_bucket.append_object("log", 11, more(), init_crc=second.crc)  # chunked
    assert third.next_position == 13

    got = oss2_bucket.get_object("log")
    assert got.read() == b"hello world!?"
    assert got.object_type == "Appendable"
    assert got.headers["x-oss-next-append-position"] == "13"
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["x-oss-meta-a"] == "1"
    head = oss2_bucket.head_object("log")
    assert head.headers["x-oss-next-append-position"] == "13"
    assert head.server_crc == crc64(b"hello world!?")


def test_append_at_the_wrong_position_reports_the_next_position(
    oss2_bucket: oss2.Bucket,
) -> None:
    """A position other than the length is `409 PositionNotEqualToLength` carrying
    `x-oss-next-append-position` (oss2 exposes it as `next_position`); nothing changes."""
    error = error_of(oss2_bucket.append_object, "new", 5, b"x")
    assert isinstance(error, oss2.exceptions.PositionNotEqualToLength)
    assert error.next_position == 0
    assert not oss2_bucket.object_exists("new")

    oss2_bucket.append_object("log", 0, b"abc")
    for position in (0, 2, 4):
        error = error_of(oss2_bucket.append_object, "log", position, b"x")
        assert isinstance(error, oss2.exceptions.PositionNotEqualToLength)
        assert error.next_position == 3
    assert oss2_bucket.get_object("log").read() == b"abc"


def test_append_to_a_normal_object_is_not_appendable(oss2_bucket: oss2.Bucket) -> None:
    """Appending to a Normal (or Multipart) object is `409 ObjectNotAppendable`; after a
    delete the key can start again as an appendable object."""
    oss2_bucket.put_object("normal", b"abc")
    error = error_of(oss2_bucket.append_object, "normal", 3, b"x")
    assert isinstance(error, oss2.exceptions.ObjectNotAppendable)
    assert error.status == 409
    oss2_bucket.delete_object("normal")
    assert oss2_bucket.append_object("normal", 0, b"x").next_position == 1


def test_append_refuses_a_bad_position_and_checks_content_md5(
    oss2_bucket: oss2.Bucket,
) -> None:
    """`position` must be a non-negative integer (`400 InvalidArgument`; missing is
    `400 MissingArgument`); a wrong Content-MD5 is `InvalidDigest` and appends nothing."""
    oss2_bucket.append_object("log", 0, b"abc")
    error = error_of(
        signed_request, oss2_bucket, "POST", "log", params={"append": "", "position": "-1"},
        data=b"x",
    )  # fmt: skip
    assert (error.status, error.code) == (400, "InvalidArgument")
    error = error_of(signed_request, oss2_bucket, "POST", "log", params={"append": ""}, data=b"x")
    assert (error.status, error.code) == (400, "MissingArgument")
    error = error_of(
        oss2_bucket.append_object, "log", 3, b"def", headers={"Content-MD5": md5_b64(b"no")}
    )
    assert error.code == "InvalidDigest"
    assert oss2_bucket.get_object("log").read() == b"abc"
    oss2_bucket.append_object("log", 3, b"def", headers={"Content-MD5": md5_b64(b"def")})
    assert oss2_bucket.get_object("log").read() == b"abcdef"


# -- ACLs and anonymous access -----------------------------------------------------------


def test_object_acl_decides_what_an_anonymous_client_may_read(
    oss2_bucket: oss2.Bucket, server: ServerProcess
) -> None:
    """In a private bucket an anonymous client reads only objects whose own ACL is
    public-read(-write); PutObjectAcl changes that at once; `default` inherits the
    bucket's ACL; anonymous writes to a private bucket are AccessDenied."""
    oss2_bucket.put_object("secret", b"s")
    oss2_bucket.put_object("open", b"o", headers={"x-oss-object-acl": "public-read"})
    stranger = anonymous(server, oss2_bucket)

    assert oss2_bucket.get_object_acl("secret").acl == "default"
    assert stranger.get_object("open").read() == b"o"
    assert stranger.head_object("open").content_length == 1
    for call in (stranger.get_object, stranger.head_object):
        error = error_of(call, "secret")
        assert isinstance(error, oss2.exceptions.AccessDenied)
        assert error.status == 403
    error = error_of(stranger.put_object, "intruder", b"x")
    assert isinstance(error, oss2.exceptions.AccessDenied)
    assert isinstance(error_of(stranger.delete_object, "open"), oss2.exceptions.AccessDenied)
    assert isinstance(error_of(stranger.get_object_acl, "open"), oss2.exceptions.AccessDenied)

    oss2_bucket.put_object_acl("secret", oss2.OBJECT_ACL_PUBLIC_READ)
    assert oss2_bucket.get_object_acl("secret").acl == "public-read"
    assert stranger.get_object("secret").read() == b"s"
    oss2_bucket.put_object_acl("secret", oss2.OBJECT_ACL_PRIVATE)
    assert isinstance(error_of(stranger.get_object, "secret"), oss2.exceptions.AccessDenied)

    # A public-read bucket: `default` objects become readable, `private` ones do not.
    oss2_bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    oss2_bucket.put_object_acl("open", oss2.OBJECT_ACL_DEFAULT)
    assert stranger.get_object("open").read() == b"o"
    assert isinstance(error_of(stranger.get_object, "secret"), oss2.exceptions.AccessDenied)
    assert isinstance(error_of(stranger.put_object, "x", b"x"), oss2.exceptions.AccessDenied)
    # An anonymous client may also learn that a key is missing in a readable bucket.
    assert isinstance(error_of(stranger.get_object, "absent"), oss2.exceptions.NoSuchKey)


def test_public_read_write_object_acl_is_refused_for_bad_values(
    oss2_bucket: oss2.Bucket,
) -> None:
    """PutObjectAcl refuses an unknown ACL (`400 InvalidArgument`) and a missing object
    (`404 NoSuchKey`)."""
    oss2_bucket.put_object("k", b"x")
    error = error_of(oss2_bucket.put_object_acl, "k", "everyone")
    assert (error.status, error.code) == (400, "InvalidArgument")
    error = error_of(oss2_bucket.put_object_acl, "absent", "private")
    assert isinstance(error, oss2.exceptions.NoSuchKey)
    oss2_bucket.put_object_acl("k", oss2.OBJECT_ACL_PUBLIC_READ_WRITE)
    assert oss2_bucket.get_object_acl("k").acl == "public-read-write"


def test_on_a_public_read_write_bucket_strangers_write_but_acl_and_tags_stay_the_owners(
    oss2_bucket: oss2.Bucket, server: ServerProcess
) -> None:
    """A public-read-write bucket lets anyone put, read and delete objects, but changing
    an object's ACL or tags (or restoring it) is still for the owner only."""
    oss2_bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    stranger = anonymous(server, oss2_bucket)
    stranger.put_object("drop", b"d")
    assert stranger.get_object("drop").read() == b"d"
    error = error_of(stranger.put_object_acl, "drop", oss2.OBJECT_ACL_PRIVATE)
    assert isinstance(error, oss2.exceptions.AccessDenied)
    rule = oss2.models.TaggingRule()
    rule.add("k", "v")
    error = error_of(stranger.put_object_tagging, "drop", oss2.models.Tagging(rule))
    assert isinstance(error, oss2.exceptions.AccessDenied)
    assert isinstance(error_of(stranger.restore_object, "drop"), oss2.exceptions.AccessDenied)
    stranger.delete_object("drop")
    assert not oss2_bucket.object_exists("drop")


# -- tagging -----------------------------------------------------------------------------


def test_object_tagging_put_get_delete(oss2_bucket: oss2.Bucket) -> None:
    """PutObjectTagging replaces the whole set, GetObjectTagging returns it (empty when
    untagged), DeleteObjectTagging clears it; HEAD reports `x-oss-tagging-count`."""
    oss2_bucket.put_object("k", b"x", headers={"x-oss-tagging": "old=1"})
    rule = oss2.models.TaggingRule()
    rule.add("owner", "team a")
    rule.add("kind", "")
    rule.add("ünï", "<&>")
    oss2_bucket.put_object_tagging("k", oss2.models.Tagging(rule))
    tags = oss2_bucket.get_object_tagging("k").tag_set.tagging_rule
    assert tags == {"owner": "team a", "kind": "", "ünï": "<&>"}
    assert oss2_bucket.head_object("k").headers["x-oss-tagging-count"] == "3"

    assert oss2_bucket.delete_object_tagging("k").status == 204
    assert oss2_bucket.get_object_tagging("k").tag_set.tagging_rule == {}
    assert "x-oss-tagging-count" not in oss2_bucket.head_object("k").headers
    assert oss2_bucket.get_object("k").read() == b"x"
    error = error_of(oss2_bucket.get_object_tagging, "absent")
    assert isinstance(error, oss2.exceptions.NoSuchKey)


def test_too_many_tags_are_refused(oss2_bucket: oss2.Bucket) -> None:
    """More than 10 tags in `x-oss-tagging` is a 400 and stores nothing."""
    header = "&".join(f"k{i}=v" for i in range(11))
    error = error_of(oss2_bucket.put_object, "k", b"x", headers={"x-oss-tagging": header})
    assert error.status == 400
    assert not oss2_bucket.object_exists("k")


# -- storage classes, archive and restore -----------------------------------------------


def test_storage_classes_are_stored_listed_and_changed_by_copy(
    oss2_bucket: oss2.Bucket,
) -> None:
    """Each storage class is stored per object, returned on HEAD and in listings, and a
    copy onto itself with `x-oss-storage-class` changes it in place."""
    classes = ["Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"]
    for name in classes:
        oss2_bucket.put_object(name, b"x", headers={"x-oss-storage-class": name})
        assert oss2_bucket.head_object(name).headers["x-oss-storage-class"] == name
    listed = {info.key: info.storage_class for info in oss2.ObjectIterator(oss2_bucket)}
    assert listed == {name: name for name in classes}
    oss2_bucket.copy_object(
        oss2_bucket.bucket_name, "Standard", "Standard", headers={"x-oss-storage-class": "IA"}
    )
    assert oss2_bucket.head_object("Standard").headers["x-oss-storage-class"] == "IA"
    assert oss2_bucket.get_object("Standard").read() == b"x"


def test_archive_data_needs_a_restore(oss2_bucket: oss2.Bucket) -> None:
    """An unrestored Archive object's data cannot be read or copied
    (`403 InvalidObjectState`), while HEAD, GetObjectMeta, listing, ACL, tagging and
    delete work; RestoreObject is `400 OperationNotSupported` on Standard objects and
    `404 NoSuchKey` on missing ones."""
    oss2_bucket.put_object("cold", b"frozen", headers={"x-oss-storage-class": "Archive"})
    for call, args in [
        (oss2_bucket.get_object, ("cold",)),
        (oss2_bucket.copy_object, (oss2_bucket.bucket_name, "cold", "copy")),
    ]:
        error = error_of(call, *args)
        assert (error.status, error.code) == (403, "InvalidObjectState")
    assert oss2_bucket.head_object("cold").content_length == 6
    assert oss2_bucket.get_object_meta("cold").content_length == 6
    assert "x-oss-restore" not in oss2_bucket.head_object("cold").headers
    assert oss2_bucket.get_object_acl("cold").acl == "default"

    oss2_bucket.put_object("warm", b"x")
    error = error_of(oss2_bucket.restore_object, "warm")
    assert isinstance(error, oss2.exceptions.OperationNotSupported)
    assert isinstance(error_of(oss2_bucket.restore_object, "absent"), oss2.exceptions.NoSuchKey)
    oss2_bucket.delete_object("cold")
    assert not oss2_bucket.object_exists("cold")


def test_restore_archive_object_on_a_fast_clock(fresh_server: ServerProcess) -> None:
    """RestoreObject on Archive: `202` at first, `409 RestoreAlreadyInProgress` while
    ongoing (`x-oss-restore: ongoing-request="true"`), then, after Archive's 60 s on a
    600x server clock (0.1 s), the data is readable, HEAD says `ongoing-request="false"`
    with an expiry date, and another RestoreObject extends it with `200`."""
    fresh_server.extra_args = ["--clock-speed", "600"]
    fresh_server.start()
    bucket = new_bucket(fresh_server, "restore-test")
    bucket.put_object("cold", b"thawed bytes", headers={"x-oss-storage-class": "Archive"})

    assert bucket.restore_object("cold").status == 202
    error = error_of(bucket.restore_object, "cold")
    assert isinstance(error, oss2.exceptions.RestoreAlreadyInProgress)
    assert bucket.head_object("cold").headers["x-oss-restore"] == 'ongoing-request="true"'

    deadline = time.monotonic() + 10
    while "expiry-date" not in bucket.head_object("cold").headers.get("x-oss-restore", ""):
        assert time.monotonic() < deadline, "the restore never completed"
        time.sleep(0.05)
    restore = bucket.head_object("cold").headers["x-oss-restore"]
    assert restore.startswith('ongoing-request="false", expiry-date="')
    assert restore.endswith(' GMT"')
    target = fresh_server.data_dir.parent / "thawed.bin"
    bucket.get_object_to_file("cold", str(target))
    assert target.read_bytes() == b"thawed bytes"
    assert bucket.restore_object("cold").status == 200
    standard = {"x-oss-storage-class": "Standard"}
    bucket.copy_object(bucket.bucket_name, "cold", "copy", headers=standard)
    assert bucket.get_object("copy").read() == b"thawed bytes"

    # ColdArchive takes a tier (Expedited: 1 h, 6 s here) and a longer lifetime.
    bucket.put_object("colder", b"x", headers={"x-oss-storage-class": "ColdArchive"})
    too_long = oss2.models.RestoreConfiguration(366)
    assert error_of(bucket.restore_object, "colder", input=too_long).code == "InvalidArgument"
    expedited = oss2.models.RestoreConfiguration(30, oss2.models.RestoreJobParameters("Expedited"))
    started = bucket.restore_object("colder", input=expedited)
    assert started.status == 202
    assert started.headers["x-oss-object-restore-priority"] == "Expedited"
    error = error_of(bucket.restore_object, "colder", input=expedited)
    assert isinstance(error, oss2.exceptions.RestoreAlreadyInProgress)
    assert error_of(bucket.get_object, "colder").code == "InvalidObjectState"
    eight_days = oss2.models.RestoreConfiguration(8)
    assert error_of(bucket.restore_object, "cold", input=eight_days).code == "InvalidArgument"
