"""Topic, subscription and publish documents: XML ↔ domain objects (spec sections 10, 11)."""

from __future__ import annotations

import re
from typing import Any

from tidings.api.mns.codec import integer, parse_boolean, parse_properties, root_named
from tidings.api.mns.xml import boolean, document, element, fields, text
from tidings.errors import invalid_argument
from tidings.models import Subscription, SubscriptionSpec, Topic
from tidings.services.topics import PublishRequest


def parse_topic_changes(body: bytes) -> dict[str, Any]:
    """The attributes a CreateTopic / SetTopicAttributes body sets."""
    if not body.strip():
        return {}
    changes: dict[str, Any] = {}
    for name, child in fields(root_named(body, "Topic")).items():
        value = text(child) or ""
        if name == "MaximumMessageSize":
            changes["maximum_message_size"] = integer(name, value)
        elif name == "LoggingEnabled":
            changes["logging_enabled"] = parse_boolean(name, value)
    return changes


def parse_subscription(body: bytes) -> SubscriptionSpec:
    """A Subscribe body; `Endpoint` is required, the rest default as documented."""
    children = fields(root_named(body, "Subscription"))
    values = {name: (text(child) or "").strip() for name, child in children.items()}
    endpoint = values.get("Endpoint", "")
    if not endpoint:
        raise invalid_argument("Subscribe needs an Endpoint.")
    return SubscriptionSpec(
        endpoint=endpoint,
        filter_tag=values.get("FilterTag") or None,
        notify_strategy=values.get("NotifyStrategy") or "BACKOFF_RETRY",
        notify_content_format=values.get("NotifyContentFormat") or "XML",
    )


def parse_notify_strategy(body: bytes) -> str | None:
    """The NotifyStrategy of a SetSubscriptionAttributes body, if it sets one."""
    if not body.strip():
        return None
    value = text(fields(root_named(body, "Subscription")).get("NotifyStrategy"))
    return value.strip() if value else None


# The document the SDK writes for a plain publish, with text that needs no XML decoding:
# no markup, references or carriage returns (a parser would normalise those) and none
# of the characters XML refuses. Anything else takes the full parser. Besides its own
# cost, lxml releases the GIL while parsing, and taking it back from the store's writer
# thread costs the event loop far more than the parse.
_SIMPLE_PUBLISH = re.compile(
    rb'(?:<\?xml version="1\.0" encoding="(?:utf|UTF)-8"\?>[ \t\r\n]*)?'
    rb'<Message xmlns="http://mns\.aliyuncs\.com/doc/v1/">'
    rb"<MessageBody>([^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f]*)</MessageBody>"
    rb"(?:<MessageTag>([^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f]*)</MessageTag>)?"
    rb"</Message>[ \t\r\n]*"
)
_NOT_XML_CHARACTER = re.compile("[\ufffe\uffff]")


def _parse_simple_publish(body: bytes) -> PublishRequest | None:
    """The request of a body `_SIMPLE_PUBLISH` matches, as the full parser reads it."""
    match = _SIMPLE_PUBLISH.fullmatch(body)
    if match is None:
        return None
    try:
        message = match.group(1).decode("utf-8")
        tag = (match.group(2) or b"").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _NOT_XML_CHARACTER.search(message) or _NOT_XML_CHARACTER.search(tag):
        return None
    return PublishRequest(body=message, tag=tag or None)


def parse_publish(body: bytes) -> PublishRequest:
    """A PublishMessage body."""
    simple = _parse_simple_publish(body)
    if simple is not None:
        return simple
    children = fields(root_named(body, "Message"))
    attributes_element = children.get("MessageAttributes")
    attributes: tuple[tuple[str, str], ...] = ()
    if attributes_element is not None:
        attributes = tuple(
            (name, text(child) or "") for name, child in fields(attributes_element).items()
        )
    tag = text(children.get("MessageTag"))
    group = text(children.get("MessageGroupId"))
    properties = parse_properties(children.get("UserProperties"), system=False)
    properties += parse_properties(children.get("SystemProperties"), system=True)
    return PublishRequest(
        body=text(children.get("MessageBody")) or "",
        tag=tag or None,
        attributes=attributes,
        group_id=group or None,
        properties=tuple(properties),
    )


def topic_parts(topic: Topic, message_count: int, retention_seconds: int) -> list[str]:
    """The flat attribute elements of a topic."""
    return [
        element("TopicName", topic.name),
        element("CreateTime", topic.created_s),
        element("LastModifyTime", topic.modified_s),
        element("MaximumMessageSize", topic.attributes.maximum_message_size),
        element("MessageRetentionPeriod", retention_seconds),
        element("MessageCount", message_count),
        element("LoggingEnabled", boolean(topic.attributes.logging_enabled)),
    ]


def render_topic(topic: Topic, message_count: int, retention_seconds: int) -> bytes:
    """The GetTopicAttributes document."""
    return document("Topic", topic_parts(topic, message_count, retention_seconds))


def render_topic_list(
    base: str, entries: list[tuple[Topic, int | None]], next_marker: str | None, retention: int
) -> bytes:
    """The ListTopic document; counts present when meta was asked for."""
    parts = []
    for topic, count in entries:
        inner = element("TopicURL", f"{base}/topics/{topic.name}")
        if count is not None:
            inner += "".join(topic_parts(topic, count, retention))
        parts.append(f"<Topic>{inner}</Topic>")
    if next_marker:
        parts.append(element("NextMarker", next_marker))
    return document("Topics", parts)


def render_subscription(subscription: Subscription, account_id: str) -> bytes:
    """The GetSubscriptionAttributes document."""
    spec = subscription.spec
    parts = [
        element("SubscriptionName", subscription.name),
        element("Subscriber", account_id),
        element("TopicOwner", account_id),
        element("TopicName", subscription.topic_name),
        element("Endpoint", spec.endpoint),
        element("NotifyStrategy", spec.notify_strategy),
        element("NotifyContentFormat", spec.notify_content_format),
    ]
    if spec.filter_tag:
        parts.append(element("FilterTag", spec.filter_tag))
    parts += [
        element("CreateTime", subscription.created_s),
        element("LastModifyTime", subscription.modified_s),
    ]
    return document("Subscription", parts)


def render_subscription_list(
    base: str, subscriptions: list[Subscription], next_marker: str | None
) -> bytes:
    """The ListSubscriptionByTopic document."""
    parts = [
        "<Subscription>"
        + element("SubscriptionURL", f"{base}/topics/{s.topic_name}/subscriptions/{s.name}")
        + "</Subscription>"
        for s in subscriptions
    ]
    if next_marker:
        parts.append(element("NextMarker", next_marker))
    return document("Subscriptions", parts)


def render_published(message_id: str, body_md5: str, group_id: str | None) -> bytes:
    """The PublishMessage response."""
    parts = [element("MessageId", message_id), element("MessageBodyMD5", body_md5)]
    if group_id:
        parts.append(element("MessageGroupId", group_id))
    return document("Message", parts)
