"""The lxml-free fast paths for PublishMessage and BatchDeleteMessage bodies read exactly
what the hardened parser reads, and step aside for anything else."""

from __future__ import annotations

from xml.sax.saxutils import escape

from hypothesis import given
from hypothesis import strategies as st

from tidings.api.mns.codec import parse_receipt_handles
from tidings.api.mns.topic_codec import _parse_simple_publish, parse_publish

NS = "http://mns.aliyuncs.com/doc/v1/"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# Text XML 1.0 can carry (the SDK never sends anything else).
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff\x00"),
    max_size=40,
).filter(lambda t: all(c in "\t\n\r" or ord(c) >= 0x20 for c in t))


def publish_document(body: str, tag: str | None, separator: str = "") -> bytes:
    tag_part = f"<MessageTag>{escape(tag)}</MessageTag>" if tag is not None else ""
    return (
        f'{DECLARATION}<Message xmlns="{NS}">{separator}'
        f"<MessageBody>{escape(body)}</MessageBody>{tag_part}</Message>"
    ).encode()


@given(XML_TEXT, st.one_of(st.none(), XML_TEXT))
def test_fast_publish_parse_agrees_with_the_full_parser(body: str, tag: str | None) -> None:
    # A newline between elements keeps the fast path out: that is the reference reading.
    fast = parse_publish(publish_document(body, tag))
    full = parse_publish(publish_document(body, tag, separator="\n"))
    assert _parse_simple_publish(publish_document(body, tag, separator="\n")) is None
    assert (fast.body, fast.tag) == (full.body, full.tag)


def test_plain_text_takes_the_fast_path_and_markup_does_not() -> None:
    assert _parse_simple_publish(publish_document("order 42 shipped", "t")) is not None
    assert _parse_simple_publish(publish_document("a & b", None)) is None
    assert _parse_simple_publish(publish_document("line\r\nbreak", None)) is None


HANDLE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=+/", max_size=30)


@given(st.lists(HANDLE, max_size=16))
def test_fast_receipt_handle_parse_agrees_with_the_full_parser(handles: list[str]) -> None:
    items = "".join(f"<ReceiptHandle>{h}</ReceiptHandle>" for h in handles)
    fast = f'{DECLARATION}<ReceiptHandles xmlns="{NS}">{items}</ReceiptHandles>'
    full = f'{DECLARATION}<ReceiptHandles xmlns="{NS}">\n{items}</ReceiptHandles>'
    assert parse_receipt_handles(fast.encode()) == parse_receipt_handles(full.encode()) == handles
