"""The OSS event document against the spec's examples (event-sources.md 2.3)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tidings.events.oss_event import EVENT_STATUS_OK, OssEvent, document, message_body


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


PUT = OssEvent(
    event_name="ObjectCreated:PutObject",
    event_time_ms=_ms("2025-03-14T08:21:07"),
    region="cn-hangzhou",
    owner="1234567890123456",
    bucket="photo-archive",
    key="uploads/2025/03/cat.jpg",
    size=48213,
    delta_size=48213,
    etag="5EB63BBBE01EEED093CB22BB8F5ACDC3",
    rule_id="photos-created",
    source_ip="203.0.113.45",
    request_id="67D3E6C3A1B2C3D4E5F60718",
    principal_id="1234567890123456",
)


def test_put_object_matches_the_documented_example_byte_for_byte() -> None:
    expected = (
        '{"events":[{"eventName":"ObjectCreated:PutObject","eventSource":"acs:oss",'
        '"eventTime":"2025-03-14T08:21:07.000Z","eventVersion":"1.0",'
        '"oss":{"bucket":{"arn":"acs:oss:cn-hangzhou:1234567890123456:photo-archive",'
        '"name":"photo-archive","ownerIdentity":"1234567890123456"},'
        '"object":{"deltaSize":48213,"eTag":"5EB63BBBE01EEED093CB22BB8F5ACDC3",'
        '"key":"uploads/2025/03/cat.jpg","size":48213},'
        '"ossSchemaVersion":"1.0","ruleId":"photos-created"},'
        '"region":"cn-hangzhou","requestParameters":{"sourceIPAddress":"203.0.113.45"},'
        '"responseElements":{"requestId":"67D3E6C3A1B2C3D4E5F60718"},'
        '"userIdentity":{"principalId":"1234567890123456"}}]}'
    )
    assert document(PUT) == expected


def test_message_body_is_base64_and_starts_as_documented() -> None:
    body = message_body(PUT)
    assert body.startswith("eyJldmVudHMiOlt7ImV2ZW50TmFtZSI6Ik9iamVjdENyZWF0ZWQ6UHV0T2JqZWN0Iiwi")
    assert json.loads(base64.b64decode(body))["events"][0]["oss"]["ruleId"] == "photos-created"


def test_ranged_read_with_callback_variables() -> None:
    event = replace(
        PUT,
        event_name="ObjectDownloaded:GetObject",
        delta_size=0,
        read_range=(1024, 4096),
        x_vars={"x:trace-id": "t-7781", "x:tenant": "acme"},
    )
    record = json.loads(document(event))["events"][0]
    assert list(record["oss"]["object"]) == [
        "deltaSize",
        "eTag",
        "key",
        "readFrom",
        "readTo",
        "size",
    ]
    assert record["oss"]["object"]["readFrom"] == 1024
    assert record["oss"]["object"]["readTo"] == 4096
    assert record["xVars"] == {"x:trace-id": "t-7781", "x:tenant": "acme"}
    assert list(record)[-1] == "xVars"


def test_append_carries_position_and_negative_delta_is_a_number() -> None:
    event = replace(
        PUT,
        event_name="ObjectCreated:AppendObject",
        position=8192,
        delta_size=-5,
    )
    obj = json.loads(document(event))["events"][0]["oss"]["object"]
    assert list(obj) == ["deltaSize", "eTag", "key", "position", "size"]
    assert obj["position"] == 8192
    assert obj["deltaSize"] == -5


def test_keys_stay_readable_utf8_and_times_keep_milliseconds() -> None:
    event = replace(
        PUT,
        key="相册/猫 1+1.jpg",
        event_time_ms=_ms("2025-03-14T08:21:07") + 45,
    )
    text = document(event)
    assert "相册/猫 1+1.jpg" in text
    assert '"eventTime":"2025-03-14T08:21:07.045Z"' in text


def test_event_status_header_value() -> None:
    assert EVENT_STATUS_OK == "eyJSZXN1bHQiOiJPayJ9"


def _reference(event: OssEvent) -> str:
    """The document as plain `json.dumps` writes it: the oracle for `document`."""
    target: dict[str, object] = {"deltaSize": event.delta_size, "eTag": event.etag}
    target["key"] = event.key
    if event.position is not None:
        target["position"] = event.position
    if event.read_range is not None:
        target["readFrom"], target["readTo"] = event.read_range
    target["size"] = event.size
    moment = datetime.fromtimestamp(event.event_time_ms / 1000, UTC)
    entry: dict[str, object] = {
        "eventName": event.event_name,
        "eventSource": "acs:oss",
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{event.event_time_ms % 1000:03d}Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": f"acs:oss:{event.region}:{event.owner}:{event.bucket}",
                "name": event.bucket,
                "ownerIdentity": event.owner,
            },
            "object": target,
            "ossSchemaVersion": "1.0",
            "ruleId": event.rule_id,
        },
        "region": event.region,
        "requestParameters": {"sourceIPAddress": event.source_ip},
        "responseElements": {"requestId": event.request_id},
        "userIdentity": {"principalId": event.principal_id},
    }
    if event.x_vars:
        entry["xVars"] = event.x_vars
    return json.dumps({"events": [entry]}, ensure_ascii=False, separators=(",", ":"))


_text = st.text(max_size=20)
_count = st.integers(min_value=-(2**62), max_value=2**62)


@given(
    key=_text,
    etag=_text,
    names=st.tuples(_text, _text, _text, _text, _text, _text),
    numbers=st.tuples(_count, _count, st.integers(0, 2**41)),
    position=st.none() | _count,
    read_range=st.none() | st.tuples(_count, _count),
    x_vars=st.dictionaries(_text, _text, max_size=3),
)
def test_document_writes_what_json_dumps_would(
    key: str,
    etag: str,
    names: tuple[str, str, str, str, str, str],
    numbers: tuple[int, int, int],
    position: int | None,
    read_range: tuple[int, int] | None,
    x_vars: dict[str, str],
) -> None:
    bucket, rule, ip, request, owner, region = names
    size, delta, time_ms = numbers
    event = replace(
        PUT, key=key, etag=etag, bucket=bucket, rule_id=rule, source_ip=ip,
        request_id=request, principal_id=owner, owner=owner, region=region, size=size,
        delta_size=delta, event_time_ms=time_ms, position=position, read_range=read_range,
        x_vars=x_vars,
    )  # fmt: skip
    assert document(event) == _reference(event)
