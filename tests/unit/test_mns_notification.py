"""The topic notification formats (spec 12.4).

The spec's XML sample is pretty-printed; the renderer writes the same document
compactly. The expected bytes are derived from the sample by removing the whitespace
between a '>' and the next '<' (the newline after the declaration included) and
nothing else. The JSON sample is already compact and is compared as is.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from tidings.events.mns_notification import (
    FORMATS,
    Notification,
    render,
    render_json,
    render_xml,
    xml_escape,
)

SPEC_XML = """<?xml version="1.0" encoding="utf-8"?>
<Notification xmlns="http://mns.aliyuncs.com/doc/v1/">
  <TopicOwner>1234567890123456</TopicOwner>
  <TopicName>t1</TopicName>
  <Subscriber>1234567890123456</Subscriber>
  <SubscriptionName>s1</SubscriptionName>
  <MessageId>6A1F0C2B9D4E3F58-1-18E1A2B3C4D-200000011</MessageId>
  <Message>hello</Message>
  <MessageMD5>5D41402ABC4B2A76B9719D911017C592</MessageMD5>
  <MessageTag>important</MessageTag>
  <PublishTime>1709837398123</PublishTime>
</Notification>"""
SPEC_XML_COMPACT = re.sub(r">\s+<", "><", SPEC_XML).encode("utf-8")
SPEC_JSON = (
    b'{"TopicOwner":"1234567890123456","TopicName":"t1","Subscriber":"1234567890123456",'
    b'"SubscriptionName":"s1","MessageId":"6A1F0C2B9D4E3F58-1-18E1A2B3C4D-200000011",'
    b'"Message":"hello","MessageMD5":"5D41402ABC4B2A76B9719D911017C592",'
    b'"MessageTag":"important","PublishTime":"1709837398123"}'
)
NS = "{http://mns.aliyuncs.com/doc/v1/}"
FIELD_ORDER = [
    "TopicOwner",
    "TopicName",
    "Subscriber",
    "SubscriptionName",
    "MessageId",
    "Message",
    "MessageMD5",
    "MessageTag",
    "PublishTime",
]

EXAMPLE = Notification(
    topic_owner="1234567890123456",
    topic_name="t1",
    subscriber="1234567890123456",
    subscription_name="s1",
    message_id="6A1F0C2B9D4E3F58-1-18E1A2B3C4D-200000011",
    message="hello",
    message_md5="5D41402ABC4B2A76B9719D911017C592",
    message_tag="important",
    publish_time_ms=1709837398123,
)
UNTAGGED = Notification(
    **{**{f: getattr(EXAMPLE, f) for f in EXAMPLE.__slots__}, "message_tag": None}
)


def with_message(message: str, tag: str | None = "important") -> Notification:
    fields = {f: getattr(EXAMPLE, f) for f in EXAMPLE.__slots__}
    return Notification(**{**fields, "message": message, "message_tag": tag})


def xml_fields(body: bytes) -> dict[str, str]:
    root = etree.fromstring(body)
    assert root.tag == f"{NS}Notification"
    return {child.tag.removeprefix(NS): child.text or "" for child in root}


def test_compact_spec_sample_is_what_the_spec_shows() -> None:
    assert SPEC_XML_COMPACT.startswith(b'<?xml version="1.0" encoding="utf-8"?><Notification ')
    assert b"\n" not in SPEC_XML_COMPACT and b"  " not in SPEC_XML_COMPACT


def test_xml_matches_the_spec_sample() -> None:
    assert render(EXAMPLE, "XML") == (SPEC_XML_COMPACT, "text/xml;charset=utf-8")
    assert render_xml(EXAMPLE) == SPEC_XML_COMPACT


def test_json_matches_the_spec_sample() -> None:
    assert render(EXAMPLE, "JSON") == (SPEC_JSON, "application/json;charset=utf-8")
    assert render_json(EXAMPLE) == SPEC_JSON


def test_simplified_is_the_body_alone() -> None:
    assert render(EXAMPLE, "SIMPLIFIED") == (b"hello", "text/plain;charset=utf-8")
    body = '<x a="1">&amp; é 😀</x>\r\n'
    assert render(with_message(body), "SIMPLIFIED")[0] == body.encode("utf-8")


def test_element_and_key_order_follow_the_spec() -> None:
    assert list(xml_fields(render_xml(EXAMPLE))) == FIELD_ORDER
    assert list(json.loads(render_json(EXAMPLE))) == FIELD_ORDER


def test_tag_is_omitted_when_none() -> None:
    xml_body, _ = render(UNTAGGED, "XML")
    assert b"MessageTag" not in xml_body
    assert list(xml_fields(xml_body)) == [f for f in FIELD_ORDER if f != "MessageTag"]
    assert xml_body == SPEC_XML_COMPACT.replace(b"<MessageTag>important</MessageTag>", b"")
    json_body, _ = render(UNTAGGED, "JSON")
    assert "MessageTag" not in json.loads(json_body)
    assert json_body == SPEC_JSON.replace(b'"MessageTag":"important",', b"")


def test_an_empty_tag_is_no_tag() -> None:
    """As in the push headers, where an empty x-mns-message-tag is never sent."""
    assert b"MessageTag" not in render_xml(with_message("x", tag=""))
    assert "MessageTag" not in json.loads(render_json(with_message("x", tag="")))


def test_xml_escapes_markup_characters() -> None:
    body = render_xml(with_message("a & b < c > d \"e\" 'f' ]]>"))
    assert b"<Message>a &amp; b &lt; c &gt; d &quot;e&quot; 'f' ]]&gt;</Message>" in body
    assert xml_fields(body)["Message"] == "a & b < c > d \"e\" 'f' ]]>"


def test_xml_keeps_carriage_returns() -> None:
    body = render_xml(with_message("line1\r\nline2\ttab"))
    assert b"line1&#13;\nline2\ttab" in body
    assert xml_fields(body)["Message"] == "line1\r\nline2\ttab"


def test_xml_replaces_characters_it_cannot_carry() -> None:
    body = render_xml(with_message("a\x00b\x1fc\ufffed\ud800e"))
    assert xml_fields(body)["Message"] == "a\ufffdb\ufffdc\ufffdd\ufffde"


def test_unicode_is_utf8_in_every_format() -> None:
    text = "héllo wörld 你好 😀"
    assert f"<Message>{text}</Message>".encode() in render_xml(with_message(text))
    assert f'"Message":"{text}"'.encode() in render_json(with_message(text))
    assert b"\\u" not in render_json(with_message(text))
    assert render(with_message(text), "SIMPLIFIED")[0] == text.encode("utf-8")


def test_json_escapes_what_json_requires() -> None:
    body = render_json(with_message('q"b\\s/\n\x01'))
    assert b'"Message":"q\\"b\\\\s/\\n\\u0001"' in body
    assert json.loads(body)["Message"] == 'q"b\\s/\n\x01'


def test_lone_surrogates_never_break_encoding() -> None:
    for content_format in sorted(FORMATS):
        body, _ = render(with_message("a\udc80b"), content_format)
        assert "a\ufffdb" in body.decode("utf-8")


def test_publish_time_is_a_string_in_json_and_text_in_xml() -> None:
    assert json.loads(render_json(EXAMPLE))["PublishTime"] == "1709837398123"
    assert b"<PublishTime>1709837398123</PublishTime>" in render_xml(EXAMPLE)


def test_xml_escape_fast_path_returns_the_same_object() -> None:
    value = "aGVsbG8gd29ybGQ="
    assert xml_escape(value) is value


def test_formats() -> None:
    assert frozenset({"XML", "JSON", "SIMPLIFIED"}) == FORMATS


@pytest.mark.parametrize("content_format", ["", "xml", "Json", "simplified", "TEXT", "XML "])
def test_unknown_format_is_refused(content_format: str) -> None:
    with pytest.raises(ValueError, match="unknown notify content format"):
        render(EXAMPLE, content_format)


def test_notification_is_frozen() -> None:
    with pytest.raises(AttributeError):
        EXAMPLE.message = "changed"  # type: ignore[misc]


xml_text = st.text(
    st.characters(codec="utf-8").filter(
        lambda c: c in "\t\n\r" or (c >= "\x20" and c not in "\ufffe\uffff")
    )
)
notifications = st.builds(
    Notification,
    topic_owner=st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    topic_name=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,63}", fullmatch=True),
    subscriber=st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    subscription_name=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,63}", fullmatch=True),
    message_id=st.from_regex(r"[0-9A-F-]{1,64}", fullmatch=True),
    message=xml_text,
    message_md5=st.from_regex(r"[0-9A-F]{32}", fullmatch=True),
    message_tag=st.none() | xml_text.filter(lambda t: 0 < len(t) <= 16),
    publish_time_ms=st.integers(min_value=0, max_value=2**53),
)


def expected_fields(n: Notification) -> dict[str, str]:
    fields = {
        "TopicOwner": n.topic_owner,
        "TopicName": n.topic_name,
        "Subscriber": n.subscriber,
        "SubscriptionName": n.subscription_name,
        "MessageId": n.message_id,
        "Message": n.message,
        "MessageMD5": n.message_md5,
        "MessageTag": n.message_tag,
        "PublishTime": str(n.publish_time_ms),
    }
    return {k: v for k, v in fields.items() if v is not None}


@given(notifications)
def test_xml_round_trips(notification: Notification) -> None:
    body, _ = render(notification, "XML")
    assert xml_fields(body) == expected_fields(notification)


@given(notifications, st.text(st.characters(codec="utf-8")))
def test_json_round_trips(notification: Notification, any_text: str) -> None:
    # JSON can carry every character, control characters included.
    fields = {f: getattr(notification, f) for f in Notification.__slots__}
    notification = Notification(**{**fields, "message": any_text})
    body, _ = render(notification, "JSON")
    decoded = json.loads(body.decode("utf-8"))
    assert decoded == expected_fields(notification)
    assert list(decoded) == [k for k in FIELD_ORDER if k in decoded]


@given(st.text(st.characters(codec="utf-8")))
def test_simplified_round_trips(any_text: str) -> None:
    assert render(with_message(any_text), "SIMPLIFIED")[0].decode("utf-8") == any_text
