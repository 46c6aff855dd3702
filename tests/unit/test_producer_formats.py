"""DirectMail, VOD and Vision AI event formats against the spec's and seeds' examples.

event-sources.md §4 (VOD), §5 (DirectMail), §6 (Vision AI); seed 001 (the MNS event
notification manual: DirectMail and Vision AI chapters). Where an example fixes the bytes
(DirectMail's text), the rendering must equal it exactly; JSON examples are wrapped for
reading in the spec, so a JSON body must equal the example's compact form with its
member order kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

import pytest

from tests.producer_examples import (
    DM_FAILURE,
    DM_SUCCESS,
    SEED_FAILURE,
    SEED_SUCCESS,
    SEED_TEMPLATE,
    VISION_EXAMPLE,
    VOD_EXAMPLES,
    compact,
    dm_fields,
)
from tidings.errors import ServiceError
from tidings.events import directmail, vision, vod
from tidings.services.emit import event_types, matching_rules, product_of, render_body
from tidings.services.event_rules import (
    DEFAULT_RULE_NAME,
    EventRule,
    new_rule,
    parse_match_rules,
)
from tidings.services.event_rules import PRODUCTS as RULE_PRODUCTS
from tidings.services.event_rules import RuleEndpoint as Endpoint
from tidings.services.vod_callbacks import callback_from_params

NOW = int(datetime(2025, 3, 14, 8, 5, 1, tzinfo=UTC).timestamp() * 1000)


# ---------------------------------------------------------------------------------------
# DirectMail (§5)


def _dm(event_type: str, fields: dict[str, object], region: str = "cn-hangzhou") -> str:
    event = directmail.delivery_event(event_type, fields, now_ms=NOW, region=region)
    return directmail.message_body(event)


@pytest.mark.parametrize(
    ("event_type", "example"),
    [
        ("Deliver:SendSuccessfully", DM_SUCCESS),
        ("Deliver:SendFailed", DM_FAILURE),
        ("Deliver:SendSuccessfully", SEED_SUCCESS),
        ("Deliver:SendFailed", SEED_FAILURE),
    ],
)
def test_directmail_examples_byte_for_byte(event_type: str, example: str) -> None:
    assert _dm(event_type, dm_fields(example)) == example


def test_directmail_field_order_is_the_seed_template() -> None:
    names = [pair.split("=", 1)[0] for pair in SEED_TEMPLATE.split("&")]
    assert list(directmail.WIRE_ORDER) == names
    assert [pair.split("=", 1)[0] for pair in _dm("Deliver:SendFailed", {}).split("&")] == names


def test_directmail_defaults_follow_the_event_type_and_use_beijing_time() -> None:
    success = dm_fields(_dm("Deliver:SendSuccessfully", {}, region="cn-shanghai"))
    assert success["status"] == "0" and success["err_code"] == "250"
    assert success["err_msg"] == "250 Send Mail OK"
    assert success["event"] == "deliver" and success["region"] == "cn-shanghai"
    assert success["from"] == success["account"] == "notice@mail.example.com"
    # 08:05:01 UTC is 16:05:01 in UTC+8.
    assert success["recv_time"] == success["end_time"] == "2025-03-14 16:05:01"
    assert re.fullmatch(r"[1-9][0-9]{8}", str(success["env_id"]))
    assert re.fullmatch(r"[1-9][0-9]{13}", str(success["msg_id"]))
    failure = dm_fields(_dm("Deliver:SendFailed", {"status": 4, "err_code": 421}))
    assert (failure["status"], failure["err_code"]) == ("4", "421")
    assert failure["err_msg"] == "550 5.1.1 Mailbox does not exist"


@pytest.mark.parametrize(
    ("event_type", "fields", "code", "words"),
    [
        ("Deliver:Opened", {}, "EventTypeInvalid", "Deliver:SendSuccessfully"),
        ("Deliver:SendSuccessfully", {"rcp": "a@b.c"}, "InvalidArgument", "'rcpt'"),
        ("Deliver:SendSuccessfully", {"status": "2"}, "InvalidArgument", "Deliver:SendFailed"),
        ("Deliver:SendFailed", {"status": "0"}, "InvalidArgument", "not a failure"),
        ("Deliver:SendFailed", {"status": "x"}, "InvalidArgument", "0, 2, 3 or 4"),
        ("Deliver:SendSuccessfully", {"err_msg": "a&b"}, "InvalidArgument", "'&'"),
        ("Deliver:SendSuccessfully", {"recv_time": "today"}, "InvalidArgument", "HH:MM:SS"),
        ("Deliver:SendSuccessfully", {"rcpt": ["a"]}, "InvalidArgument", "string"),
    ],
)
def test_directmail_refusals(
    event_type: str, fields: dict[str, object], code: str, words: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        _dm(event_type, fields)
    assert caught.value.code == code
    assert words in caught.value.message


def test_directmail_values_are_raw_not_percent_encoded() -> None:
    body = _dm("Deliver:SendFailed", {"err_msg": "550 user=unknown: 100% full"})
    assert body.endswith("&err_msg=550 user=unknown: 100% full")
    assert dm_fields(body)["err_msg"] == "550 user=unknown: 100% full"


# ---------------------------------------------------------------------------------------
# VOD (§4.5): every documented example, rendered from its own members.


def _vod(event_type: str, fields: dict[str, object]) -> dict[str, object]:
    return vod.document(
        event_type, fields, now_ms=NOW, region="cn-shanghai", account_id="1234567890123456"
    )


@pytest.mark.parametrize(
    "example", VOD_EXAMPLES, ids=[json.loads(e)["EventType"] for e in VOD_EXAMPLES]
)
def test_vod_examples_byte_for_byte(example: str) -> None:
    members = json.loads(example)
    assert vod.message_body(_vod(str(members["EventType"]), members)) == compact(example)


@pytest.mark.parametrize(
    "example", VOD_EXAMPLES, ids=[json.loads(e)["EventType"] for e in VOD_EXAMPLES]
)
def test_vod_examples_from_cli_strings(example: str) -> None:
    """The same bodies when every value arrives as a CLI string (`--field K=V`)."""
    members = json.loads(example)
    strings = {
        key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in members.items()
    }
    assert vod.message_body(_vod(str(members["EventType"]), strings)) == compact(example)


ID_FIELD = {
    "ImageUploadComplete": "ImageId",
    "AttachedMediaUploadComplete": "AttachedMediaId",
    "CreateAuditComplete": "MediaId",
    "ProduceMediaComplete": "MediaId",
    "DeleteMediaComplete": "MediaId",
    "MediaBaseChangeComplete": "MediaId",
    "UpdateMediaStorageClassComplete": "MediaId",
    "RestoreMediaComplete": "MediaId",
    "SubmitMediaRefreshComplete": "MediaId",
    "AIMediaAuditComplete": "MediaId",
    "AIMediaDNAComplete": "MediaId",
    "AIVideoTagComplete": "MediaId",
}


@pytest.mark.parametrize("event_type", vod.EVENT_TYPES)
def test_every_vod_event_type_renders_with_defaults_only(event_type: str) -> None:
    body = _vod(event_type, {})
    assert body["EventType"] == event_type
    assert body["EventTime"] == "2025-03-14T08:05:01Z"
    assert re.fullmatch(r"[0-9a-f]{32}", str(body[ID_FIELD.get(event_type, "VideoId")]))
    assert body["Status"] == vod.STATUS_WORDS.get(event_type, ("success", "fail"))[0]
    assert "ErrorCode" not in body
    # Plain JSON that round-trips, not Base64.
    assert json.loads(vod.message_body(body)) == body


def test_vod_registry_and_formatter_agree() -> None:
    assert set(vod.EVENT_TYPES) == set(RULE_PRODUCTS["vod"].event_types)
    assert set(directmail.EVENT_TYPES) == set(RULE_PRODUCTS["dm"].event_types)
    assert event_types("vision") == tuple(RULE_PRODUCTS["viapi"].event_types)


def test_vod_failures_carry_error_fields_instead_of_results() -> None:
    failed = _vod("StreamTranscodeComplete", {"Status": "fail", "ErrorCode": "X"})
    assert failed["ErrorCode"] == "X" and failed["ErrorMessage"] == "The job failed."
    assert not {"FileUrl", "Bitrate", "Size"} & set(failed)
    assert {"Definition", "Format", "JobId"} <= set(failed)
    workflow = _vod("WorkflowTaskComplete", {"Status": "Failed"})
    assert json.loads(str(workflow["ActivityResults"]))["Transcode"]["Status"] == "Failed"
    with pytest.raises(ServiceError, match="'Succeed' or 'Failed'"):
        _vod("WorkflowTaskComplete", {"Status": "success"})
    # A transcode succeeded when one stream did, failed when none did (§4.5).
    streams = '[{"Status":"fail"},{"Status":"fail"}]'
    assert _vod("TranscodeComplete", {"StreamInfos": streams})["Status"] == "fail"
    mixed = [{"Status": "fail"}, {"Status": "success"}]
    assert _vod("TranscodeComplete", {"StreamInfos": mixed})["Status"] == "success"


def test_vod_stream_items_share_the_video_and_get_their_own_jobs() -> None:
    body = _vod("TranscodeComplete", {"VideoId": "v1", "StreamInfos": [{}, {"Definition": "HD"}]})
    streams = body["StreamInfos"]
    assert isinstance(streams, list)
    first, second = streams
    assert first["JobId"] != second["JobId"]
    assert first["FileUrl"].startswith("https://vod.example.com/v1/")
    assert second["Definition"] == "HD"


def test_vod_json_string_members() -> None:
    change = _vod(
        "MediaBaseChangeComplete",
        {"MediaContent": {"Title": {"OldValue": "a", "NewValue": "b"}, "CateId": '{"NewValue":1}'}},
    )
    assert change["MediaContent"] == {
        "Title": '{"OldValue":"a","NewValue":"b"}',
        "CateId": '{"NewValue":1}',
    }
    extend = _vod("FileUploadComplete", {"Extend": {"k": "v"}})
    assert extend["Extend"] == '{"k":"v"}'
    dna = _vod("AIMediaDNAComplete", {})
    assert isinstance(dna["Data"], str)
    audit = _vod("AIMediaAuditComplete", {"Data": '{"Suggestion":"block"}'})
    assert audit["Data"] == {"Suggestion": "block"}
    jobs = _vod("DeleteMediaComplete", {"DeleteType": "stream", "JobIds": "j1,j2"})
    assert jobs["JobIds"] == "j1,j2"


@pytest.mark.parametrize(
    ("event_type", "fields", "code", "words"),
    [
        ("FileUploadDone", {}, "EventTypeInvalid", "FileUploadComplete"),
        ("FileUploadComplete", {"VideoID": "x"}, "InvalidArgument", "'VideoId'"),
        ("FileUploadComplete", {"Size": "12kB"}, "InvalidArgument", "integer"),
        ("FileUploadComplete", {"Size": True}, "InvalidArgument", "integer"),
        ("StreamTranscodeComplete", {"Encrypt": "maybe"}, "InvalidArgument", "true or false"),
        ("StreamTranscodeComplete", {"Duration": "nan"}, "InvalidArgument", "number"),
        ("TranscodeComplete", {"StreamInfos": "[1]"}, "InvalidArgument", "array of objects"),
        ("TranscodeComplete", {"StreamInfos": "[{"}, "InvalidArgument", "not valid JSON"),
        ("TranscodeComplete", {"StreamInfos": [{"Bitrat": "1"}]}, "InvalidArgument", "[1]"),
        ("FileUploadComplete", {"Extend": "x" * 513}, "InvalidArgument", "512"),
        ("FileUploadComplete", {"EventType": "X"}, "InvalidArgument", "contradicts"),
        ("FileUploadComplete", {"Status": "ok"}, "InvalidArgument", "'success' or 'fail'"),
    ],
)
def test_vod_refusals(event_type: str, fields: dict[str, object], code: str, words: str) -> None:
    with pytest.raises(ServiceError) as caught:
        _vod(event_type, fields)
    assert caught.value.code == code
    assert words in caught.value.message


def test_vod_signature_of_the_spec_example() -> None:
    url, timestamp, key = "https://hooks.example.com/vod/callback", 1735689600, "Vod2025Key"
    assert vod.signature(url, timestamp, key) == "e5b880bace8cac522cced98de03da9e2"
    # Recomputed independently of the implementation.
    expected = hashlib.md5(f"{url}|{timestamp}|{key}".encode()).hexdigest()
    assert vod.auth_headers(url, key, timestamp) == {
        "X-VOD-TIMESTAMP": "1735689600",
        "X-VOD-SIGNATURE": expected,
    }


@pytest.mark.parametrize(
    ("event_type_list", "event_type", "enabled"),
    [
        ("ALL", "FileUploadComplete", True),
        ("", "FileUploadComplete", False),
        ("FileUploadComplete, TranscodeComplete", "TranscodeComplete", True),
        ("FileUploadComplete", "TranscodeComplete", False),
        ("AIComplete", "AIVideoTagComplete", True),
        ("AIComplete", "SnapshotComplete", False),
    ],
)
def test_vod_event_type_list(event_type_list: str, event_type: str, enabled: bool) -> None:
    assert vod.event_enabled(event_type_list, event_type) is enabled


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"CallbackType": "HTTP", "CallbackURL": "ftp://x"}, "http(s) URL"),
        ({"CallbackType": "HTTP", "CallbackURL": "https://h/" + "a" * 256}, "256 bytes"),
        ({"CallbackType": "HTTP", "CallbackURL": "https://h/", "AuthSwitch": "on"}, "AuthKey"),
        ({"CallbackType": "HTTP", "CallbackURL": "https://h/", "AuthKey": "lowercase1"}, "mix"),
        ({"CallbackType": "HTTP", "CallbackURL": "https://h/", "AuthKey": "A1a" * 11}, "32"),
        ({"CallbackType": "MNS"}, "MnsQueueName"),
        ({"CallbackType": "MNS", "MnsQueueName": "q", "AuthKey": "Ab1"}, "HTTP, not MNS"),
        ({"CallbackType": "SMS"}, "HTTP or MNS"),
        ({"CallbackType": "MNS", "MnsQueueName": "q", "EventTypeList": "Upload"}, "Upload"),
        ({"CallbackType": "MNS", "MnsQueueName": "q", "Colour": "x"}, "'Colour'"),
    ],
)
def test_vod_callback_configuration_refusals(params: dict[str, object], words: str) -> None:
    with pytest.raises(ServiceError) as caught:
        callback_from_params(params)
    assert words in caught.value.message


def test_vod_callback_configuration_defaults() -> None:
    http = callback_from_params(
        {"CallbackType": "http", "CallbackURL": "https://h/cb", "AuthKey": "Vod2025Key"}
    )
    assert (http.app_id, http.callback_type, http.auth_switch) == ("app-1000000", "HTTP", "on")
    assert http.event_type_list == "ALL"
    queue = callback_from_params(
        {"CallbackType": "MNS", "MnsQueueName": "vod-events", "EventTypeList": "AIComplete"}
    )
    assert (queue.mns_queue_name, queue.auth_switch, queue.event_type_list) == (
        "vod-events",
        "off",
        "AIComplete",
    )


# ---------------------------------------------------------------------------------------
# Vision AI (§6, seed 001 chapter 4)


def test_vision_example_byte_for_byte() -> None:
    members = json.loads(VISION_EXAMPLE)
    event = vision.job_event("SuperResolveVideo", members)
    assert vision.message_body(event) == compact(VISION_EXAMPLE)
    # The CLI passes `result` as a JSON string: the same body.
    cli = {**members, "result": json.dumps(members["result"])}
    assert vision.message_body(vision.job_event("SuperResolveVideo", cli)) == compact(
        VISION_EXAMPLE
    )


def test_vision_seed_shape_and_defaults() -> None:
    # Seed 001: {"jobId": "", "result": {"VideoUrl": ""}, "status": ""}, in that order.
    body = json.loads(vision.message_body(vision.job_event("SuperResolveVideo", {})))
    assert list(body) == ["jobId", "result", "status"]
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", body["jobId"])
    assert body["status"] == "PROCESS_SUCCESS"
    assert body["result"]["VideoUrl"].endswith(f"/SuperResolveVideo/{body['jobId']}.mp4")
    failed = vision.job_event("EraseVideoLogo", {"status": "PROCESS_FAILED"})
    assert failed.result == {}
    # Any API operation name is an event type (§6); other strings are refused.
    assert vision.job_event("SomeNewOperation", {}).status == "PROCESS_SUCCESS"
    with pytest.raises(ServiceError, match="API operation name"):
        vision.job_event("Super Resolve", {})
    with pytest.raises(ServiceError, match="'jobId'"):
        vision.job_event("SuperResolveVideo", {"jobID": "x"})


# ---------------------------------------------------------------------------------------
# Products and rule selection


def test_products_and_their_aliases() -> None:
    assert [product_of(n) for n in ("dm", "DirectMail", "vod", "vision", "viapi")] == [
        "dm",
        "dm",
        "vod",
        "viapi",
        "viapi",
    ]
    with pytest.raises(ServiceError, match="real operations"):
        product_of("oss")
    body = render_body(
        "directmail", "Deliver:SendSuccessfully", {}, now_ms=NOW, region="r", account_id="1"
    )
    assert "&region=r&" in body


def _rule(product: str, name: str, types: list[str], match: str) -> EventRule:
    return new_rule(
        product,
        name,
        types,
        parse_match_rules(match, product),
        [Endpoint("queue", "q")],
        topic_name=f"t-{name}",
    )


def test_resourceless_products_ignore_match_rules_and_keep_the_default_rule_last() -> None:
    narrow = _rule("dm", "narrow", ["Deliver:SendFailed"], '[[{"Name":"only/this"}]]')
    wide = _rule("dm", "wide", ["Deliver:*"], '[[{"Prefix":""}]]')
    default = _rule("dm", DEFAULT_RULE_NAME, ["Default"], '[[{"Name":"mns-en-reserved-default"}]]')
    other = _rule("viapi", "vision", ["SuperResolveVideo"], '[[{"Prefix":""}]]')
    rules = [default, narrow, wide, other]
    names = [r.name for r in matching_rules(rules, "dm", "Deliver:SendFailed")]
    assert names == ["narrow", "wide"]
    only_default = matching_rules([default, narrow], "dm", "Deliver:SendSuccessfully")
    assert [r.name for r in only_default] == [DEFAULT_RULE_NAME]
    assert matching_rules([other], "viapi", "EraseVideoLogo") == []
