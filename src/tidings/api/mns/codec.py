"""Queue and message documents: XML ↔ domain objects (spec sections 6, 8, 9)."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from tidings.api.mns.xml import boolean, document, element, fields, local_name, parse, text
from tidings.errors import ServiceError, invalid_argument
from tidings.models import Property, Queue, QueueCounts, StoredMessage
from tidings.services.queues import DeleteOutcome, Received, SendOutcome, SendRequest

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_QUEUE_FIELDS = {
    "DelaySeconds": "delay_seconds",
    "MaximumMessageSize": "maximum_message_size",
    "MessageRetentionPeriod": "message_retention_period",
    "VisibilityTimeout": "visibility_timeout",
    "PollingWaitSeconds": "polling_wait_seconds",
}


def integer(name: str, value: str) -> int:
    """A decimal integer field (`-?[0-9]+`), or `InvalidArgument` naming the field."""
    stripped = value.strip()
    if not _INTEGER.fullmatch(stripped):
        raise invalid_argument(f"{name} must be an integer, not {value!r}.")
    return int(stripped)


def parse_boolean(name: str, value: str) -> bool:
    """A boolean field in any case (`True`, `false`, ...)."""
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise invalid_argument(f"{name} must be True or False, not {value!r}.")
    return lowered == "true"


def root_named(body: bytes, expected: str) -> etree._Element:
    """Parse a body whose root element must be `expected`."""
    root = parse(body)
    if local_name(root) != expected:
        raise invalid_argument(f"The request body's root element must be {expected}.")
    return root


def parse_queue_changes(body: bytes) -> dict[str, Any]:
    """The attributes a CreateQueue / SetQueueAttributes body sets."""
    if not body.strip():
        return {}
    changes: dict[str, Any] = {}
    for name, child in fields(root_named(body, "Queue")).items():
        value = text(child) or ""
        if name in _QUEUE_FIELDS:
            changes[_QUEUE_FIELDS[name]] = integer(name, value)
        elif name == "LoggingEnabled":
            changes["logging_enabled"] = parse_boolean(name, value)
    return changes


def parse_properties(container: etree._Element | None, system: bool) -> list[Property]:
    """User or system properties of a message element."""
    if container is None:
        return []
    found = []
    for entry in container:
        values = {k: text(v) or "" for k, v in fields(entry).items()}
        found.append(
            Property(
                values.get("Name", ""), values.get("Value", ""), values.get("Type", ""), system
            )
        )
    return found


def _parse_message(element_: etree._Element) -> SendRequest:
    children = fields(element_)
    body = text(children.get("MessageBody"))
    if not body:
        raise invalid_argument("The message needs a non-empty MessageBody.")
    delay = children.get("DelaySeconds")
    priority = children.get("Priority")
    group = children.get("MessageGroupId")
    properties = parse_properties(children.get("UserProperties"), system=False)
    properties += parse_properties(children.get("SystemProperties"), system=True)
    return SendRequest(
        body=body,
        delay_seconds=integer("DelaySeconds", text(delay) or "") if delay is not None else None,
        priority=integer("Priority", text(priority) or "") if priority is not None else None,
        group_id=text(group) or None,
        properties=tuple(properties),
    )


def parse_send(body: bytes) -> tuple[list[SendRequest], bool]:
    """The messages of a SendMessage / BatchSendMessage body, and whether it was a batch.

    An entry that cannot be parsed fails the whole request: a batch's per-entry
    results are for entries the service could understand.
    """
    root = parse(body)
    name = local_name(root)
    if name == "Message":
        return [_parse_message(root)], False
    if name == "Messages":
        entries = [child for child in root if local_name(child) == "Message"]
        return [_parse_message(entry) for entry in entries], True
    raise invalid_argument("The request body's root element must be Message or Messages.")


# The BatchDeleteMessage document the SDK writes, with handles made of the characters
# ours use (URL-safe Base64; the cloud's plain Base64), which need no XML decoding.
# lxml would release the GIL to parse it, and getting the GIL back from the store's
# writer thread costs the event loop more than the parse; anything else is parsed.
_SIMPLE_HANDLES = re.compile(
    rb'(?:<\?xml version="1\.0" encoding="(?:utf|UTF)-8"\?>[ \t\r\n]*)?'
    rb'<ReceiptHandles xmlns="http://mns\.aliyuncs\.com/doc/v1/">'
    rb"((?:<ReceiptHandle>[A-Za-z0-9_=+/-]*</ReceiptHandle>)*)"
    rb"</ReceiptHandles>[ \t\r\n]*"
)
_SIMPLE_HANDLE = re.compile(rb"<ReceiptHandle>([^<]*)</ReceiptHandle>")


def parse_receipt_handles(body: bytes) -> list[str]:
    """The receipt handles of a BatchDeleteMessage body."""
    simple = _SIMPLE_HANDLES.fullmatch(body)
    if simple is not None:
        return [h.decode("ascii") for h in _SIMPLE_HANDLE.findall(simple.group(1))]
    root = root_named(body, "ReceiptHandles")
    return [text(child) or "" for child in root if local_name(child) == "ReceiptHandle"]


# -- rendering ------------------------------------------------------------------------


def queue_attribute_parts(queue: Queue, counts: QueueCounts) -> list[str]:
    """The flat attribute elements of a queue (GetQueueAttributes, ListQueue with meta)."""
    a = queue.attributes
    return [
        element("QueueName", queue.name),
        element("CreateTime", queue.created_s),
        element("LastModifyTime", queue.modified_s),
        element("DelaySeconds", a.delay_seconds),
        element("MaximumMessageSize", a.maximum_message_size),
        element("MessageRetentionPeriod", a.message_retention_period),
        element("VisibilityTimeout", a.visibility_timeout),
        element("PollingWaitSeconds", a.polling_wait_seconds),
        element("ActiveMessages", counts.active),
        element("InactiveMessages", counts.inactive),
        element("DelayMessages", counts.delayed),
        element("LoggingEnabled", boolean(a.logging_enabled)),
    ]


def render_queue(queue: Queue, counts: QueueCounts) -> bytes:
    """The GetQueueAttributes document."""
    return document("Queue", queue_attribute_parts(queue, counts))


def render_queue_list(
    base: str, entries: list[tuple[Queue, QueueCounts | None]], next_marker: str | None
) -> bytes:
    """The ListQueue document; `counts` present for `x-mns-with-meta`."""
    parts = []
    for queue, counts in entries:
        inner = element("QueueURL", f"{base}/queues/{queue.name}")
        if counts is not None:
            inner += "".join(queue_attribute_parts(queue, counts))
        parts.append(f"<Queue>{inner}</Queue>")
    if next_marker:
        parts.append(element("NextMarker", next_marker))
    return document("Queues", parts)


def render_send(outcomes: list[SendOutcome], batch: bool) -> bytes:
    """The SendMessage / BatchSendMessage success document (every entry succeeded)."""
    parts = [_send_entry(o) for o in outcomes]
    if batch:
        return document("Messages", [f"<Message>{p}</Message>" for p in parts])
    return document("Message", parts)


def _send_entry(outcome: SendOutcome, with_group: bool = True) -> str:
    inner = element("MessageId", outcome.message_id) + element("MessageBodyMD5", outcome.body_md5)
    if with_group and outcome.group_id:
        inner += element("MessageGroupId", outcome.group_id)
    return inner


def render_send_failures(outcomes: list[SendOutcome]) -> bytes:
    """The batch-send partial-failure document: exactly two children per entry."""
    parts = []
    for outcome in outcomes:
        if outcome.error is not None:
            inner = element("ErrorCode", outcome.error.code) + element(
                "ErrorMessage", outcome.error.message
            )
        else:
            inner = _send_entry(outcome, with_group=False)
        parts.append(f"<Message>{inner}</Message>")
    return document("Messages", parts)


def render_delete_failures(outcomes: list[DeleteOutcome]) -> bytes:
    """The batch-delete partial-failure document: one entry per failed handle."""
    parts = []
    for outcome in outcomes:
        error = outcome.error
        if error is None:
            continue
        inner = (
            element("ErrorCode", error.code)
            + element("ErrorMessage", error.message)
            + element("ReceiptHandle", outcome.receipt_handle)
        )
        parts.append(f"<Error>{inner}</Error>")
    return document("Errors", parts)


def _properties_parts(message: StoredMessage) -> list[str]:
    user = [p for p in message.properties if not p.system]
    system = [p for p in message.properties if p.system]
    parts = []
    for container, entry, props in (
        ("UserProperties", "PropertyValue", user),
        ("SystemProperties", "SystemPropertyValue", system),
    ):
        if props:
            inner = "".join(
                f"<{entry}>{element('Name', p.name)}{element('Value', p.value)}"
                f"{element('Type', p.type)}</{entry}>"
                for p in props
            )
            parts.append(f"<{container}>{inner}</{container}>")
    return parts


def message_parts(message: StoredMessage, receipt_handle: str | None) -> list[str]:
    """The children of a received (with handle) or peeked (without) message."""
    parts = [element("MessageId", message.message_id)]
    if receipt_handle is not None:
        parts.append(element("ReceiptHandle", receipt_handle))
    parts += [
        element("MessageBody", message.body),
        element("MessageBodyMD5", message.body_md5),
        element("EnqueueTime", message.enqueue_ms),
    ]
    if receipt_handle is not None:
        parts.append(element("NextVisibleTime", message.visible_ms))
    parts += [
        element("FirstDequeueTime", message.first_dequeue_ms or message.enqueue_ms),
        element("DequeueCount", message.dequeue_count),
        element("Priority", message.priority),
    ]
    if message.group_id:
        parts.append(element("MessageGroupId", message.group_id))
    parts += _properties_parts(message)
    return parts


def render_received(received: list[Received], batch: bool) -> bytes:
    """The ReceiveMessage / BatchReceiveMessage document."""
    if not batch:
        only = received[0]
        return document("Message", message_parts(only.message, only.receipt_handle))
    return document(
        "Messages",
        [
            f"<Message>{''.join(message_parts(r.message, r.receipt_handle))}</Message>"
            for r in received
        ],
    )


def render_peeked(messages: list[StoredMessage], batch: bool) -> bytes:
    """The PeekMessage / BatchPeekMessage document."""
    if not batch:
        return document("Message", message_parts(messages[0], None))
    return document(
        "Messages", [f"<Message>{''.join(message_parts(m, None))}</Message>" for m in messages]
    )


def render_change_visibility(receipt_handle: str, next_visible_ms: int) -> bytes:
    """The ChangeMessageVisibility document."""
    return document(
        "ChangeVisibility",
        [element("ReceiptHandle", receipt_handle), element("NextVisibleTime", next_visible_ms)],
    )


def render_error(error: ServiceError, request_id: str, host_id: str) -> bytes:
    """The `Error` document; all four children are required by the SDK."""
    return document(
        "Error",
        [
            element("Code", error.code),
            element("Message", error.message),
            element("RequestId", request_id),
            element("HostId", host_id),
        ],
    )
