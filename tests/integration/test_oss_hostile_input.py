"""Hostile and malformed input against the OSS listener of a real `tidings serve`.

Every refusal must be a clean 4xx (never a 5xx, never a hang, never 401), with the
documented code where the spec names one, and must leave no trace: a snapshot of the
bucket's state (keys, bytes, tags, versioning, lifecycle, uploads, restore state) taken
before is equal to one taken after. Requests are built by hand (http.client, raw
sockets) and signed here, V1 and V4 per spec 4.2/4.4, so that nothing an SDK would
refuse to send stays untested.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests

from tests.integration.test_oss_v2_sdk import _purge_test_bucket  # noqa: F401 (autouse)
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess
from tidings.api.oss.call import MAX_XML_BYTES

REGION = "cn-hangzhou"
QUICK_SECONDS = 3.0
# The V1 sub-resources the requests below use (spec 4.2).
SUBRESOURCES = frozenset(
    {
        "acl", "append", "continuation-token", "delete", "lifecycle", "objectMeta",
        "partNumber", "position", "restore", "tagging", "uploadId", "uploads", "versionId",
        "versioning", "versions",
    }
)  # fmt: skip


# -- signing and sending ------------------------------------------------------------------


def md5_b64(body: bytes) -> str:
    """The Content-MD5 value of a body."""
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def v1_headers(
    method: str,
    bucket: str | None,
    key: str | None,
    query: list[tuple[str, str]],
    headers: dict[str, str] | None = None,
    *,
    secret: str = ACCESS_KEY_SECRET,
    key_id: str = ACCESS_KEY_ID,
    date: str | None = None,
) -> dict[str, str]:
    """`headers` plus Date and a V1 Authorization for the decoded bucket/key/query."""
    result = {"Date": date or email.utils.formatdate(usegmt=True), **(headers or {})}
    lower = {name.lower(): value for name, value in result.items()}
    resource = "/" if bucket is None else f"/{bucket}/{key or ''}"
    picked = sorted((name, value) for name, value in query if name in SUBRESOURCES)
    if picked:
        resource += "?" + "&".join(f"{n}={v}" if v else n for n, v in picked)
    oss_headers = "".join(
        f"{name}:{lower[name]}\n" for name in sorted(lower) if name.startswith("x-oss-")
    )
    text = (
        f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
        f"{lower['date']}\n{oss_headers}{resource}"
    )
    digest = hmac.new(secret.encode(), text.encode("utf-8", "surrogateescape"), hashlib.sha1)
    result["Authorization"] = f"OSS {key_id}:{base64.b64encode(digest.digest()).decode()}"
    return result


def _v4_encode(text: str, keep_slash: bool) -> str:
    return quote(text.encode(), safe="/" if keep_slash else "")


def v4_headers(
    method: str,
    bucket: str | None,
    key: str | None,
    query: list[tuple[str, str]],
    headers: dict[str, str] | None = None,
    *,
    when: float | None = None,
) -> dict[str, str]:
    """`headers` plus a V4 Authorization (spec 4.4) dated `when` (default: now)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    result = {
        **(headers or {}),
        "x-oss-date": stamp,
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
    }
    lower = {name.lower(): value.strip() for name, value in result.items()}
    signed = sorted(
        n for n in lower if n.startswith("x-oss-") or n in ("content-type", "content-md5")
    )
    uri = _v4_encode("/" if bucket is None else f"/{bucket}/{key or ''}", keep_slash=True)
    pairs = sorted((_v4_encode(n, False), _v4_encode(v, False)) for n, v in query)
    canonical = "\n".join(
        [
            method,
            uri,
            "&".join(f"{n}={v}" if v else n for n, v in pairs),
            "".join(f"{n}:{lower[n]}\n" for n in signed),
            "",
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{stamp[:8]}/{REGION}/oss/aliyun_v4_request"
    text = "\n".join(
        ["OSS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signing = ("aliyun_v4" + ACCESS_KEY_SECRET).encode()
    for part in (stamp[:8], REGION, "oss", "aliyun_v4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing, text.encode(), hashlib.sha256).hexdigest()
    result["Authorization"] = (
        f"OSS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope},Signature={signature}"
    )
    return result


@dataclass
class Answer:
    """A response: status, lower-case headers, body, and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def code(self) -> str:
        """The error document's Code (from x-oss-err on HEAD), or ''."""
        document = self.body
        if not document and "x-oss-err" in self.headers:
            document = base64.b64decode(self.headers["x-oss-err"])
        if not document.lstrip().startswith(b"<"):
            return ""
        return ET.fromstring(document).findtext("Code") or ""

    @property
    def message(self) -> str:
        """The error document's Message."""
        return ET.fromstring(self.body).findtext("Message") or ""


def target_of(
    bucket: str | None, key: str | None, query: list[tuple[str, str]], raw_path: str | None
) -> str:
    """The request-target: the path (encoded like the v2 SDK: '/' literal) and query."""
    path = raw_path
    if path is None:
        path = "/" if bucket is None else f"/{bucket}/" + quote(key or "", safe="/")
    if not query:
        return path
    return path + "?" + "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in query)


class Oss:
    """Sends hand-made requests to the session server's OSS listener."""

    def __init__(self, server: ServerProcess) -> None:
        address = urlsplit(server.oss_url)
        assert address.hostname is not None and address.port is not None
        self.host, self.port = address.hostname, address.port
        self.url = server.oss_url

    def send(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        """One request over a fresh connection, Content-Length always set."""
        started = time.monotonic()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            answer = {name.lower(): value for name, value in response.getheaders()}
            return Answer(response.status, answer, data, time.monotonic() - started)
        finally:
            connection.close()

    def signed(
        self,
        method: str,
        bucket: str | None,
        key: str | None = None,
        query: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        raw_path: str | None = None,
        sign_key: str | None = None,
    ) -> Answer:
        """A V1-signed request; `sign_key` is the decoded key the server should compute."""
        query = query or []
        signed_headers = v1_headers(
            method, bucket, key if sign_key is None else sign_key, query, headers
        )
        return self.send(method, target_of(bucket, key, query, raw_path), body, signed_headers)

    def raw(
        self, data: bytes, *, half_close: bool = False, wait: float = 5.0, then: bytes = b""
    ) -> list[Answer]:
        """Write raw bytes on a socket and parse the responses that come back: one, then
        (after sending `then`, if given) another; fewer if the server closes."""
        answers: list[Answer] = []
        started = time.monotonic()
        with socket.create_connection((self.host, self.port), timeout=wait) as sock:
            try:
                sock.sendall(data)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may answer and close before reading everything
            for extra in (None, then) if then else (None,):
                if extra:
                    try:
                        sock.sendall(extra)
                    except OSError:
                        break
                # A new reader per response is safe: `then` is only sent once the
                # previous response has been read, so no buffered byte is lost.
                response = http.client.HTTPResponse(sock)
                try:
                    response.begin()
                    body = response.read()
                except (http.client.HTTPException, OSError):
                    break
                headers = {name.lower(): value for name, value in response.getheaders()}
                answers.append(Answer(response.status, headers, body, time.monotonic() - started))
        return answers


@pytest.fixture
def api(server: ServerProcess) -> Oss:
    """Hand-made requests to the session server."""
    return Oss(server)


# -- state snapshots ----------------------------------------------------------------------


@dataclass
class World:
    """A bucket with something of every kind in it, to prove refusals change nothing."""

    bucket: oss2.Bucket
    name: str
    upload_id: str


@pytest.fixture
def world(oss2_bucket: oss2.Bucket) -> World:
    """Objects (tagged, archived), bucket tags and an open multipart upload."""
    bucket = oss2_bucket
    bucket.put_object("victim", b"precious", headers={"x-oss-tagging": "a=1"})
    bucket.put_object("frozen", b"cold", headers={"x-oss-storage-class": "Archive"})
    rule = oss2.models.TaggingRule()
    rule.add("team", "x")
    bucket.put_bucket_tagging(oss2.models.Tagging(rule))
    upload_id = bucket.init_multipart_upload("mp").upload_id
    bucket.upload_part("mp", upload_id, 1, b"p" * 1000)
    return World(bucket, bucket.bucket_name, upload_id)


def snapshot(world: World) -> dict[str, Any]:
    """Everything a refused request might have changed."""
    bucket = world.bucket
    state: dict[str, Any] = {
        "objects": {
            obj.key: (obj.etag, obj.size)
            for obj in oss2.ObjectIteratorV2(bucket, fetch_owner=False)
        },
        "versioning": bucket.get_bucket_versioning().status,
        "victim": bucket.get_object("victim").read(),
        "victim-tags": bucket.get_object_tagging("victim").tag_set.tagging_rule,
        "bucket-tags": bucket.get_bucket_tagging().tag_set.tagging_rule,
        "frozen-restore": bucket.head_object("frozen").headers.get("x-oss-restore"),
        "uploads": [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket)],
        "parts": [
            (p.part_number, p.etag) for p in oss2.PartIterator(bucket, "mp", world.upload_id)
        ],
        "acl": bucket.get_bucket_acl().acl,
    }
    try:
        bucket.get_bucket_lifecycle()
        state["lifecycle"] = True
    except oss2.exceptions.NoSuchLifecycle:
        state["lifecycle"] = False
    return state


# -- XML bombs ----------------------------------------------------------------------------


def billion_laughs(root: str, field: str) -> bytes:
    """10**9 'lol's once expanded, in under 1 KB."""
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [{"".join(entities)}]>'
        f"<{root}><{field}>&lol9;</{field}></{root}>"
    ).encode()


def external_entity(root: str, field: str) -> bytes:
    """An entity that would inline /etc/passwd if resolved."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f"<{root}><{field}>&xxe;</{field}></{root}>"
    ).encode()


def parameter_entity(root: str, field: str) -> bytes:
    """A parameter entity pulling in a remote DTD."""
    return (
        f'<!DOCTYPE {root} [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>'
        f"<{root}><{field}>x</{field}></{root}>"
    ).encode()


def bare_dtd(root: str, field: str) -> bytes:
    """A harmless-looking DTD spelled in lower case: DTDs are refused outright."""
    return f"<!doctype {root}><{root}><{field}>1</{field}></{root}>".encode()


def utf16_dtd(root: str, field: str) -> bytes:
    """A DTD with an entity in a UTF-16 document (a byte-level scan cannot see it)."""
    text = (
        f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE {root} [<!ENTITY e "boom">]>'
        f"<{root}><{field}>&e;</{field}></{root}>"
    )
    return text.encode("utf-16")


def deep_nesting(root: str, field: str) -> bytes:
    """100 000 nested elements (about 700 KB, under the body limit)."""
    depth = 100_000
    return f"<{root}><{field}>{'<a>' * depth}{'</a>' * depth}</{field}></{root}>".encode()


def not_xml(root: str, field: str) -> bytes:
    """JSON where XML belongs."""
    return b'{"' + root.encode() + b'": {"' + field.encode() + b'": 1}}'


def unclosed(root: str, field: str) -> bytes:
    """A document cut off in the middle."""
    return f"<{root}><{field}>1</{field}>".encode()


BOMBS: list[Callable[[str, str], bytes]] = [
    billion_laughs,
    external_entity,
    parameter_entity,
    bare_dtd,
    utf16_dtd,
    deep_nesting,
    not_xml,
    unclosed,
]


@dataclass(frozen=True)
class XmlOperation:
    """An operation whose request body is an XML document."""

    name: str
    method: str
    key: str | None
    sub: str
    root: str
    field: str


XML_OPERATIONS = [
    XmlOperation("DeleteMultipleObjects", "POST", None, "delete", "Delete", "Object"),
    XmlOperation(
        "CompleteMultipartUpload", "POST", "mp", "uploadId", "CompleteMultipartUpload", "Part"
    ),
    XmlOperation(
        "PutBucketVersioning", "PUT", None, "versioning", "VersioningConfiguration", "Status"
    ),
    XmlOperation("PutBucketLifecycle", "PUT", None, "lifecycle", "LifecycleConfiguration", "Rule"),
    XmlOperation("PutObjectTagging", "PUT", "victim", "tagging", "Tagging", "TagSet"),
    XmlOperation("PutBucketTags", "PUT", None, "tagging", "Tagging", "TagSet"),
    XmlOperation("RestoreObject", "POST", "frozen", "restore", "RestoreRequest", "Days"),
    XmlOperation("PutBucket", "PUT", None, "", "CreateBucketConfiguration", "StorageClass"),
]


@pytest.mark.parametrize("operation", XML_OPERATIONS, ids=lambda op: op.name)
def test_xml_bombs_are_malformed_xml(api: Oss, world: World, operation: XmlOperation) -> None:
    """Billion laughs, external and parameter entities, any DTD (also in UTF-16), deep
    nesting and non-XML bodies are 400 MalformedXML, answered quickly, for every operation
    that parses an XML body; nothing changes (PutBucket creates no bucket)."""
    before = snapshot(world)
    bucket = world.name
    if operation.name == "PutBucket":
        bucket = f"b-{uuid.uuid4().hex[:16]}"
    query = [(operation.sub, world.upload_id if operation.sub == "uploadId" else "")]
    if not operation.sub:
        query = []
    for bomb in BOMBS:
        body = bomb(operation.root, operation.field)
        headers = {"Content-Type": "application/xml", "Content-MD5": md5_b64(body)}
        answer = api.signed(operation.method, bucket, operation.key, query, body, headers)
        assert (answer.status, answer.code) == (400, "MalformedXML"), (bomb.__name__, answer)
        assert answer.seconds < QUICK_SECONDS, bomb.__name__
        assert b"root:" not in answer.body
    assert snapshot(world) == before
    if operation.name == "PutBucket":
        assert api.signed("GET", bucket, None, [("acl", "")]).code == "NoSuchBucket"


def test_oversize_xml_bodies_are_refused_quickly(api: Oss, world: World) -> None:
    """An XML body over the in-memory limit is a quick 400 whether its Content-Length says
    so up front (even 10 GB that never come), or it arrives chunked; nothing is deleted."""
    before = snapshot(world)
    item = b"<Object><Key>victim</Key></Object>"
    body = b"<Delete>" + item * (MAX_XML_BYTES // len(item) + 10) + b"</Delete>"
    target = f"/{world.name}/?delete="
    headers = v1_headers("POST", world.name, None, [("delete", "")], {"Content-MD5": md5_b64(body)})
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    started = time.monotonic()
    raw = api.raw(
        f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert [(a.status, a.code) for a in raw] == [(400, "EntityTooLarge")]

    raw = api.raw(
        f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: 10737418240\r\n\r\n".encode()
    )
    assert [(a.status, a.code) for a in raw] == [(400, "EntityTooLarge")]

    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(piece), piece)
        for piece in (body[i : i + 65536] for i in range(0, len(body), 65536))
    )
    raw = api.raw(
        f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode()
        + chunked
        + b"0\r\n\r\n"
    )
    assert [(a.status, a.code) for a in raw] == [(400, "EntityTooLarge")]
    assert time.monotonic() - started < 3 * QUICK_SECONDS
    assert snapshot(world) == before


# -- signatures ---------------------------------------------------------------------------


def _oss2_bucket(server: ServerProcess, name: str, auth: Any, **kwargs: Any) -> oss2.Bucket:
    return oss2.Bucket(auth, server.oss_url, name, **kwargs)


def _v2_client(server: ServerProcess, key_id: str, secret: str, version: str) -> oss.Client:
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(key_id, secret)
    config.region = REGION
    config.endpoint = server.oss_url
    config.signature_version = version
    return oss.Client(config)


@pytest.mark.parametrize(
    ("key_id", "secret", "code"),
    [
        (ACCESS_KEY_ID, "wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-key", ACCESS_KEY_SECRET, "InvalidAccessKeyId"),
    ],
)
def test_bad_credentials_every_scheme(
    server: ServerProcess, world: World, key_id: str, secret: str, code: str
) -> None:
    """A wrong secret or an unknown AccessKey ID is 403 with the right code for V1, legacy
    V2 and V4 header signatures (oss2) and for the v2 SDK in V4 and V1 mode; the write is
    not performed."""
    before = snapshot(world)
    auths = [
        ("oss2-v1", oss2.Auth(key_id, secret), {}),
        ("oss2-v2", oss2.AuthV2(key_id, secret), {}),
        ("oss2-v4", oss2.AuthV4(key_id, secret), {"region": REGION}),
    ]
    for label, auth, kwargs in auths:
        bucket = _oss2_bucket(server, world.name, auth, **kwargs)
        with pytest.raises(oss2.exceptions.OssError) as excinfo:
            bucket.put_object("intruder", b"x")
        assert (excinfo.value.status, excinfo.value.code) == (403, code), label
    for version in ("v4", "v1"):
        client = _v2_client(server, key_id, secret, version)
        with pytest.raises(oss.exceptions.OperationError) as operation:
            client.put_object(oss.PutObjectRequest(bucket=world.name, key="intruder", body=b"x"))
        error = operation.value.unwrap()
        assert isinstance(error, oss.exceptions.ServiceError)
        assert (error.status_code, error.code) == (403, code), version
    assert snapshot(world) == before


def test_bad_presigned_urls_every_scheme(server: ServerProcess, world: World) -> None:
    """Presigned PUT URLs signed with a wrong secret (V1, legacy V2, V4) are 403
    SignatureDoesNotMatch; a V1 URL without its Signature is 403 AccessDenied."""
    before = snapshot(world)
    auths = [
        (oss2.Auth(ACCESS_KEY_ID, "wrong"), {}),
        (oss2.AuthV2(ACCESS_KEY_ID, "wrong"), {}),
        (oss2.AuthV4(ACCESS_KEY_ID, "wrong"), {"region": REGION}),
    ]
    for auth, kwargs in auths:
        url = _oss2_bucket(server, world.name, auth, **kwargs).sign_url("PUT", "intruder", 60)
        response = requests.put(url, data=b"x", timeout=10)
        assert response.status_code == 403, url
        assert ET.fromstring(response.content).findtext("Code") == "SignatureDoesNotMatch"
    good = world.bucket.sign_url("GET", "victim", 60)
    stripped = "&".join(p for p in good.split("&") if not p.startswith("Signature="))
    response = requests.get(stripped, timeout=10)
    assert response.status_code == 403
    assert ET.fromstring(response.content).findtext("Code") == "AccessDenied"
    assert snapshot(world) == before


def test_clock_skew_and_missing_dates(api: Oss, world: World) -> None:
    """Correctly signed V1 and V4 requests dated an hour away are 403
    RequestTimeTooSkewed; without any date they are 403 AccessDenied."""
    before = snapshot(world)
    query: list[tuple[str, str]] = []
    target = target_of(world.name, "intruder", query, None)
    old = email.utils.formatdate(time.time() - 3600, usegmt=True)
    answer = api.send("PUT", target, b"x", v1_headers("PUT", world.name, "intruder", [], date=old))
    assert (answer.status, answer.code) == (403, "RequestTimeTooSkewed")
    future = v4_headers("PUT", world.name, "intruder", [], when=time.time() + 3600)
    answer = api.send("PUT", target, b"x", future)
    assert (answer.status, answer.code) == (403, "RequestTimeTooSkewed")
    # The same V4 signer, dated now, is accepted: the skew alone was the problem.
    assert (
        api.send(
            "GET",
            target_of(world.name, "victim", [], None),
            b"",
            v4_headers("GET", world.name, "victim", []),
        ).body
        == b"precious"
    )

    no_date = v1_headers("PUT", world.name, "intruder", [])
    del no_date["Date"]
    answer = api.send("PUT", target, b"x", no_date)
    assert (answer.status, answer.code) == (403, "AccessDenied")
    no_stamp = v4_headers("PUT", world.name, "intruder", [])
    del no_stamp["x-oss-date"]
    answer = api.send("PUT", target, b"x", no_stamp)
    assert (answer.status, answer.code) == (403, "AccessDenied")
    assert snapshot(world) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "OSS",
        "OSS ",
        f"OSS {ACCESS_KEY_ID}",
        f"OSS {ACCESS_KEY_ID}:",
        "OSS :c2ln",
        "OSS4-HMAC-SHA256",
        "OSS4-HMAC-SHA256 garbage",
        f"OSS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20200101/x/oss/aliyun_v4_request",
        f"OSS4-HMAC-SHA256 Credential={ACCESS_KEY_ID},Signature=00",
        "OSS2 AccessKeyId:,Signature:",
        "Bearer abc",
        "Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ=",
        "\u00ff\u00fe",
    ],
)
def test_malformed_authorization_headers(api: Oss, world: World, authorization: str) -> None:
    """Malformed Authorization headers are refused with a 400 or 403 error document (never
    401, which the v2 SDK would retry) and change nothing."""
    target = target_of(world.name, "intruder", [], None)
    headers = {
        "Date": email.utils.formatdate(usegmt=True),
        "x-oss-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "Authorization": authorization,
    }
    answer = api.send("PUT", target, b"x", headers)
    assert answer.status in (400, 403), answer
    assert answer.code
    assert "x-oss-request-id" in answer.headers
    assert api.signed("HEAD", world.name, "intruder").status == 404


def test_mixed_and_anonymous_authentication(api: Oss, world: World) -> None:
    """A header signature together with presigned query parameters is refused (400
    InvalidArgument); an unsigned write to a private bucket is 403 AccessDenied."""
    query = [("OSSAccessKeyId", ACCESS_KEY_ID), ("Expires", "9999999999"), ("Signature", "x")]
    answer = api.signed("PUT", world.name, "intruder", query, b"x")
    assert (answer.status, answer.code) == (400, "InvalidArgument")
    answer = api.send("PUT", target_of(world.name, "intruder", [], None), b"x")
    assert (answer.status, answer.code) == (403, "AccessDenied")
    answer = api.send("GET", "/")
    assert (answer.status, answer.code) == (403, "AccessDenied")
    assert api.signed("HEAD", world.name, "intruder").status == 404


# -- path tricks --------------------------------------------------------------------------


def _tree(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if "tmp" not in path.relative_to(root).parts}


def test_path_tricks_address_literal_keys(api: Oss, world: World, server: ServerProcess) -> None:
    """Dot segments (raw or percent-encoded), NUL bytes and backslashes inside a key are
    parts of the key: the object is stored and read back under exactly that key, and no
    file appears outside the data directory."""
    escape = f"tidings-escape-{uuid.uuid4().hex}"
    outside = Path("/tmp") / escape
    parent = server.data_dir.parent
    siblings = set(parent.iterdir())
    cases = [
        # (raw path, the key the server must see)
        (f"/{world.name}/../{escape}", f"../{escape}"),
        (f"/{world.name}/{'%2e%2e%2f' * 4}tmp%2f{escape}", f"../../../../tmp/{escape}"),
        (f"/{world.name}/a/./b/../c", "a/./b/../c"),
        (f"/{world.name}/nul%00byte", "nul\x00byte"),
        (f"/{world.name}/back%5C..%5C..%5C{escape}", f"back\\..\\..\\{escape}"),
        (f"/{world.name}/dir//double", "dir//double"),
        (f"/{world.name}/%2e%2e", ".."),
    ]  # fmt: skip
    for number, (raw_path, key) in enumerate(cases):
        data = f"case {number}".encode()
        answer = api.signed("PUT", world.name, key, body=data, raw_path=raw_path)
        assert answer.status == 200, (raw_path, answer)
        # Read back through the same raw path and through the v2-style encoded path
        # (oss2 cannot be used: urllib3 resolves dot segments in its URLs).
        assert api.signed("GET", world.name, key, raw_path=raw_path).body == data, raw_path
        assert api.signed("GET", world.name, key).body == data, raw_path
    listed = {obj.key for obj in oss2.ObjectIteratorV2(world.bucket)}
    assert {key for _, key in cases} <= listed
    assert not outside.exists()
    assert set(parent.iterdir()) == siblings
    assert not list(server.data_dir.rglob(f"*{escape}*"))


def test_bad_object_names_are_refused(api: Oss, world: World) -> None:
    """Keys that decode to invalid UTF-8, start with '/' or '\\', or exceed 1023 bytes
    are 400 InvalidObjectName; a bucket path of '..' is refused; nothing is stored."""
    before = snapshot(world)
    unsigned = [
        f"/{world.name}/%ff%fe",
        f"/{world.name}/ok%c3",
        f"/{world.name}/%ed%a0%80surrogate",
        f"/{world.name}/%c0%afoverlong",
    ]
    for raw_path in unsigned:
        answer = api.send("PUT", raw_path, b"x")
        assert (answer.status, answer.code) == (400, "InvalidObjectName"), raw_path
    signed = [
        (f"/{world.name}//abs", "/abs"),
        (f"/{world.name}/%2Fabs", "/abs"),
        (f"/{world.name}/%5Cwin", "\\win"),
        (f"/{world.name}/" + "k" * 1024, "k" * 1024),
        (f"/{world.name}/" + "%C3%BC" * 512, "ü" * 512),
    ]
    for raw_path, key in signed:
        answer = api.signed("PUT", world.name, key, body=b"x", raw_path=raw_path)
        assert (answer.status, answer.code) == (400, "InvalidObjectName"), raw_path
    assert api.signed("PUT", world.name, "k" * 1023, body=b"x").status == 200
    world.bucket.delete_object("k" * 1023)
    answer = api.signed("PUT", "..", "x", body=b"x", raw_path="/../x")
    assert answer.status in (400, 404), answer
    assert answer.code in ("InvalidBucketName", "NoSuchBucket")
    assert snapshot(world) == before


# -- bodies that lie about their length or digest -----------------------------------------


def _head(
    world: World, key: str | None, extra: dict[str, str], query: str = "", method: str = "PUT"
) -> bytes:
    """A signed request head (no blank line yet) for raw sending."""
    params = [tuple(p.split("=", 1)) for p in query.split("&") if p] if query else []
    pairs = [(n[0], n[1] if len(n) > 1 else "") for n in params]
    headers = v1_headers(method, world.name, key, pairs, extra)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    target = f"/{world.name}/{quote(key or '')}" + (f"?{query}" if query else "")
    return f"{method} {target} HTTP/1.1\r\nHost: x\r\n{lines}".encode()


def test_body_shorter_than_content_length(api: Oss, world: World) -> None:
    """A client that announces 100 000 bytes, sends 1 000 and closes stores nothing: no
    object, no part, no append; nor does a chunked body cut off before its last chunk; a
    DeleteMultipleObjects document cut short (though well formed and with a matching
    Content-MD5 of what was sent) deletes nothing."""
    before = snapshot(world)
    head = _head(world, "short", {"Content-Length": "100000"})
    api.raw(head + b"\r\n" + b"x" * 1000, half_close=True, wait=2)
    part = _head(
        world, "mp", {"Content-Length": "100000"}, f"partNumber=2&uploadId={world.upload_id}"
    )
    api.raw(part + b"\r\n" + b"y" * 1000, half_close=True, wait=2)
    chunk = b"3e8\r\n" + b"z" * 1000 + b"\r\n"
    chunked = _head(world, "short-chunked", {"Transfer-Encoding": "chunked"})
    api.raw(chunked + b"\r\n" + chunk, half_close=True, wait=2)
    append = _head(
        world, "short-append", {"Transfer-Encoding": "chunked"}, "append&position=0", "POST"
    )
    api.raw(append + b"\r\n" + chunk, half_close=True, wait=2)
    document = b"<Delete><Object><Key>victim</Key></Object></Delete>"
    extra = {"Content-Length": "100000", "Content-MD5": md5_b64(document)}
    delete = _head(world, None, extra, "delete", "POST")
    api.raw(delete + b"\r\n" + document, half_close=True, wait=2)
    time.sleep(0.3)
    assert snapshot(world) == before


def test_body_longer_than_content_length(api: Oss, world: World) -> None:
    """Bytes beyond the Content-Length are not part of the object: the object is exactly
    the announced bytes, and the excess is read as a malformed next request (400); with a
    Content-MD5 of everything sent, the PUT is InvalidDigest and stores nothing."""
    excess = b", and more bytes than announced"
    head = _head(world, "long", {"Content-Length": "5"})
    answers = api.raw(head + b"\r\n" + b"hello", then=excess)
    assert [a.status for a in answers][:1] == [200]
    assert [a.status for a in answers] == [200, 400]
    assert world.bucket.get_object("long").read() == b"hello"

    body = b"hello" + excess
    head = _head(world, "long-md5", {"Content-Length": "5", "Content-MD5": md5_b64(body)})
    answers = api.raw(head + b"\r\n" + b"hello", then=excess)
    assert (answers[0].status, answers[0].code) == (400, "InvalidDigest")
    assert not world.bucket.object_exists("long-md5")


def test_wrong_content_md5(api: Oss, world: World) -> None:
    """A Content-MD5 that does not match the body (or is not base64 of 16 bytes) is 400
    InvalidDigest for PutObject, UploadPart, AppendObject, DeleteMultipleObjects and the
    XML configuration bodies; nothing is stored, deleted or reconfigured."""
    before = snapshot(world)
    wrong = md5_b64(b"something else")
    for digest in (wrong, "not base64!", base64.b64encode(b"short").decode()):
        headers = {"Content-MD5": digest}
        answers = {
            "put-new": api.signed("PUT", world.name, "md5-new", body=b"data", headers=headers),
            "put-over": api.signed("PUT", world.name, "victim", body=b"evil", headers=headers),
            "part": api.signed(
                "PUT",
                world.name,
                "mp",
                [("partNumber", "2"), ("uploadId", world.upload_id)],
                b"part",
                headers,
            ),
            "append": api.signed(
                "POST", world.name, "md5-append", [("append", ""), ("position", "0")], b"a", headers
            ),
            "delete": api.signed(
                "POST",
                world.name,
                None,
                [("delete", "")],
                b"<Delete><Object><Key>victim</Key></Object></Delete>",
                headers,
            ),
            "versioning": api.signed(
                "PUT",
                world.name,
                None,
                [("versioning", "")],
                b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
                headers,
            ),
            "tagging": api.signed(
                "PUT",
                world.name,
                "victim",
                [("tagging", "")],
                b"<Tagging><TagSet><Tag><Key>b</Key><Value>2</Value></Tag></TagSet></Tagging>",
                headers,
            ),
            "lifecycle": api.signed(
                "PUT",
                world.name,
                None,
                [("lifecycle", "")],
                b"<LifecycleConfiguration><Rule><ID>r</ID><Prefix></Prefix><Status>Enabled"
                b"</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
                headers,
            ),
        }
        for name, answer in answers.items():
            assert (answer.status, answer.code) == (400, "InvalidDigest"), (name, digest)
    assert snapshot(world) == before


# -- bogus parameters and headers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "key", "query"),
    [
        ("GET", None, [("max-keys", "abc")]),
        ("GET", None, [("max-keys", "-1")]),
        ("GET", None, [("max-keys", "1001")]),
        ("GET", None, [("max-keys", "1e3")]),
        ("GET", None, [("max-keys", "\u00b2")]),
        ("GET", None, [("max-keys", "\u0661\u0660")]),
        ("GET", None, [("list-type", "2"), ("max-keys", "abc")]),
        ("GET", None, [("list-type", "2"), ("continuation-token", "!!not-a-token!!")]),
        ("GET", None, [("versions", ""), ("max-keys", "abc")]),
        ("GET", None, [("uploads", ""), ("max-uploads", "abc")]),
        ("GET", None, [("uploads", ""), ("max-uploads", "0")]),
        ("GET", "mp", [("uploadId", "{upload}"), ("max-parts", "abc")]),
        ("GET", "mp", [("uploadId", "{upload}"), ("part-number-marker", "x")]),
        ("PUT", "mp", [("partNumber", "0"), ("uploadId", "{upload}")]),
        ("PUT", "mp", [("partNumber", "10001"), ("uploadId", "{upload}")]),
        ("PUT", "mp", [("partNumber", "-1"), ("uploadId", "{upload}")]),
        ("PUT", "mp", [("partNumber", "one"), ("uploadId", "{upload}")]),
        ("PUT", "mp", [("partNumber", "99999999999999999999999"), ("uploadId", "{upload}")]),
        ("PUT", "mp", [("partNumber", "\u00b2"), ("uploadId", "{upload}")]),
        ("PUT", "mp", [("partNumber", "\u0661"), ("uploadId", "{upload}")]),
        ("POST", "ap", [("append", ""), ("position", "-1")]),
        ("POST", "ap", [("append", ""), ("position", "abc")]),
        ("POST", "ap", [("append", ""), ("position", "")]),
        ("POST", "ap", [("append", ""), ("position", "\u0661")]),
        ("POST", "ap", [("append", ""), ("position", "\u00b2")]),
    ],
)
def test_bogus_query_values(
    api: Oss, world: World, method: str, key: str | None, query: list[tuple[str, str]]
) -> None:
    """Out-of-range or non-numeric max-keys, max-uploads, max-parts, part-number-marker,
    partNumber, position and continuation tokens are 400 InvalidArgument; nothing changes."""
    query = [(n, world.upload_id if v == "{upload}" else v) for n, v in query]
    before = snapshot(world) if method != "GET" else None
    answer = api.signed(method, world.name, key, query, b"body" if method != "GET" else b"")
    assert (answer.status, answer.code) == (400, "InvalidArgument"), answer
    if before is not None:
        assert snapshot(world) == before


@pytest.mark.parametrize("number", ["\u00b2", "\u0661", "-1", "1.0", " ", "9" * 30])
def test_bogus_numbers_in_xml_bodies(api: Oss, world: World, number: str) -> None:
    """A PartNumber in CompleteMultipartUpload or Days in RestoreObject that is not a plain
    ASCII number is a 400 error (never a 500); the upload stays open, nothing is restored."""
    before = snapshot(world)
    etag = world.bucket.list_parts("mp", world.upload_id).parts[0].etag
    complete = (
        "<CompleteMultipartUpload><Part><PartNumber>"
        f"{number}</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    ).encode()
    query = [("uploadId", world.upload_id)]
    answer = api.signed("POST", world.name, "mp", query, complete)
    assert answer.status == 400 and answer.code, answer
    restore = f"<RestoreRequest><Days>{number}</Days></RestoreRequest>".encode()
    answer = api.signed("POST", world.name, "frozen", [("restore", "")], restore)
    assert answer.status == 400 and answer.code, answer
    assert snapshot(world) == before


def test_missing_append_position(api: Oss, world: World) -> None:
    """AppendObject without `position` is 400 MissingArgument."""
    answer = api.signed("POST", world.name, "ap", [("append", "")], b"x")
    assert (answer.status, answer.code) == (400, "MissingArgument")
    assert api.signed("HEAD", world.name, "ap").status == 404


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-oss-storage-class", "Glacier"),
        ("x-oss-object-acl", "everyone"),
        ("x-oss-tagging", "=novalue&" + "&".join(f"k{i}=v" for i in range(11))),
        ("x-oss-meta-big", "x" * 9000),
    ],
)
def test_bogus_write_headers(api: Oss, world: World, header: str, value: str) -> None:
    """An unknown storage class or ACL, invalid tags or oversized metadata refuse the write
    with a 400 error document; the existing object is untouched."""
    before = snapshot(world)
    answer = api.signed("PUT", world.name, "victim", body=b"overwrite", headers={header: value})
    assert answer.status == 400, answer
    assert answer.code
    assert snapshot(world) == before


RANGES = [
    "bytes=99999999999999999999999999-",
    "bytes=0-99999999999999999999999999",
    "bytes=-99999999999999999999999999",
    "bytes=5-1",
    "bytes=-0",
    "bytes=abc",
    "bytes=",
    "bytes=-",
    "bytes=--1",
    "bytes=1--2",
    "bytes= 2 - 4 ",
    "items=0-1",
    "bytes=0-1,4-5",
    "bytes=" + ",".join(["0-0"] * 1500),
    "bytes=²-³",
    "bytes=0x1-0x2",
    "bytes=10-",
    "bytes=9-",
    "bytes=0-",
    "bytes=-10",
    "bytes=-11",
]


@pytest.mark.parametrize("standard", [False, True], ids=["default", "standard"])
def test_absurd_ranges(api: Oss, world: World, standard: bool) -> None:
    """Whatever the Range header says, the answer is the whole object (200), exactly the
    bytes its Content-Range names (206), or, with x-oss-range-behavior: standard, 416
    InvalidRange; never a server error or a wrong byte."""
    data = b"0123456789"
    world.bucket.put_object("ten", data)
    for value in RANGES:
        headers = {"Range": value}
        if standard:
            headers["x-oss-range-behavior"] = "standard"
        answer = api.signed("GET", world.name, "ten", headers=headers)
        if answer.status == 200:
            assert answer.body == data, value
        elif answer.status == 206:
            unit, _, spec = answer.headers["content-range"].partition(" ")
            span, _, total = spec.partition("/")
            first, _, last = span.partition("-")
            assert (unit, total) == ("bytes", "10"), value
            assert answer.body == data[int(first) : int(last) + 1], value
            assert answer.headers["content-length"] == str(len(answer.body))
        else:
            assert standard and (answer.status, answer.code) == (416, "InvalidRange"), value
    plain = api.signed("GET", world.name, "ten", headers={"Range": "bytes=10-"})
    assert (plain.status, plain.body) == (200, data)


# -- methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL", "LOCK"])
def test_unknown_methods(api: Oss, world: World, method: str) -> None:
    """Methods OSS does not use are 405 MethodNotAllowed on the service, a bucket and an
    object, with an error document and request id; nothing changes."""
    for bucket, key in ((None, None), (world.name, None), (world.name, "victim")):
        answer = api.signed(method, bucket, key, body=b"x")
        assert (answer.status, answer.code) == (405, "MethodNotAllowed"), (bucket, key)
        assert "x-oss-request-id" in answer.headers
    assert world.bucket.get_object("victim").read() == b"precious"


def test_unsupported_method_combinations(api: Oss, world: World) -> None:
    """Known methods on resources that do not take them are 405 MethodNotAllowed: PUT or
    DELETE on the service, POST on an object without a sub-resource."""
    assert api.signed("PUT", None).code == "MethodNotAllowed"
    assert api.signed("DELETE", None).code == "MethodNotAllowed"
    answer = api.signed("POST", world.name, "victim", body=b"x")
    assert (answer.status, answer.code) == (405, "MethodNotAllowed")


def test_unparseable_requests_close_cleanly(api: Oss) -> None:
    """Requests the HTTP parser cannot read (an unknown method token, a bad request line,
    a broken chunk size) get a 400 and a closed connection, not a hang or a 5xx."""
    for raw in (
        b"FOOBAR / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        started = time.monotonic()
        answers = api.raw(raw, wait=QUICK_SECONDS)
        assert [a.status for a in answers] in ([400], [505]), raw
        assert time.monotonic() - started < QUICK_SECONDS


def test_server_still_healthy(api: Oss, oss2_bucket: oss2.Bucket) -> None:
    """After all of the above, the server still serves ordinary requests."""
    oss2_bucket.put_object("fine", b"still here")
    assert oss2_bucket.get_object("fine").read() == b"still here"
    assert api.send("GET", "/health").body == b"ok"
