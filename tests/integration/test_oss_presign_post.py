"""Presigned URLs fetched by a plain HTTP client, and PostObject with a real HTML form.

URLs come from the official signers (`oss2` V1 and V4, `alibabacloud-oss-v2`) and are
fetched with `requests`, which holds no credentials. PostObject forms are real
`multipart/form-data` bodies built by `requests` (`files=`), sent to the path-style URL
`POST /<bucket>/`; their policy signatures are computed here from spec 4.8, independently
of the server's code.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import socket
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests

from tests.integration.test_oss_v2_sdk import (
    _purge_test_bucket,  # noqa: F401 (autouse)
    crc64,
)
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

REGION = "cn-hangzhou"
TIMEOUT = 10


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """(status, Code, Message) of an OSS error response."""
    root = ET.fromstring(response.content)
    assert root.tag == "Error", response.text
    return response.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def with_query(url: str, **changes: str) -> str:
    """`url` with some query parameters replaced (values given decoded)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- presigned URLs -----------------------------------------------------------------------


@pytest.fixture
def v4_bucket(server: ServerProcess, oss2_bucket: oss2.Bucket) -> oss2.Bucket:
    """The same bucket as `oss2_bucket`, seen through oss2 with V4 signatures."""
    return oss2.Bucket(
        oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
        server.oss_url,
        oss2_bucket.bucket_name,
        region=REGION,
    )


def test_oss2_v1_sign_url_get_and_put(oss2_bucket: oss2.Bucket) -> None:
    """oss2 V1 `sign_url`: a GET URL reads the object; a PUT URL signed with a Content-Type
    stores a body sent with that Content-Type and refuses one sent with another."""
    oss2_bucket.put_object("dir/a b+c.txt", b"hello v1")
    url = oss2_bucket.sign_url("GET", "dir/a b+c.txt", 60)
    assert "OSSAccessKeyId=" in url
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == b"hello v1"
    assert response.headers["x-oss-hash-crc64ecma"] == str(crc64(b"hello v1"))

    put_url = oss2_bucket.sign_url("PUT", "up/ü.txt", 60, headers={"Content-Type": "text/plain"})
    response = requests.put(
        put_url, data=b"uploaded", headers={"Content-Type": "text/plain"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    stored = oss2_bucket.get_object("up/ü.txt")
    assert stored.read() == b"uploaded"
    assert stored.headers["Content-Type"] == "text/plain"

    response = requests.put(
        put_url, data=b"other", headers={"Content-Type": "image/png"}, timeout=TIMEOUT
    )
    assert error_of(response)[:2] == (403, "SignatureDoesNotMatch")
    assert oss2_bucket.get_object("up/ü.txt").read() == b"uploaded"


def test_oss2_v1_sign_url_response_overrides_and_version(oss2_bucket: oss2.Bucket) -> None:
    """Signed `response-*` parameters override the response headers; a signed `versionId`
    reads that old version of a versioned bucket."""
    oss2_bucket.put_object("doc.bin", b"body", headers={"Content-Type": "application/x-a"})
    params = {
        "response-content-type": "text/csv",
        "response-content-disposition": 'attachment; filename="a b.csv"',
        "response-cache-control": "no-store",
    }
    url = oss2_bucket.sign_url("GET", "doc.bin", 60, params=dict(params))
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="a b.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    # The override parameters are signed: changing one breaks the signature.
    tampered = with_query(url, **{"response-content-type": "text/html"})
    assert error_of(requests.get(tampered, timeout=TIMEOUT))[:2] == (403, "SignatureDoesNotMatch")

    oss2_bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    first = oss2_bucket.put_object("v.txt", b"first").versionid
    oss2_bucket.put_object("v.txt", b"second")
    url = oss2_bucket.sign_url("GET", "v.txt", 60, params={"versionId": first})
    response = requests.get(url, timeout=TIMEOUT)
    assert response.content == b"first"
    assert response.headers["x-oss-version-id"] == first
    assert requests.get(oss2_bucket.sign_url("GET", "v.txt", 60), timeout=TIMEOUT).content == (
        b"second"
    )


def test_oss2_v4_sign_url(v4_bucket: oss2.Bucket) -> None:
    """oss2 with `AuthV4` and a region: presigned PUT (with a signed Content-Type) and GET
    URLs of an awkward key work; a GET URL used for another key does not."""
    key = "v4/ü a+b.txt"
    put_url = v4_bucket.sign_url("PUT", key, 60, headers={"Content-Type": "text/plain"})
    assert "x-oss-signature-version=OSS4-HMAC-SHA256" in put_url
    response = requests.put(
        put_url, data=b"v4 body", headers={"Content-Type": "text/plain"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    url = v4_bucket.sign_url("GET", key, 60, params={"response-content-language": "fr"})
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.content == b"v4 body"
    assert response.headers["Content-Language"] == "fr"

    v4_bucket.put_object("v4/other", b"other")
    encoded = "v4%2F%C3%BC%20a%2Bb.txt"  # oss2 encodes "/" too
    assert encoded in url
    moved = requests.get(url.replace(encoded, "v4%2Fother"), timeout=TIMEOUT)
    assert error_of(moved)[:2] == (403, "SignatureDoesNotMatch")


def test_v2_sdk_presign_get_put(oss_v2_client: oss.Client, oss2_bucket: oss2.Bucket) -> None:
    """v2 `presign` (V4, 15 min default): PUT with its signed headers, then GET and HEAD."""
    bucket = oss2_bucket.bucket_name
    put = oss_v2_client.presign(
        oss.PutObjectRequest(bucket=bucket, key="p/q r", content_type="application/json")
    )
    response = requests.put(put.url, data=b"{}", headers=put.signed_headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    get = oss_v2_client.presign(oss.GetObjectRequest(bucket=bucket, key="p/q r"))
    response = requests.get(get.url, timeout=TIMEOUT)
    assert (response.content, response.headers["Content-Type"]) == (b"{}", "application/json")
    head = oss_v2_client.presign(oss.HeadObjectRequest(bucket=bucket, key="p/q r"))
    assert requests.head(head.url, timeout=TIMEOUT).headers["Content-Length"] == "2"


def test_expired_urls_are_refused(
    oss2_bucket: oss2.Bucket, v4_bucket: oss2.Bucket, oss_v2_client: oss.Client
) -> None:
    """A URL used after its expiry is 403 AccessDenied "Request has expired." for every
    signer: oss2 V1, oss2 V4 and the v2 SDK (made with 1-2 s lifetimes), and a V1 URL
    whose Expires lies in the past."""
    oss2_bucket.put_object("exp", b"x")
    urls = [
        oss2_bucket.sign_url("GET", "exp", 1),
        v4_bucket.sign_url("GET", "exp", 1),
        oss_v2_client.presign(
            oss.GetObjectRequest(bucket=oss2_bucket.bucket_name, key="exp"),
            # The SDK truncates: 1 s would become x-oss-expires=0, which is out of range.
            expires=datetime.timedelta(seconds=2),
        ).url,
    ]
    # Crafted: Expires an hour ago, correctly signed.
    expires = str(int(time.time()) - 3600)
    resource = f"/{oss2_bucket.bucket_name}/exp"
    signature = base64.b64encode(
        hmac.new(
            ACCESS_KEY_SECRET.encode(), f"GET\n\n\n{expires}\n{resource}".encode(), hashlib.sha1
        ).digest()
    ).decode()
    query = urlencode({"OSSAccessKeyId": ACCESS_KEY_ID, "Expires": expires, "Signature": signature})
    crafted = f"{oss2_bucket.endpoint}{resource}?{query}"
    time.sleep(2.1)
    for url in [*urls, crafted]:
        response = requests.get(url, timeout=TIMEOUT)
        assert error_of(response) == (403, "AccessDenied", "Request has expired."), url


def test_tampered_signatures(oss2_bucket: oss2.Bucket, v4_bucket: oss2.Bucket) -> None:
    """A changed signature, a changed Expires or an unknown AccessKey ID in a presigned URL
    is refused with 403 (SignatureDoesNotMatch / InvalidAccessKeyId), never served."""
    oss2_bucket.put_object("t", b"x")
    v1 = oss2_bucket.sign_url("GET", "t", 60)
    signature = parse_qs(urlsplit(v1).query)["Signature"][0]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert error_of(requests.get(with_query(v1, Signature=flipped), timeout=TIMEOUT))[:2] == (
        403,
        "SignatureDoesNotMatch",
    )
    later = str(int(parse_qs(urlsplit(v1).query)["Expires"][0]) + 1000)
    assert error_of(requests.get(with_query(v1, Expires=later), timeout=TIMEOUT))[:2] == (
        403,
        "SignatureDoesNotMatch",
    )
    assert error_of(requests.get(with_query(v1, OSSAccessKeyId="nobody"), timeout=TIMEOUT))[:2] == (
        403,
        "InvalidAccessKeyId",
    )

    v4 = v4_bucket.sign_url("GET", "t", 60)
    wrong = "0" * 64
    assert error_of(requests.get(with_query(v4, **{"x-oss-signature": wrong}), timeout=TIMEOUT))[
        :2
    ] == (403, "SignatureDoesNotMatch")
    assert error_of(requests.get(with_query(v4, **{"x-oss-expires": "3000"}), timeout=TIMEOUT))[
        :2
    ] == (403, "SignatureDoesNotMatch")
    # A signature-bearing URL with an extra unsigned parameter (V4 signs every parameter).
    assert error_of(requests.get(with_query(v4, acl=""), timeout=TIMEOUT))[:2] == (
        403,
        "SignatureDoesNotMatch",
    )


# -- PostObject ---------------------------------------------------------------------------


def _expiration(seconds: float = 600) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _policy(conditions: list[Any], expiration: str | None = None) -> str:
    document = {"expiration": expiration or _expiration(), "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


def v1_form(conditions: list[Any], expiration: str | None = None, **fields: str) -> dict[str, str]:
    """Form fields signed with a V1 policy: Signature = base64(HMAC-SHA1(secret, policy))."""
    policy = _policy(conditions, expiration)
    signature = base64.b64encode(
        hmac.new(ACCESS_KEY_SECRET.encode(), policy.encode(), hashlib.sha1).digest()
    ).decode()
    return {**fields, "OSSAccessKeyId": ACCESS_KEY_ID, "policy": policy, "Signature": signature}


def _hmac256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def v4_form(
    conditions: list[Any],
    fields: dict[str, str],
    *,
    pin: bool = True,
    secret: str = ACCESS_KEY_SECRET,
) -> dict[str, str]:
    """Form fields signed with a V4 policy: kSigning derived as in spec 4.4 from the
    credential's date and region, x-oss-signature = hex(HMAC-SHA256(kSigning, policy))."""
    now = datetime.datetime.now(datetime.UTC)
    day, stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{ACCESS_KEY_ID}/{day}/{REGION}/oss/aliyun_v4_request"
    signing = {
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": credential,
        "x-oss-date": stamp,
    }
    pinned = [{name: value} for name, value in signing.items()] if pin else []
    policy = _policy([*conditions, *pinned])
    key = _hmac256(("aliyun_v4" + secret).encode(), day)
    for part in (REGION, "oss", "aliyun_v4_request"):
        key = _hmac256(key, part)
    signature = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    return {**fields, **signing, "policy": policy, "x-oss-signature": signature}


def post(
    server: ServerProcess,
    bucket: str,
    fields: dict[str, str],
    content: bytes = b"form file",
    filename: str = "local.txt",
    content_type: str = "text/plain",
    **kwargs: Any,
) -> requests.Response:
    """A real multipart/form-data POST to `/<bucket>/`, the file part last."""
    return requests.post(
        f"{server.oss_url}/{bucket}/",
        data=fields,
        files={"file": (filename, content, content_type)},
        timeout=TIMEOUT,
        **kwargs,
    )


def keys_of(bucket: oss2.Bucket) -> list[str]:
    """Every key in the bucket."""
    return [obj.key for obj in oss2.ObjectIterator(bucket)]


@pytest.fixture
def bucket(oss2_bucket: oss2.Bucket) -> oss2.Bucket:
    """An oss2 (V1, CRC on) handle on a fresh private bucket."""
    return oss2_bucket


def test_post_v1_policy_201(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A V1-signed form with success_action_status 201 stores the file under the form's key
    with the form's metadata and answers a PostResponse document with the MD5 ETag."""
    fields = v1_form(
        [
            {"bucket": bucket.bucket_name},
            ["starts-with", "$key", "uploads/"],
            ["content-length-range", 1, 1024],
            ["eq", "$success_action_status", "201"],
        ],
        key="uploads/photo ü.txt",
        success_action_status="201",
        **{"x-oss-meta-owner": "alice", "Content-Disposition": "inline", "x-oss-meta-Two": "2"},
    )
    response = post(server, bucket.bucket_name, fields, b"form body")
    assert response.status_code == 201, response.text
    root = ET.fromstring(response.content)
    assert root.tag == "PostResponse"
    assert root.findtext("Bucket") == bucket.bucket_name
    assert root.findtext("Key") == "uploads/photo ü.txt"
    etag = f'"{hashlib.md5(b"form body").hexdigest().upper()}"'
    assert root.findtext("ETag") == etag
    assert response.headers["ETag"] == etag
    assert response.headers["x-oss-hash-crc64ecma"] == str(crc64(b"form body"))

    stored = bucket.get_object("uploads/photo ü.txt")
    assert stored.read() == b"form body"
    assert stored.headers["Content-Type"] == "text/plain"  # the file part's type
    assert stored.headers["Content-Disposition"] == "inline"
    assert stored.headers["x-oss-meta-owner"] == "alice"
    assert stored.headers["x-oss-meta-two"] == "2"


@pytest.mark.parametrize(
    ("requested", "expected"), [("200", 200), ("204", 204), (None, 204), ("302", 204)]
)
def test_post_success_action_status(
    server: ServerProcess, bucket: oss2.Bucket, requested: str | None, expected: int
) -> None:
    """success_action_status 200 and 204 answer with an empty body; absent or any other
    value means 204."""
    extra = {"success_action_status": requested} if requested is not None else {}
    fields = v1_form([["starts-with", "$key", ""]], key="s.txt", **extra)
    response = post(server, bucket.bucket_name, fields)
    assert response.status_code == expected, response.text
    assert response.content == b""
    assert bucket.get_object("s.txt").read() == b"form file"


def test_post_redirect_and_filename(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """success_action_redirect answers 303 with Location carrying bucket, key and ETag
    (URL-encoded); `${filename}` in the key is replaced by the uploaded file's name; the
    form's Content-Type field wins over the file part's."""
    fields = v1_form(
        [["starts-with", "$key", "in/"]],
        key="in/${filename}",
        success_action_redirect="http://app.example.test/done?x=1",
        **{"Content-Type": "image/png"},
    )
    response = post(
        server, bucket.bucket_name, fields, b"png", filename="cat ü+.png", allow_redirects=False
    )
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["Location"])
    assert (location.netloc, location.path) == ("app.example.test", "/done")
    query = parse_qs(location.query)
    assert query["x"] == ["1"]
    assert query["bucket"] == [bucket.bucket_name]
    assert query["key"] == ["in/cat ü+.png"]
    assert query["etag"] == [hashlib.md5(b"png").hexdigest().upper()]
    stored = bucket.get_object("in/cat ü+.png")
    assert stored.read() == b"png"
    assert stored.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    ("content", "code"), [(b"tiny", "EntityTooSmall"), (b"x" * 2000, "EntityTooLarge")]
)
def test_post_content_length_range(
    server: ServerProcess, bucket: oss2.Bucket, content: bytes, code: str
) -> None:
    """A file outside the policy's content-length-range is 400 EntityTooSmall /
    EntityTooLarge, and nothing is stored."""
    fields = v1_form([["content-length-range", 10, 1000]], key="sized")
    response = post(server, bucket.bucket_name, fields, content)
    assert error_of(response)[:2] == (400, code)
    assert keys_of(bucket) == []


@pytest.mark.parametrize(
    ("condition", "fields"),
    [
        (["starts-with", "$key", "uploads/"], {"key": "elsewhere/a"}),
        (["eq", "$success_action_status", "201"], {"key": "k", "success_action_status": "200"}),
        (["in", "$content-type", ["image/jpg", "image/png"]], {"key": "k"}),
        (["not-in", "$cache-control", ["no-cache"]], {"key": "k", "Cache-Control": "no-cache"}),
        ({"bucket": "some-other-bucket"}, {"key": "k"}),
        ({"x-oss-meta-color": "red"}, {"key": "k", "x-oss-meta-color": "blue"}),
    ],
)
def test_post_failing_condition(
    server: ServerProcess, bucket: oss2.Bucket, condition: Any, fields: dict[str, str]
) -> None:
    """A form that breaks one policy condition is 403 AccessDenied naming the condition
    ("Invalid according to Policy: Policy Condition failed: ..."); nothing is stored."""
    form = v1_form([condition], **fields)
    response = post(server, bucket.bucket_name, form, content_type="text/plain")
    status, code, message = error_of(response)
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith("Invalid according to Policy: Policy Condition failed: ")
    named = json.loads(
        message.removeprefix("Invalid according to Policy: Policy Condition failed: ")
    )
    assert named == condition
    assert keys_of(bucket) == []


def test_post_expired_policy(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A policy whose expiration has passed is 403 AccessDenied "Policy expired."."""
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    fields = v1_form([["starts-with", "$key", ""]], expiration=past, key="late")
    response = post(server, bucket.bucket_name, fields)
    assert error_of(response) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )
    assert keys_of(bucket) == []


def test_post_bad_v1_signatures(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A wrong V1 signature is 403 SignatureDoesNotMatch, an unknown AccessKey ID 403
    InvalidAccessKeyId, a policy changed after signing 403 SignatureDoesNotMatch."""
    fields = v1_form([["starts-with", "$key", ""]], key="sig")
    bad = {**fields, "Signature": base64.b64encode(b"\0" * 20).decode()}
    assert error_of(post(server, bucket.bucket_name, bad))[:2] == (403, "SignatureDoesNotMatch")
    stranger = {**fields, "OSSAccessKeyId": "nobody"}
    assert error_of(post(server, bucket.bucket_name, stranger))[:2] == (403, "InvalidAccessKeyId")
    swapped = {**fields, "policy": _policy([["starts-with", "$key", "x"]])}
    assert error_of(post(server, bucket.bucket_name, swapped))[:2] == (
        403,
        "SignatureDoesNotMatch",
    )
    assert keys_of(bucket) == []


def test_post_v4_policy(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A V4-signed form (x-oss-signature-version, x-oss-credential, x-oss-date,
    x-oss-signature, conditions pinning them) stores the file; a wrong secret is
    SignatureDoesNotMatch; a policy not pinning the signing fields is AccessDenied."""
    fields = v4_form(
        [["starts-with", "$key", "v4/"], ["content-length-range", 0, 100]],
        {"key": "v4/${filename}", "success_action_status": "200", "x-oss-meta-via": "v4"},
    )
    response = post(server, bucket.bucket_name, fields, b"v4 form", filename="f.txt")
    assert response.status_code == 200, response.text
    stored = bucket.get_object("v4/f.txt")
    assert stored.read() == b"v4 form"
    assert stored.headers["x-oss-meta-via"] == "v4"

    wrong = v4_form([["starts-with", "$key", ""]], {"key": "bad"}, secret="not-the-secret")
    assert error_of(post(server, bucket.bucket_name, wrong))[:2] == (403, "SignatureDoesNotMatch")
    unpinned = v4_form([["starts-with", "$key", ""]], {"key": "bad"}, pin=False)
    assert error_of(post(server, bucket.bucket_name, unpinned))[:2] == (403, "AccessDenied")
    assert keys_of(bucket) == ["v4/f.txt"]


@pytest.mark.parametrize(
    ("acl", "allowed"),
    [("private", False), ("public-read", False), ("public-read-write", True)],
)
def test_post_anonymous(
    server: ServerProcess, bucket: oss2.Bucket, acl: str, allowed: bool
) -> None:
    """A form without any signature is anonymous: allowed only on a public-read-write
    bucket, 403 AccessDenied (nothing stored) otherwise."""
    bucket.put_bucket_acl(acl)
    response = post(server, bucket.bucket_name, {"key": "anon.txt"}, b"anonymous")
    if allowed:
        assert response.status_code == 204, response.text
        assert bucket.get_object("anon.txt").read() == b"anonymous"
    else:
        assert error_of(response)[:2] == (403, "AccessDenied")
        assert keys_of(bucket) == []


def test_post_missing_file(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A form without a file part is 400 IncorrectNumberOfFilesInPOSTRequest."""
    fields = v1_form([["starts-with", "$key", ""]], key="nofile")
    # `files` with a non-file part forces multipart/form-data without a `file` field.
    response = requests.post(
        f"{server.oss_url}/{bucket.bucket_name}/",
        files={name: (None, value) for name, value in fields.items()},
        timeout=TIMEOUT,
    )
    assert error_of(response)[:2] == (400, "IncorrectNumberOfFilesInPOSTRequest")
    assert keys_of(bucket) == []


def test_post_field_too_long(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A form field other than `file` over 4 KB is 400 FieldItemTooLong."""
    fields = v1_form([["starts-with", "$key", ""]], key="long", **{"x-oss-meta-big": "a" * 5000})
    response = post(server, bucket.bucket_name, fields)
    assert error_of(response)[:2] == (400, "FieldItemTooLong")
    assert keys_of(bucket) == []


def test_post_signature_params_on_url_are_ignored(
    server: ServerProcess, bucket: oss2.Bucket
) -> None:
    """A PostObject decides on the form alone: a bogus Authorization header does not make a
    correctly signed form fail, and a form on a missing bucket is NoSuchBucket."""
    fields = v1_form([["starts-with", "$key", ""]], key="hdr")
    response = post(
        server, bucket.bucket_name, fields, headers={"Authorization": "OSS nobody:AAAA"}
    )
    assert response.status_code == 204, response.text
    assert keys_of(bucket) == ["hdr"]
    response = post(server, "no-such-bucket-here", fields)
    assert error_of(response)[:2] == (404, "NoSuchBucket")


def multipart(parts: list[tuple[str, bytes, str | None]]) -> tuple[str, bytes]:
    """A hand-made multipart/form-data body (name, value, filename) in the given order."""
    boundary = "tidings-test-boundary"
    chunks = []
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n"
        chunks.append(head.encode() + value + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


def _form_parts(key: str) -> list[tuple[str, bytes, str | None]]:
    return [(name, value.encode(), None) for name, value in v1_form([], key=key).items()]


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ("after", "MalformedPOSTRequest"),
        ("two-files", "IncorrectNumberOfFilesInPOSTRequest"),
        ("unterminated", "MalformedPOSTRequest"),
    ],
)
def test_post_malformed_forms(
    server: ServerProcess, bucket: oss2.Bucket, parts: str, code: str
) -> None:
    """A field after the file, two files, or a body without its closing boundary is a 400
    with the documented code, and the file is not stored."""
    fields = _form_parts("bad-form")
    file = ("file", b"file content", "f.txt")
    layout = {
        "after": [*fields, file, ("x-oss-meta-late", b"1", None)],
        "two-files": [*fields, file, file],
        "unterminated": [*fields, file],
    }[parts]
    content_type, body = multipart(layout)
    if parts == "unterminated":
        body = body[: body.rindex(b"\r\n--")]
    response = requests.post(
        f"{server.oss_url}/{bucket.bucket_name}/",
        data=body,
        headers={"Content-Type": content_type},
        timeout=TIMEOUT,
    )
    assert error_of(response)[:2] == (400, code)
    assert keys_of(bucket) == []


def test_post_cut_short(server: ServerProcess, bucket: oss2.Bucket) -> None:
    """A form upload whose client goes away in the middle of the file stores nothing."""
    content_type, body = multipart([*_form_parts("cut"), ("file", b"z" * 100_000, "f.txt")])
    address = urlsplit(server.oss_url)
    assert address.hostname is not None and address.port is not None
    head = (
        f"POST /{bucket.bucket_name}/ HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)  # whatever the server says, if anything, before closing
    time.sleep(0.3)
    assert keys_of(bucket) == []
