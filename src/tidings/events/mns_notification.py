"""The notification documents an MNS topic subscription receives (spec 12.4).

`render()` turns one published message, as seen by one subscription, into the body and
Content-Type of a push (or of a queue message, spec 12.6). It is pure and imports
nothing from the API layer: deliveries are built off the request path.

Text that UTF-8 or XML 1.0 cannot carry is replaced by U+FFFD rather than refused: a
stored body passed the publish checks, and one odd character must not make a message
undeliverable for ever.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

XML = "XML"
JSON = "JSON"
SIMPLIFIED = "SIMPLIFIED"
FORMATS = frozenset({XML, JSON, SIMPLIFIED})

XML_CONTENT_TYPE = "text/xml;charset=utf-8"
# The cloud's JSON content type is unverified (spec 12.4); this is the obvious choice.
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
SIMPLIFIED_CONTENT_TYPE = "text/plain;charset=utf-8"

NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
# Lower-case "utf-8" and no newline after the declaration, as the spec's sample and
# the SDK's own request documents are written.
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'

# Python strings can hold lone surrogates (never valid UTF-8); any surrogate code
# point in a str is a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters XML 1.0 cannot carry even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_SPECIAL = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
# '>' is escaped so "]]>" never appears; '\r' as a reference because a parser turns a
# raw one into '\n'.
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"})


@dataclass(frozen=True, slots=True)
class Notification:
    """One published message as delivered to one subscription."""

    topic_owner: str
    topic_name: str
    subscriber: str
    subscription_name: str
    message_id: str
    message: str  # the published MessageBody, unchanged (still Base64 if it was)
    message_md5: str  # the publish response's MessageBodyMD5
    message_tag: str | None
    publish_time_ms: int


def xml_escape(value: str) -> str:
    """Escape text for XML element content; XML-illegal characters become U+FFFD."""
    if _XML_SPECIAL.search(value) is None:  # the common case: ids, names, Base64 bodies
        return value
    return _NOT_XML.sub("\ufffd", value).translate(_XML_ESCAPES)


def _utf8(value: str) -> bytes:
    return _SURROGATE.sub("\ufffd", value).encode("utf-8")


def _fields(notification: Notification) -> list[tuple[str, str]]:
    """The documented fields in the documented order; MessageTag only when tagged."""
    fields = [
        ("TopicOwner", notification.topic_owner),
        ("TopicName", notification.topic_name),
        ("Subscriber", notification.subscriber),
        ("SubscriptionName", notification.subscription_name),
        ("MessageId", notification.message_id),
        ("Message", notification.message),
        ("MessageMD5", notification.message_md5),
    ]
    if notification.message_tag:  # an empty tag is no tag, as in the push headers
        fields.append(("MessageTag", notification.message_tag))
    fields.append(("PublishTime", str(notification.publish_time_ms)))
    return fields


def render_xml(notification: Notification) -> bytes:
    """The XML notification document, compact (no whitespace between elements)."""
    inner = "".join(
        f"<{name}>{xml_escape(value)}</{name}>" for name, value in _fields(notification)
    )
    return _utf8(f'{XML_DECLARATION}<Notification xmlns="{NAMESPACE}">{inner}</Notification>')


def render_json(notification: Notification) -> bytes:
    """The JSON notification: one object, every value a string, compact separators.

    Non-ASCII text is written as UTF-8 rather than as \\u escapes: the body is declared
    UTF-8, it is smaller, and it is what a reader of a queue message expects to see.
    Control characters are still escaped, as JSON requires.
    """
    text = json.dumps(dict(_fields(notification)), ensure_ascii=False, separators=(",", ":"))
    return _utf8(text)


def render(notification: Notification, content_format: str) -> tuple[bytes, str]:
    """The body and Content-Type of `notification` in `content_format`.

    `content_format` is a subscription's NotifyContentFormat, matched exactly
    ("XML", "JSON" or "SIMPLIFIED"); anything else is a ValueError. SIMPLIFIED is the
    published body alone; its metadata travels in x-mns-* push headers (spec 12.5).
    """
    if content_format == XML:
        return render_xml(notification), XML_CONTENT_TYPE
    if content_format == JSON:
        return render_json(notification), JSON_CONTENT_TYPE
    if content_format == SIMPLIFIED:
        return _utf8(notification.message), SIMPLIFIED_CONTENT_TYPE
    raise ValueError(
        f"unknown notify content format {content_format!r}; expected one of {sorted(FORMATS)}"
    )
