"""The notification a delivery carries, in the subscription's content format."""

from __future__ import annotations

from tidings.events.mns_notification import Notification, render
from tidings.models import Delivery


def notification_for(delivery: Delivery, account_id: str) -> Notification:
    """The documented notification fields of a delivery (one account owns everything)."""
    message = delivery.message
    return Notification(
        topic_owner=account_id,
        topic_name=delivery.topic_name,
        subscriber=account_id,
        subscription_name=delivery.subscription.name,
        message_id=message.message_id,
        message=message.body,
        message_md5=message.body_md5,
        message_tag=message.tag,
        publish_time_ms=message.publish_ms,
    )


def render_delivery(delivery: Delivery, account_id: str) -> tuple[bytes, str]:
    """The body and content type pushed for a delivery."""
    return render(
        notification_for(delivery, account_id), delivery.subscription.spec.notify_content_format
    )


def mns_headers(delivery: Delivery, account_id: str) -> dict[str, str]:
    """The `x-mns-*` metadata headers of a push (lower-case names, spec 12.5)."""
    message = delivery.message
    headers = {
        "x-mns-message-id": message.message_id,
        "x-mns-topic-owner": account_id,
        "x-mns-topic-name": delivery.topic_name,
        "x-mns-subscriber": account_id,
        "x-mns-subscription-name": delivery.subscription.name,
        "x-mns-publish-time": str(message.publish_ms),
    }
    if message.tag:
        headers["x-mns-message-tag"] = message.tag
    return headers


def attribute(delivery: Delivery, name: str) -> str | None:
    """A message attribute block (`DirectMail`, `DirectSMS`) as published, if present."""
    return dict(delivery.message.attributes).get(name)
