"""OSS object events end to end, through the three official SDKs (issue 5, items 1-4).

Rules are created with the control-plane SDK (`alibabacloud-mns-open20220119`), objects
are changed and read with `oss2` and with `alibabacloud-oss-v2`, and the events are
received with `aliyun-mns-sdk` (whose default Base64 decoding turns the message body back
into the event JSON). Each event is compared field by field with event-sources.md §2.3:
the expected record is built from what the triggering response said (its
`x-oss-request-id`, its ETag, the sizes the test wrote) and must equal the received one
exactly, in the documented key order, with `eventTime` inside the request's time window.

"No event" is proven without sleeping: after the operation that must stay silent, a
sentinel operation that the rule does select is made on the same key, and everything
received up to the sentinel's event must be the sentinel alone (events of one key are
delivered in commit order, so an event the silent operation committed would come first).

Most tests share the session server and scope their rules to a bucket of their own. The
default-rule and suffix/bucket-prefix tests use a module server of their own: a default
rule catches every event of the server, and a suffix-only description overlaps every
other rule's resources.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from alibabacloud_mns_open20220119 import models as m
from alibabacloud_mns_open20220119.client import Client
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMeta
from oss2.exceptions import OssError

from tests.http_support import serve_http
from tests.integration.control_plane_support import REGION, client_for
from tests.integration.oss2_support import md5_b64, new_bucket, remove_bucket
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess
from tidings import push

RECEIVE_DEADLINE = 10.0
TIME_SLACK_SECONDS = 1.0
EVENT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
EVENT_STATUS_OK = {"Result": "Ok"}
# Top-level keys of one record, in the documented order (§2.3); xVars only when sent.
RECORD_KEYS = [
    "eventName",
    "eventSource",
    "eventTime",
    "eventVersion",
    "oss",
    "region",
    "requestParameters",
    "responseElements",
    "userIdentity",
]
KiB = 1024
PART = 100 * KiB  # the smallest non-last part OSS accepts


def b64_json(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


def unquote(etag: str | None) -> str:
    return (etag or "").strip('"')


# -- what an operation answered ------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """One successful SDK call: its request id, headers, ETag and time window."""

    request_id: str
    headers: Mapping[str, str]
    etag: str = ""
    started: float = 0.0
    finished: float = 0.0
    upload_id: str = ""

    @property
    def event_status(self) -> object:
        """The decoded `x-oss-event-status`, or None when the response has none."""
        return decoded_status(self.headers)


def decoded_status(headers: Mapping[str, str]) -> object:
    value = {k.lower(): v for k, v in headers.items()}.get("x-oss-event-status")
    if value is None:
        return None
    return json.loads(base64.b64decode(value, validate=True))


def timed(call: Callable[[], Any], etag: Callable[[Any], str | None] | None = None) -> Done:
    started = time.time()
    result = call()
    finished = time.time()
    headers = dict(result.headers)
    request_id = headers.get("x-oss-request-id") or headers.get("X-Oss-Request-Id") or ""
    assert request_id == result.request_id
    tag = etag(result) if etag is not None else getattr(result, "etag", None)
    upload_id = getattr(result, "upload_id", None) or ""
    return Done(result.request_id, headers, unquote(tag), started, finished, upload_id)


# -- the same operations through either SDK ---------------------------------------------


class Ops(Protocol):
    """The object operations the tests drive, as one SDK or the other performs them."""

    sdk: str
    bucket: str

    def put(self, key: str, data: bytes, headers: dict[str, str] | None = None) -> Done: ...
    def get(
        self, key: str, first: int | None = None, last: int | None = None, **headers: str
    ) -> Done: ...
    def append(self, key: str, position: int, data: bytes) -> Done: ...
    def copy(self, source_key: str, key: str) -> Done: ...
    def delete(self, key: str) -> Done: ...
    def delete_many(self, keys: list[str]) -> Done: ...
    def initiate(self, key: str) -> Done: ...
    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Done: ...
    def copy_part(
        self, key: str, upload_id: str, number: int, source_key: str, first: int, last: int
    ) -> Done: ...
    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> Done: ...
    def abort(self, key: str, upload_id: str) -> Done: ...


class Oss2Ops:
    """The operations through `oss2` (V1 signatures, CRC checks on)."""

    sdk = "oss2"

    def __init__(self, bucket: oss2.Bucket) -> None:
        self.handle = bucket
        self.bucket = bucket.bucket_name

    def put(self, key: str, data: bytes, headers: dict[str, str] | None = None) -> Done:
        return timed(lambda: self.handle.put_object(key, data, headers=headers))

    def get(
        self, key: str, first: int | None = None, last: int | None = None, **headers: str
    ) -> Done:
        span = None if first is None and last is None else (first, last)

        def call() -> Any:
            result = self.handle.get_object(key, byte_range=span, headers=headers or None)
            result.read()
            return result

        return timed(call)

    def append(self, key: str, position: int, data: bytes) -> Done:
        return timed(lambda: self.handle.append_object(key, position, data))

    def copy(self, source_key: str, key: str) -> Done:
        return timed(lambda: self.handle.copy_object(self.bucket, source_key, key))

    def delete(self, key: str) -> Done:
        return timed(lambda: self.handle.delete_object(key))

    def delete_many(self, keys: list[str]) -> Done:
        return timed(lambda: self.handle.batch_delete_objects(keys))

    def initiate(self, key: str) -> Done:
        return timed(lambda: self.handle.init_multipart_upload(key))

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Done:
        return timed(lambda: self.handle.upload_part(key, upload_id, number, data))

    def copy_part(
        self, key: str, upload_id: str, number: int, source_key: str, first: int, last: int
    ) -> Done:
        return timed(
            lambda: self.handle.upload_part_copy(
                self.bucket, source_key, (first, last), key, upload_id, number
            )
        )

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> Done:
        infos = [oss2.models.PartInfo(number, etag) for number, etag in parts]
        return timed(lambda: self.handle.complete_multipart_upload(key, upload_id, infos))

    def abort(self, key: str, upload_id: str) -> Done:
        return timed(lambda: self.handle.abort_multipart_upload(key, upload_id))


class V2Ops:
    """The operations through `alibabacloud-oss-v2` (V4 signatures, CRC checks on)."""

    sdk = "v2"

    def __init__(self, client: oss.Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, headers: dict[str, str] | None = None) -> Done:
        request = oss.PutObjectRequest(bucket=self.bucket, key=key, body=data)
        if headers:
            request.headers = dict(headers)
        return timed(lambda: self.client.put_object(request))

    def get(
        self, key: str, first: int | None = None, last: int | None = None, **headers: str
    ) -> Done:
        span = None
        if first is not None or last is not None:
            span = f"bytes={'' if first is None else first}-{'' if last is None else last}"
        request = oss.GetObjectRequest(bucket=self.bucket, key=key, range_header=span)
        if headers:
            request.headers = dict(headers)

        def call() -> Any:
            result = self.client.get_object(request)
            result.body.read()
            return result

        return timed(call)

    def append(self, key: str, position: int, data: bytes) -> Done:
        request = oss.AppendObjectRequest(bucket=self.bucket, key=key, position=position, body=data)
        return timed(lambda: self.client.append_object(request), lambda r: r.headers.get("ETag"))

    def copy(self, source_key: str, key: str) -> Done:
        request = oss.CopyObjectRequest(
            bucket=self.bucket, key=key, source_bucket=self.bucket, source_key=source_key
        )
        return timed(lambda: self.client.copy_object(request))

    def delete(self, key: str) -> Done:
        request = oss.DeleteObjectRequest(bucket=self.bucket, key=key)
        return timed(lambda: self.client.delete_object(request))

    def delete_many(self, keys: list[str]) -> Done:
        request = oss.DeleteMultipleObjectsRequest(
            bucket=self.bucket, objects=[oss.DeleteObject(key=key) for key in keys]
        )
        return timed(lambda: self.client.delete_multiple_objects(request))

    def initiate(self, key: str) -> Done:
        request = oss.InitiateMultipartUploadRequest(bucket=self.bucket, key=key)
        return timed(lambda: self.client.initiate_multipart_upload(request))

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Done:
        request = oss.UploadPartRequest(
            bucket=self.bucket, key=key, upload_id=upload_id, part_number=number, body=data
        )
        return timed(lambda: self.client.upload_part(request))

    def copy_part(
        self, key: str, upload_id: str, number: int, source_key: str, first: int, last: int
    ) -> Done:
        request = oss.UploadPartCopyRequest(
            bucket=self.bucket,
            key=key,
            upload_id=upload_id,
            part_number=number,
            source_bucket=self.bucket,
            source_key=source_key,
            source_range=f"bytes={first}-{last}",
        )
        return timed(lambda: self.client.upload_part_copy(request))

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> Done:
        request = oss.CompleteMultipartUploadRequest(
            bucket=self.bucket,
            key=key,
            upload_id=upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(
                parts=[oss.UploadPart(part_number=n, etag=etag) for n, etag in parts]
            ),
        )
        return timed(lambda: self.client.complete_multipart_upload(request))

    def abort(self, key: str, upload_id: str) -> Done:
        request = oss.AbortMultipartUploadRequest(bucket=self.bucket, key=key, upload_id=upload_id)
        return timed(lambda: self.client.abort_multipart_upload(request))


# -- rules and the queues that receive their events ---------------------------------------


def atom(**fields: Any) -> m.EventMatchRule:
    """An EventMatchRule from API-style keyword names (name, prefix, suffix, match_state)."""
    return m.EventMatchRule(**fields)


class Rules:
    """Creates rules through the control-plane SDK and deletes them all at the end."""

    def __init__(self, control: Client) -> None:
        self.control = control
        self.made: list[str] = []

    def create(
        self,
        name: str,
        event_types: list[str],
        match_rules: list[list[m.EventMatchRule]],
        *,
        queue: str | None = None,
        topic: str | None = None,
        endpoints: list[tuple[str, str]] | None = None,
    ) -> str:
        request = m.CreateEventRuleRequest(
            product_name="oss", rule_name=name, event_types=event_types, match_rules=match_rules
        )
        if queue is not None or topic is not None:
            kind, value = ("queue", queue) if queue is not None else ("topic", topic)
            request.endpoint = m.CreateEventRuleRequestEndpoint(
                endpoint_type=kind, endpoint_value=value
            )
        if endpoints is not None:
            request.endpoints = [
                m.CreateEventRuleRequestEndpoints(endpoint_type=kind, endpoint_value=value)
                for kind, value in endpoints
            ]
        answer = self.control.create_event_rule(request)
        assert answer.body.data == name
        self.made.append(name)
        return name

    def get(self, name: str) -> Any:
        request = m.GetEventRuleRequest(product_name="oss", rule_name=name)
        return self.control.get_event_rule(request).body.data

    def delete(self, name: str) -> None:
        self.control.delete_event_rule(m.DeleteEventRuleRequest(product_name="oss", rule_name=name))
        self.made.remove(name)

    def cleanup(self) -> None:
        for name in list(self.made):
            self.delete(name)


class EventQueue:
    """A queue receiving rule events; reads them with the SDK's default Base64 decoding."""

    def __init__(self, account: Account, name: str) -> None:
        self.account = account
        self.name = name
        self.queue = account.get_queue(name)
        self.queue.create(QueueMeta())

    def next_message(self, deadline: float = RECEIVE_DEADLINE) -> Any:
        """The next message (received and deleted), long-polling up to `deadline` s."""
        end = time.monotonic() + deadline
        while True:
            try:
                message = self.queue.receive_message(wait_seconds=1)
            except MNSServerException as error:
                if error.type != "MessageNotExist" or time.monotonic() > end:
                    raise
                continue
            self.queue.delete_message(message.receipt_handle)
            return message

    def next(self) -> dict[str, Any]:
        """The one record of the next event message."""
        document = json.loads(self.next_message().message_body)
        assert list(document) == ["events"]
        (record,) = document["events"]
        return dict(record)

    def until(self, request_id: str) -> list[dict[str, Any]]:
        """Records up to and including the one of the request `request_id`."""
        records = [self.next()]
        while records[-1]["responseElements"]["requestId"] != request_id:
            records.append(self.next())
        return records

    def delete(self) -> None:
        self.queue.delete()


def expect_event(
    record: Mapping[str, Any],
    event_name: str,
    bucket: str,
    key: str,
    rule: str,
    done: Done,
    *,
    size: int,
    delta: int,
    etag: str | None = None,
    position: int | None = None,
    read: tuple[int, int] | None = None,
    x_vars: dict[str, str] | None = None,
) -> None:
    """Assert that `record` is exactly the documented event of `done` (§2.3)."""
    obj: dict[str, Any] = {"deltaSize": delta, "eTag": done.etag if etag is None else etag}
    obj["key"] = key
    if position is not None:
        obj["position"] = position
    if read is not None:
        obj["readFrom"], obj["readTo"] = read
    obj["size"] = size
    expected: dict[str, Any] = {
        "eventName": event_name,
        "eventSource": "acs:oss",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": f"acs:oss:{REGION}:{ACCOUNT_ID}:{bucket}",
                "name": bucket,
                "ownerIdentity": ACCOUNT_ID,
            },
            "object": obj,
            "ossSchemaVersion": "1.0",
            "ruleId": rule,
        },
        "region": REGION,
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"requestId": done.request_id},
        "userIdentity": {"principalId": ACCOUNT_ID},
    }
    keys = RECORD_KEYS + (["xVars"] if x_vars else [])
    if x_vars:
        expected["xVars"] = x_vars
    assert list(record) == keys
    assert list(record["oss"]) == ["bucket", "object", "ossSchemaVersion", "ruleId"]
    assert list(record["oss"]["object"]) == list(obj)
    stamp = record["eventTime"]
    assert EVENT_TIME.fullmatch(stamp), stamp
    seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    moment = seconds + int(stamp[20:23]) / 1000
    assert done.started - TIME_SLACK_SECONDS <= moment <= done.finished + TIME_SLACK_SECONDS
    assert {k: v for k, v in record.items() if k != "eventTime"} == expected
    assert done.event_status == EVENT_STATUS_OK


@dataclass(frozen=True)
class Expect:
    """Checks events of one bucket against `expect_event`, by default for one rule and
    taking each record from the next message of one queue."""

    events: EventQueue
    bucket: str
    rule: str

    def __call__(
        self,
        event_name: str,
        key: str,
        done: Done,
        *,
        rule: str | None = None,
        record: Mapping[str, Any] | None = None,
        **facts: Any,
    ) -> Mapping[str, Any]:
        got = self.events.next() if record is None else record
        expect_event(got, event_name, self.bucket, key, rule or self.rule, done, **facts)
        return got


# -- fixtures -------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def rules(server: ServerProcess) -> Iterator[Rules]:
    made = Rules(client_for(server))
    yield made
    made.cleanup()


@pytest.fixture
def events(account: Account, queue_name: str) -> Iterator[EventQueue]:
    queue = EventQueue(account, queue_name)
    yield queue
    queue.delete()


@pytest.fixture(params=["oss2", "v2"])
def ops(
    request: pytest.FixtureRequest, server: ServerProcess, oss_v2_client: oss.Client
) -> Iterator[Ops]:
    """A fresh bucket driven through `oss2` or through the v2 SDK (removed afterwards)."""
    bucket = new_bucket(server)
    yield Oss2Ops(bucket) if request.param == "oss2" else V2Ops(oss_v2_client, bucket.bucket_name)
    remove_bucket(bucket)


@pytest.fixture
def all_events_rule(rules: Rules, events: EventQueue, ops: Ops) -> str:
    """A rule selecting every object event of the test's bucket, by group types."""
    return rules.create(
        unique("all"),
        ["ObjectCreatedGroup", "ObjectDownloadedGroup", "ObjectRemovedGroup"],
        [[atom(prefix=f"{ops.bucket}/")]],
        queue=events.name,
    )


@pytest.fixture(name="expect")
def expect_fixture(events: EventQueue, ops: Ops, all_events_rule: str) -> Expect:
    """The checker of the events `all_events_rule` delivers for the test's bucket."""
    return Expect(events, ops.bucket, all_events_rule)


# -- every operation, both SDKs -------------------------------------------------------------


def test_uploads_and_overwrites_report_sizes_and_callback_vars(ops: Ops, expect: Expect) -> None:
    """PutObject: deltaSize is the size on create, new - old on overwrite (negative when
    smaller); the key is not URL-encoded; eTag is unquoted; xVars come from
    `x-oss-callback-var`; requestId is the response's `x-oss-request-id`."""
    key = "docs/ü a+b%20.txt"
    variables = {"x:a": "b", "x:trace-id": "t-7781"}
    created = ops.put(key, b"0123456789", {"x-oss-callback-var": b64_json(variables)})
    expect("ObjectCreated:PutObject", key, created, size=10, delta=10, x_vars=variables)
    grown = ops.put(key, b"x" * 25)
    expect("ObjectCreated:PutObject", key, grown, size=25, delta=15)
    shrunk = ops.put(key, b"tiny")
    expect("ObjectCreated:PutObject", key, shrunk, size=4, delta=-21)
    assert shrunk.etag == hashlib.md5(b"tiny").hexdigest().upper()


def test_downloads_report_the_range_read(ops: Ops, expect: Expect) -> None:
    """GetObject: readFrom/readTo are 0/size without a Range, the first byte and one past
    the last with one (suffix ranges included); deltaSize 0; xVars from the GET's own
    `x-oss-callback-var`."""
    key = "data/blob.bin"
    put = ops.put(key, b"abcdefghij")
    expect("ObjectCreated:PutObject", key, put, size=10, delta=10)
    whole = ops.get(key)
    expect("ObjectDownloaded:GetObject", key, whole, size=10, delta=0, read=(0, 10), etag=put.etag)
    middle = ops.get(key, 2, 5)
    expect("ObjectDownloaded:GetObject", key, middle, size=10, delta=0, read=(2, 6), etag=put.etag)
    tail = ops.get(key, None, 3)
    expect("ObjectDownloaded:GetObject", key, tail, size=10, delta=0, read=(7, 10), etag=put.etag)
    variables = {"x:tenant": "acme"}
    traced = ops.get(key, 1, 1, **{"x-oss-callback-var": b64_json(variables)})
    expect(
        "ObjectDownloaded:GetObject",
        key,
        traced,
        size=10,
        delta=0,
        read=(1, 2),
        etag=put.etag,
        x_vars=variables,
    )


def test_appends_and_copies(ops: Ops, expect: Expect) -> None:
    """AppendObject reports the position the append started at and the bytes it added;
    CopyObject reports the copy's size, the source's ETag and the size change of the
    target (the full size when new, new - old over an existing object)."""
    first = ops.append("log", 0, b"hello")
    expect("ObjectCreated:AppendObject", "log", first, size=5, delta=5, position=0)
    second = ops.append("log", 5, b" world!")
    expect("ObjectCreated:AppendObject", "log", second, size=12, delta=7, position=5)
    source = ops.put("src", b"source bytes")
    expect("ObjectCreated:PutObject", "src", source, size=12, delta=12)
    copied = ops.copy("src", "dst")
    assert copied.etag == source.etag
    expect("ObjectCreated:CopyObject", "dst", copied, size=12, delta=12)
    smaller = ops.put("small", b"abc")
    expect("ObjectCreated:PutObject", "small", smaller, size=3, delta=3)
    over = ops.copy("small", "dst")
    expect("ObjectCreated:CopyObject", "dst", over, size=3, delta=-9)


def test_deletes_report_what_they_removed(ops: Ops, events: EventQueue, expect: Expect) -> None:
    """DeleteObject reports -size; DeleteObjects one ObjectRemoved:DeleteObjects event per
    deleted key (none for a key that did not exist), each with the requestId of the batch."""
    sizes = {"a": 3, "b/c": 7, "d": 1}
    tags = {}
    for key, size in sizes.items():
        done = ops.put(key, b"z" * size)
        tags[key] = done.etag
        expect("ObjectCreated:PutObject", key, done, size=size, delta=size)
    gone = ops.delete("a")
    assert gone.etag == ""
    expect("ObjectRemoved:DeleteObject", "a", gone, size=3, delta=-3, etag=tags["a"])
    batch = ops.delete_many(["b/c", "missing", "d"])
    for key in ("b/c", "d"):
        expect(
            "ObjectRemoved:DeleteObjects",
            key,
            batch,
            size=sizes[key],
            delta=-sizes[key],
            etag=tags[key],
        )
    sentinel = ops.put("missing", b"!")
    assert [r["responseElements"]["requestId"] for r in events.until(sentinel.request_id)] == [
        sentinel.request_id
    ]


def test_multipart_upload_events(ops: Ops, expect: Expect) -> None:
    """Initiate, UploadPart, UploadPartCopy and Complete each report their event
    (Complete with the multipart `HEX-N` ETag and the whole size), and
    AbortMultipartUpload reports ObjectRemoved:AbortMultipartUpload."""
    key = "mp/big.bin"
    source = ops.put("mp/source", b"0123456789")
    expect("ObjectCreated:PutObject", "mp/source", source, size=10, delta=10)
    started = ops.initiate(key)
    upload = started.upload_id
    assert upload
    expect("ObjectCreated:InitiateMultipartUpload", key, started, size=0, delta=0, etag="")
    part = ops.upload_part(key, upload, 1, b"p" * PART)
    expect("ObjectCreated:UploadPart", key, part, size=PART, delta=0)
    copied = ops.copy_part(key, upload, 2, "mp/source", 2, 5)
    expect("ObjectCreated:UploadPartCopy", key, copied, size=4, delta=0)
    done = ops.complete(key, upload, [(1, part.etag), (2, copied.etag)])
    assert re.fullmatch(r"[0-9A-F]{32}-2", done.etag), done.etag
    total = PART + 4
    expect("ObjectCreated:CompleteMultipartUpload", key, done, size=total, delta=total)
    other = ops.initiate("mp/abandoned")
    expect("ObjectCreated:InitiateMultipartUpload", "mp/abandoned", other, size=0, delta=0, etag="")
    aborted = ops.abort("mp/abandoned", other.upload_id)
    expect("ObjectRemoved:AbortMultipartUpload", "mp/abandoned", aborted, size=0, delta=0, etag="")


def v1_post_form(bucket: str, key: str, **fields: str) -> dict[str, str]:
    """PostObject form fields signed with a V1 policy (bucket and key pinned)."""
    expiration = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 600))
    conditions = [{"bucket": bucket}, ["eq", "$key", key]]
    policy = b64_json({"expiration": expiration, "conditions": conditions})
    digest = hmac.new(ACCESS_KEY_SECRET.encode(), policy.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    signed = {"OSSAccessKeyId": ACCESS_KEY_ID, "policy": policy, "Signature": signature}
    return {"key": key, **fields, **signed}


def test_form_upload_reports_post_object_with_form_variables(
    server: ServerProcess, rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """A PostObject form upload (how the console uploads) reports
    ObjectCreated:PostObject, with the form's `x:` fields as xVars and the requestId of
    the POST's response."""
    b = oss2_bucket.bucket_name
    rule = rules.create(
        unique("forms"), ["PostObject"], [[atom(prefix=f"{b}/up/")]], queue=events.name
    )
    fields = v1_post_form(b, "up/form.txt", **{"x:source": "console"})
    started = time.time()
    response = requests.post(
        f"{server.oss_url}/{b}/",
        data=fields,
        files={"file": ("local.txt", b"form body", "text/plain")},
        timeout=10,
    )
    assert response.status_code == 204, response.text
    tag, request_id = response.headers["ETag"], response.headers["x-oss-request-id"]
    done = Done(request_id, dict(response.headers), unquote(tag), started, time.time())
    variables = {"x:source": "console"}
    expect = Expect(events, b, rule)
    expect("ObjectCreated:PostObject", "up/form.txt", done, size=9, delta=9, x_vars=variables)


# -- the message itself, the response header, silence -------------------------------------


def test_message_body_is_base64_of_the_compact_event_json(
    rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """Read without the SDK's decoding, the queue message body is the Base64 of the
    compact UTF-8 JSON `{"events":[...]}`, starting as the spec's sample does."""
    rules.create(
        unique("raw"),
        ["PutObject"],
        [[atom(prefix=f"{oss2_bucket.bucket_name}/")]],
        queue=events.name,
    )
    oss2_bucket.put_object("uploads/cat.jpg", b"meow")
    events.queue.set_encoding(False)
    message = events.next_message()
    raw = message.message_body
    assert raw.startswith("eyJldmVudHMiOlt7ImV2ZW50TmFtZSI6Ik9iamVjdENyZWF0ZWQ6UHV0T2JqZWN0Iiwi")
    text = base64.b64decode(raw, validate=True).decode("utf-8")
    document = json.loads(text)
    assert json.dumps(document, ensure_ascii=False, separators=(",", ":")) == text
    assert document["events"][0]["oss"]["object"]["key"] == "uploads/cat.jpg"


def test_event_status_header_exactly_when_a_rule_matched(
    rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """`x-oss-event-status` (Base64 of {"Result":"Ok"}) is on a response iff a rule
    selected the operation: a key outside the rule's prefix, an event type the rule does
    not list, and a HEAD get none, and nothing is delivered for them."""
    b = oss2_bucket.bucket_name
    ops = Oss2Ops(oss2_bucket)
    rule = rules.create(
        unique("status"), ["PutObject"], [[atom(prefix=f"{b}/in/")]], queue=events.name
    )
    expect = Expect(events, b, rule)
    inside = ops.put("in/x", b"1")
    assert inside.headers["x-oss-event-status"] == "eyJSZXN1bHQiOiJPayJ9"
    expect("ObjectCreated:PutObject", "in/x", inside, size=1, delta=1)
    outside = ops.put("out/x", b"1")
    assert outside.event_status is None
    read = ops.get("in/x")  # GetObject is not selected
    assert read.event_status is None
    head = oss2_bucket.head_object("in/x")
    assert decoded_status(dict(head.headers)) is None
    sentinel = ops.put("in/x", b"22")
    (only,) = events.until(sentinel.request_id)
    expect("ObjectCreated:PutObject", "in/x", sentinel, size=2, delta=1, record=only)


def test_rules_receive_only_their_event_types(
    rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """Configured names (`PutObject`), emitted names (`ObjectRemoved:DeleteObjects`),
    `X:*` wildcards and group types select exactly their events; two rules over the same
    objects coexist when they share no event type, and each event goes to the one rule
    that selects it."""
    b = oss2_bucket.bucket_name
    ops = Oss2Ops(oss2_bucket)
    writes = rules.create(
        unique("writes"),
        ["PutObject", "DeleteObject"],
        [[atom(prefix=f"{b}/a/")]],
        queue=events.name,
    )
    others = rules.create(
        unique("others"),
        ["ObjectDownloadedGroup", "ObjectCreated:AppendObject", "ObjectRemoved:DeleteObjects"],
        [[atom(prefix=f"{b}/")]],
        queue=events.name,
    )
    expect = Expect(events, b, writes)
    put = ops.put("a/x", b"12345")
    expect("ObjectCreated:PutObject", "a/x", put, size=5, delta=5, rule=writes)
    got = ops.get("a/x")
    expect(
        "ObjectDownloaded:GetObject",
        "a/x",
        got,
        size=5,
        delta=0,
        read=(0, 5),
        etag=put.etag,
        rule=others,
    )
    appended = ops.append("c/log", 0, b"ab")
    expect(
        "ObjectCreated:AppendObject", "c/log", appended, size=2, delta=2, position=0, rule=others
    )
    copied = ops.copy("a/x", "a/y")  # CopyObject: nobody's
    assert copied.event_status is None
    removed = ops.delete("a/y")
    expect(
        "ObjectRemoved:DeleteObject", "a/y", removed, size=5, delta=-5, etag=put.etag, rule=writes
    )
    batch = ops.delete_many(["a/x"])
    expect(
        "ObjectRemoved:DeleteObjects", "a/x", batch, size=5, delta=-5, etag=put.etag, rule=others
    )
    assert ops.put("c/other", b"1").event_status is None  # PutObject outside a/
    rules.delete(others)  # its AppendObject would overlap the wildcard below
    wildcard = rules.create(
        unique("wild"), ["ObjectCreated:*"], [[atom(prefix=f"{b}/w/")]], queue=events.name
    )
    made = ops.put("w/1", b"1")
    expect("ObjectCreated:PutObject", "w/1", made, size=1, delta=1, rule=wildcard)
    sentinel = ops.put("a/x", b"1")
    assert [r["oss"]["ruleId"] for r in events.until(sentinel.request_id)] == [writes]


def test_failed_operations_emit_no_event(
    rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """A refused request commits nothing and so reports nothing: no event is delivered
    and its error response carries no `x-oss-event-status`."""
    b = oss2_bucket.bucket_name
    ops = Oss2Ops(oss2_bucket)
    rule = rules.create(
        unique("fail"),
        ["ObjectCreatedGroup", "ObjectDownloadedGroup", "ObjectRemovedGroup"],
        [[atom(prefix=f"{b}/")]],
        queue=events.name,
    )
    expect = Expect(events, b, rule)
    existing = ops.put("k", b"12345")
    expect("ObjectCreated:PutObject", "k", existing, size=5, delta=5)
    upload = ops.initiate("k")
    events.next()
    failures: dict[str, Callable[[], Any]] = {
        "InvalidDigest": lambda: oss2_bucket.put_object(
            "k", b"abc", headers={"Content-MD5": md5_b64(b"xyz")}
        ),
        "NoSuchKey": lambda: oss2_bucket.get_object("nope").read(),
        "(304)": lambda: oss2_bucket.get_object(
            "k", headers={"If-None-Match": f'"{existing.etag}"'}
        ).read(),
        "InvalidRange": lambda: oss2_bucket.get_object(
            "k", headers={"Range": "bytes=9-12", "x-oss-range-behavior": "standard"}
        ).read(),
        "PreconditionFailed": lambda: oss2_bucket.get_object(
            "k", headers={"If-Match": '"0123"'}
        ).read(),
        "FileAlreadyExists": lambda: oss2_bucket.put_object(
            "k", b"zz", headers={"x-oss-forbid-overwrite": "true"}
        ),
        "ObjectNotAppendable": lambda: oss2_bucket.append_object("k", 5, b"more"),
        "PositionNotEqualToLength": lambda: oss2_bucket.append_object("new-log", 3, b"x"),
        "NoSuchKey(copy)": lambda: oss2_bucket.copy_object(b, "nope", "k"),
        "InvalidPart": lambda: oss2_bucket.complete_multipart_upload(
            "k", upload.upload_id, [oss2.models.PartInfo(1, "0" * 32)]
        ),
        "NoSuchUpload": lambda: oss2_bucket.abort_multipart_upload("k", "0" * 32),
        "NoSuchUpload(part)": lambda: oss2_bucket.upload_part("k", "0" * 32, 1, b"p"),
    }
    for expected, call in failures.items():  # "Code(what)", or "(status)" without a body
        with pytest.raises(OssError) as caught:
            call()
        code, _, detail = expected.partition("(")
        if code:
            assert caught.value.code == code, expected
        else:
            assert str(caught.value.status) == detail.rstrip(")"), expected
        assert decoded_status(dict(caught.value.headers)) is None, expected
    for key in ("k", "nope", "new-log"):
        sentinel = ops.put(key, b"1")
        (only,) = events.until(sentinel.request_id)
        assert only["oss"]["object"]["key"] == key
        assert only["eventName"] == "ObjectCreated:PutObject"


def test_versioned_bucket_deletes(
    rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """With versioning enabled, DeleteObject/DeleteObjects without a versionId only add a
    delete marker and report nothing; deleting a version by id reports its size; an
    overwrite reports new - old against the current version, a write over a delete
    marker the full size."""
    b = oss2_bucket.bucket_name
    ops = Oss2Ops(oss2_bucket)
    oss2_bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    rule = rules.create(
        unique("versions"),
        ["ObjectCreatedGroup", "ObjectRemovedGroup"],
        [[atom(prefix=f"{b}/")]],
        queue=events.name,
    )
    expect = Expect(events, b, rule)
    first = ops.put("v", b"1234")
    expect("ObjectCreated:PutObject", "v", first, size=4, delta=4)
    second = ops.put("v", b"123456")
    expect("ObjectCreated:PutObject", "v", second, size=6, delta=2)
    other = ops.put("w", b"ww")
    events.next()
    marker = ops.delete("v")
    assert marker.event_status is None
    assert marker.headers.get("x-oss-delete-marker") == "true"
    batch = ops.delete_many(["w"])
    assert batch.event_status is None
    old_version = first.headers["x-oss-version-id"]
    exact = timed(lambda: oss2_bucket.delete_object("v", params={"versionId": old_version}))
    expect("ObjectRemoved:DeleteObject", "v", exact, size=4, delta=-4, etag=first.etag)
    unmark = timed(
        lambda: oss2_bucket.delete_object(
            "v", params={"versionId": marker.headers["x-oss-version-id"]}
        )
    )
    assert unmark.event_status is None  # the marker was removed, no object
    versions = oss2.models.BatchDeleteObjectVersionList(
        [oss2.models.BatchDeleteObjectVersion("w", other.headers["x-oss-version-id"])]
    )
    by_id = timed(lambda: oss2_bucket.delete_object_versions(versions))
    expect("ObjectRemoved:DeleteObjects", "w", by_id, size=2, delta=-2, etag=other.etag)
    again = ops.put("w", b"www")  # over the delete marker the batch left: a new object
    expect("ObjectCreated:PutObject", "w", again, size=3, delta=3)
    sentinel = ops.put("v", b"1")
    (only,) = events.until(sentinel.request_id)
    assert only["oss"]["object"]["deltaSize"] == 1 - 6


def test_suspended_versioning_delete_removes_the_null_version_and_reports_it(
    rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """With versioning suspended, a DeleteObject without versionId replaces the `null`
    version by a `null` delete marker: the object is gone for good, which is reported."""
    b = oss2_bucket.bucket_name
    ops = Oss2Ops(oss2_bucket)
    oss2_bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Suspended"))
    rule = rules.create(
        unique("suspended"), ["ObjectRemovedGroup"], [[atom(prefix=f"{b}/")]], queue=events.name
    )
    expect = Expect(events, b, rule)
    put = ops.put("n", b"12345")
    gone = ops.delete("n")
    assert gone.headers.get("x-oss-delete-marker") == "true"
    expect("ObjectRemoved:DeleteObject", "n", gone, size=5, delta=-5, etag=put.etag)


# -- endpoints: HTTP, topic, and the rule's own topic ------------------------------------------


@dataclass
class Pushes:
    """A local HTTP endpoint recording every push and checking its signature."""

    trusted_prefix: str
    received: list[tuple[str, dict[str, str], bytes, bool]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> ThreadingHTTPServer:
        pushes = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                verified = push.verify(
                    headers, body, self.path, allowed_cert_url_prefixes=[pushes.trusted_prefix]
                )
                with pushes.changed:
                    pushes.received.append((self.path, headers, body, verified))
                    pushes.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return serve_http(Handler)

    def wait_for(self, count: int) -> list[tuple[str, dict[str, str], bytes, bool]]:
        with self.changed:
            arrived = self.changed.wait_for(lambda: len(self.received) >= count, RECEIVE_DEADLINE)
            assert arrived, f"{len(self.received)} of {count} pushes arrived"
            return list(self.received)


@pytest.fixture
def receiver(server: ServerProcess) -> Iterator[tuple[Pushes, str]]:
    """A push receiver and its URL; it trusts certificates served by the test server."""
    push.clear_certificate_cache()
    pushes = Pushes(server.mns_url + "/")
    httpd = pushes.start()
    yield pushes, f"http://127.0.0.1:{httpd.server_address[1]}/oss-events?from=tidings"
    httpd.shutdown()
    httpd.server_close()


def auto_topic_names(account: Account, rule: str) -> list[str]:
    """The topics named like the rule's automatic topic, through the data-plane SDK."""
    urls, _ = account.list_topic(prefix=f"mns-en-topics-oss-{rule}-")
    return [url.rsplit("/", 1)[-1] for url in urls]


def test_http_and_queue_endpoints_share_an_automatic_topic(
    account: Account,
    rules: Rules,
    events: EventQueue,
    receiver: tuple[Pushes, str],
    oss2_bucket: oss2.Bucket,
) -> None:
    """A rule with a queue and an HTTP endpoint gets one automatic topic
    `mns-en-topics-oss-<rule>-<digits>` with one SIMPLIFIED subscription per endpoint
    (`mns-en-subs-oss-<rule>-<n>-<digits>`); the HTTP endpoint receives a signed push,
    `Content-Type: text/plain;charset=utf-8`, whose body is the Base64 event, identical
    to what the queue receives."""
    pushes, url = receiver
    b = oss2_bucket.bucket_name
    rule = rules.create(
        unique("hooks"),
        ["PutObject"],
        [[atom(prefix=f"{b}/")]],
        endpoints=[("queue", events.name), ("http", url)],
    )
    expect = Expect(events, b, rule)
    data = rules.get(rule)
    topic = data.topic_name
    assert re.fullmatch(rf"mns-en-topics-oss-{rule}-\d+", topic), topic
    assert auto_topic_names(account, rule) == [topic]
    digits = topic.rsplit("-", 1)[1]
    assert [(s.endpoint_type, s.endpoint_value) for s in data.subscriptions] == [
        ("queue", events.name),
        ("http", url),
    ]
    subscription_urls, _ = account.get_topic(topic).list_subscription()
    names = sorted(u.rsplit("/", 1)[-1] for u in subscription_urls)
    assert [re.sub(r"-\d+$", "", n) for n in names] == [
        f"mns-en-subs-oss-{rule}-1",
        f"mns-en-subs-oss-{rule}-2",
    ]
    assert all(re.fullmatch(rf"mns-en-subs-oss-{rule}-\d-\d+", n) for n in names)
    assert all(int(n.rsplit("-", 1)[1]) >= int(digits) for n in names)
    for name in names:
        meta = account.get_topic(topic).get_subscription(name).get_attributes()
        assert meta.notify_content_format == "SIMPLIFIED"

    done = Oss2Ops(oss2_bucket).put("photo.jpg", b"jpeg")
    queued = events.next()
    expect("ObjectCreated:PutObject", "photo.jpg", done, size=4, delta=4, record=queued)
    ((path, headers, body, verified),) = pushes.wait_for(1)
    assert path == "/oss-events?from=tidings"
    assert verified
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["content-type"] == "text/plain;charset=utf-8"
    assert lower["x-mns-topic-name"] == topic
    assert lower["x-mns-subscription-name"] == names[1]
    assert lower["x-mns-topic-owner"] == ACCOUNT_ID
    document = json.loads(base64.b64decode(body, validate=True))
    assert document == {"events": [queued]}


def test_topic_endpoint_reaches_the_users_own_subscriptions(
    account: Account, rules: Rules, queue_name: str, oss2_bucket: oss2.Bucket
) -> None:
    """A rule whose endpoint is a topic publishes the event to that topic (no topic is
    created); the user's own subscription (here a queue, JSON format) receives it; the
    topic outlives the rule."""
    b = oss2_bucket.bucket_name
    topic_name = unique("user-topic")
    topic = account.get_topic(topic_name)
    topic.create(TopicMeta())
    inbox = account.get_queue(queue_name)
    inbox.create(QueueMeta())
    inbox.set_encoding(False)
    endpoint = f"acs:mns:{REGION}:{ACCOUNT_ID}:queues/{queue_name}"
    topic.get_subscription("mine").subscribe(
        SubscriptionMeta(endpoint, notify_content_format="JSON")
    )
    try:
        rule = rules.create(
            unique("to-topic"), ["ObjectCreatedGroup"], [[atom(prefix=f"{b}/")]], topic=topic_name
        )
        data = rules.get(rule)
        assert data.topic_name == topic_name
        assert (data.endpoint.endpoint_type, data.endpoint.endpoint_value) == ("topic", topic_name)
        assert auto_topic_names(account, rule) == []
        done = Oss2Ops(oss2_bucket).put("report.pdf", b"%PDF")
        message = inbox.receive_message(wait_seconds=5)
        notification = json.loads(message.message_body)
        assert notification["TopicName"] == topic_name
        assert notification["SubscriptionName"] == "mine"
        record = json.loads(base64.b64decode(notification["Message"], validate=True))["events"][0]
        expect_event(
            record, "ObjectCreated:PutObject", b, "report.pdf", rule, done, size=4, delta=4
        )
        rules.delete(rule)
        assert topic.get_attributes().topic_name == topic_name
        assert Oss2Ops(oss2_bucket).put("after.pdf", b"1").event_status is None
    finally:
        topic.delete()
        inbox.delete()


def test_rules_act_at_once_and_stop_when_deleted(
    account: Account, rules: Rules, events: EventQueue, oss2_bucket: oss2.Bucket
) -> None:
    """A rule applies to the very next request after CreateEventRule returns (a documented
    deviation from the cloud's ~10 minutes) and not to the one after DeleteEventRule
    returns; deleting it removes its automatic topic and keeps its queue."""
    b = oss2_bucket.bucket_name
    ops = Oss2Ops(oss2_bucket)
    assert ops.put("k", b"0").event_status is None
    rule = rules.create(unique("now"), ["PutObject"], [[atom(prefix=f"{b}/")]], queue=events.name)
    expect = Expect(events, b, rule)
    assert len(auto_topic_names(account, rule)) == 1
    done = ops.put("k", b"12")
    expect("ObjectCreated:PutObject", "k", done, size=2, delta=1)
    rules.delete(rule)
    assert auto_topic_names(account, rule) == []
    assert ops.put("k", b"123").event_status is None
    assert events.queue.get_attributes().queue_name == events.name
    again = rules.create(
        unique("again"), ["PutObject"], [[atom(prefix=f"{b}/")]], queue=events.name
    )
    sentinel = ops.put("k", b"1234")
    (only,) = events.until(sentinel.request_id)
    expect("ObjectCreated:PutObject", "k", sentinel, size=4, delta=1, rule=again, record=only)


# -- matching and the default rule, on a server of their own -------------------------------


@dataclass
class Lonely:
    """A server of this module's own, with its SDK clients."""

    server: ServerProcess
    account: Account
    rules: Rules


@pytest.fixture(scope="module")
def lonely_server() -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory() as directory:
        process = ServerProcess(Path(directory) / "data").start()
        yield process
        process.stop()


@pytest.fixture
def lonely(lonely_server: ServerProcess) -> Iterator[Lonely]:
    """The module server; the rules a test makes there are deleted after it."""
    made = Rules(client_for(lonely_server))
    yield Lonely(
        lonely_server, Account(lonely_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET), made
    )
    made.cleanup()


@pytest.fixture
def lonely_buckets(lonely: Lonely) -> Iterator[Callable[[str], oss2.Bucket]]:
    """Make buckets of given names on the module server; removed afterwards."""
    made: list[oss2.Bucket] = []

    def make(name: str) -> oss2.Bucket:
        bucket = new_bucket(lonely.server, name)
        made.append(bucket)
        return bucket

    yield make
    for bucket in made:
        remove_bucket(bucket)


@pytest.fixture
def lonely_queue(lonely: Lonely) -> Iterator[EventQueue]:
    queue = EventQueue(lonely.account, unique("q"))
    yield queue
    queue.delete()


def keys_and_rules(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (r["oss"]["bucket"]["name"], r["oss"]["object"]["key"], r["oss"]["ruleId"]) for r in records
    ]


def test_resource_descriptions_full_name_prefix_suffix_and_or_of_ands(
    lonely: Lonely,
    lonely_queue: EventQueue,
    lonely_buckets: Callable[[str], oss2.Bucket],
) -> None:
    """Resource strings are `bucket/key`: a full name matches that object only; a prefix
    may end inside a bucket name (covering every bucket it starts); a suffix alone covers
    every bucket; prefix+suffix need both; MatchRules is an OR of AND-lists (and
    `MatchState: false` negates an atom). Exactly the matching writes are delivered,
    in order, each with the rule that matched."""
    stem = f"m{uuid.uuid4().hex[:8]}"
    main, twin = lonely_buckets(f"{stem}-main"), lonely_buckets(f"{stem}-mainly")
    other = lonely_buckets(f"x{stem}-other")
    m_name = main.bucket_name
    forms = lonely.rules.create(
        "forms",
        ["PutObject"],
        [
            [atom(name=f"{m_name}/exact.txt")],
            [atom(prefix=f"{m_name}/photos/", suffix=".jpg")],
            [atom(prefix=f"{stem}-mainly/logs/")],
        ],
        queue=lonely_queue.name,
    )
    ands = lonely.rules.create(
        "ands",
        ["PutObject"],
        [
            [atom(prefix=f"{m_name}/data/"), atom(suffix=".csv")],
            [atom(prefix=f"{m_name}/tmp/"), atom(suffix=".log", match_state=False)],
        ],
        queue=lonely_queue.name,
    )
    # A suffix alone overlaps every prefix: it gets an event type of its own.
    suffix = lonely.rules.create(
        "suffix", ["AppendObject"], [[atom(suffix=".avi")]], queue=lonely_queue.name
    )
    reads = lonely.rules.create(
        "reads", ["GetObject"], [[atom(prefix=f"{stem}-main")]], queue=lonely_queue.name
    )
    writes: list[tuple[oss2.Bucket, str, str | None]] = [
        (main, "exact.txt", forms),
        (main, "exact.txt.bak", None),
        (main, "dir/exact.txt", None),
        (main, "photos/cat.jpg", forms),
        (main, "photos/cat.png", None),
        (main, "cat.jpg", None),
        (twin, "photos/cat.jpg", None),
        (main, "movie.avi", suffix),
        (other, "deep/movie.avi", suffix),
        (other, "movie.avi.txt", None),
        (twin, "logs/1", forms),
        (main, "logs/1", None),
        (main, "data/a.csv", ands),
        (main, "data/a.txt", None),
        (main, "a.csv", None),
        (main, "tmp/x.txt", ands),
        (main, "tmp/x.log", None),
    ]
    expected = []
    for bucket, key, rule in writes:
        if ".avi" in key:
            result = bucket.append_object(key, 0, b"1")
        else:
            result = bucket.put_object(key, b"1")
        assert (decoded_status(dict(result.headers)) is not None) == (rule is not None), key
        if rule is not None:
            expected.append((bucket.bucket_name, key, rule))
    for bucket in (main, twin, other):
        result = bucket.get_object("photos/cat.jpg" if bucket is not other else "movie.avi.txt")
        result.read()
        if bucket is not other:
            expected.append((bucket.bucket_name, "photos/cat.jpg", reads))
    sentinel = main.put_object("exact.txt", b"2")
    expected.append((m_name, "exact.txt", forms))
    assert keys_and_rules(lonely_queue.until(sentinel.request_id)) == expected


def test_default_rule_alone_catches_everything(
    lonely: Lonely, lonely_queue: EventQueue, lonely_buckets: Callable[[str], oss2.Bucket]
) -> None:
    """The default rule (DefaultEnRule, type Default, resource mns-en-reserved-default),
    when it is the only rule, receives every object event of every bucket, with
    `ruleId` DefaultEnRule, and every such response carries `x-oss-event-status`."""
    first = lonely_buckets(unique("d1"))
    second = lonely_buckets(unique("d2"))
    lonely.rules.create(
        "DefaultEnRule",
        ["Default"],
        [[atom(name="mns-en-reserved-default")]],
        queue=lonely_queue.name,
    )
    data = lonely.rules.get("DefaultEnRule")
    assert data.event_types == ["Default"]
    assert data.match_rules[0][0].name == "mns-en-reserved-default"
    one, two = Oss2Ops(first), Oss2Ops(second)
    steps = [
        (one.put("a", b"123"), "ObjectCreated:PutObject", first, "a"),
        (one.get("a"), "ObjectDownloaded:GetObject", first, "a"),
        (one.append("log", 0, b"x"), "ObjectCreated:AppendObject", first, "log"),
        (two.put("deep/b", b"1"), "ObjectCreated:PutObject", second, "deep/b"),
        (two.copy("deep/b", "c"), "ObjectCreated:CopyObject", second, "c"),
        (two.delete("c"), "ObjectRemoved:DeleteObject", second, "c"),
        (one.delete_many(["a"]), "ObjectRemoved:DeleteObjects", first, "a"),
    ]
    for done, event_name, bucket, key in steps:
        assert done.event_status == EVENT_STATUS_OK, event_name
        record = lonely_queue.next()
        assert record["eventName"] == event_name
        assert record["oss"]["ruleId"] == "DefaultEnRule"
        assert (record["oss"]["bucket"]["name"], record["oss"]["object"]["key"]) == (
            bucket.bucket_name,
            key,
        )
        assert record["responseElements"]["requestId"] == done.request_id


def test_default_rule_gets_only_what_no_other_rule_matched(
    lonely: Lonely, lonely_buckets: Callable[[str], oss2.Bucket]
) -> None:
    """Beside other rules, the default rule receives exactly the events no other rule
    selected (another resource, or an event type the other rule does not list), and
    again everything once the other rule is deleted."""
    bucket = lonely_buckets(unique("d"))
    b = bucket.bucket_name
    queues = [EventQueue(lonely.account, unique("q")) for _ in range(2)]
    catch_all, photos_queue = queues
    try:
        lonely.rules.create(
            "DefaultEnRule",
            ["Default"],
            [[atom(name="mns-en-reserved-default")]],
            queue=catch_all.name,
        )
        photos = lonely.rules.create(
            "photos", ["PutObject"], [[atom(prefix=f"{b}/photos/")]], queue=photos_queue.name
        )
        ops = Oss2Ops(bucket)
        put_photo = ops.put("photos/1.jpg", b"1")
        put_doc = ops.put("docs/1.txt", b"1")
        get_photo = ops.get("photos/1.jpg")
        assert all(d.event_status == EVENT_STATUS_OK for d in (put_photo, put_doc, get_photo))
        record = photos_queue.next()
        assert (record["oss"]["ruleId"], record["responseElements"]["requestId"]) == (
            photos,
            put_photo.request_id,
        )
        caught = catch_all.until(get_photo.request_id)
        assert [
            (r["eventName"], r["oss"]["object"]["key"], r["oss"]["ruleId"]) for r in caught
        ] == [
            ("ObjectCreated:PutObject", "docs/1.txt", "DefaultEnRule"),
            ("ObjectDownloaded:GetObject", "photos/1.jpg", "DefaultEnRule"),
        ]
        lonely.rules.delete(photos)
        after = ops.put("photos/2.jpg", b"2")
        (record,) = catch_all.until(after.request_id)
        assert record["oss"]["ruleId"] == "DefaultEnRule"
    finally:
        lonely.rules.cleanup()
        for queue in queues:
            queue.delete()
