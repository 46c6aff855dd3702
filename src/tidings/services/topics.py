"""Topics, subscriptions and publishing: the rules, independent of any wire format."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from tidings.clock import Clock
from tidings.delivery.notification import render_delivery
from tidings.errors import ServiceError, invalid_argument
from tidings.ids import message_id
from tidings.models import (
    Delivery,
    NewMessage,
    NewTopicMessage,
    Property,
    Subscription,
    SubscriptionSpec,
    Topic,
    TopicAttributes,
)
from tidings.services import limits
from tidings.services.endpoints import (
    FORMATS_BY_KIND,
    HTTP,
    MAIL,
    QUEUE,
    SMS,
    address_allowed,
    invalid_endpoint,
    parse_endpoint,
)
from tidings.services.paging import decode_marker, page
from tidings.services.queue_rules import body_md5, check_properties
from tidings.services.queues import QueueService
from tidings.services.validation import check_name, check_range
from tidings.store.base import Store

TOPIC_RETENTION_SECONDS = 86400
# Like queues: other processes sharing the store see topic changes within this time.
TOPIC_CACHE_SECONDS = 1.0
MAX_SUBSCRIPTIONS = 1_000_000
TAG_MAX_LENGTH = 16
STRATEGIES = frozenset({"BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"})
MESSAGE_ATTRIBUTES = frozenset({"DirectMail", "DirectSMS", "WebSocket", "Push"})


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One message to publish, as the client asked for it."""

    body: str
    tag: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    group_id: str | None = None
    properties: tuple[Property, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """What the administrator allows subscriptions to point at."""

    allowed_networks: tuple[str, ...] = ()
    denied_networks: tuple[str, ...] = ()
    mail_enabled: bool = False
    sms_enabled: bool = False


def check_topic_name(name: str) -> None:
    """Refuse an invalid topic name with `TopicNameInvalid` / `TopicNameLengthError`."""
    check_name(name, "topic", "TopicNameInvalid", "TopicNameLengthError")


def check_subscription_name(name: str) -> None:
    """Refuse an invalid subscription name."""
    check_name(name, "subscription", "SubscriptionNameInvalid", "SubscriptionNameLengthError")


def check_tag(field: str, tag: str | None) -> None:
    """A MessageTag or FilterTag is at most 16 printable characters.

    Tags travel in push headers (`x-mns-message-tag`), where control characters would
    break the request and its signature.
    """
    if tag is None:
        return
    if len(tag) > TAG_MAX_LENGTH:
        raise invalid_argument(f"{field} is {len(tag)} characters; at most 16 are allowed.")
    if not tag.isprintable():
        raise invalid_argument(f"{field} {tag!r} contains control characters.")


def check_attributes(attributes: Iterable[tuple[str, str]]) -> None:
    """Each known message attribute is a JSON object (spec 10.7)."""
    for name, value in attributes:
        if name not in MESSAGE_ATTRIBUTES:
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            raise invalid_argument(f"MessageAttributes {name} is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise invalid_argument(f"MessageAttributes {name} must be a JSON object.")


def build_topic_attributes(base: TopicAttributes, changes: dict[str, Any]) -> TopicAttributes:
    """`base` with `changes` applied and range-checked."""
    if "maximum_message_size" in changes:
        check_range(
            "MaximumMessageSize",
            changes["maximum_message_size"],
            limits.MAXIMUM_MESSAGE_SIZE_RANGE,
        )
    return replace(base, **changes)


class TopicService:
    """Create topics, subscribe endpoints and publish; deliveries go to `on_published`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        account_id: str,
        policy: EndpointPolicy | None = None,
        queues: QueueService | None = None,
    ) -> None:
        self.queues = queues
        self.store = store
        self.clock = clock
        self.account_id = account_id
        self.policy = policy or EndpointPolicy()
        self.on_published: Callable[[list[Delivery]], None] = lambda deliveries: None
        self._cache: dict[str, tuple[Topic, float]] = {}
        self._subscriptions: dict[int, tuple[list[Subscription], float]] = {}

    # -- topics ---------------------------------------------------------------------------

    async def get_topic(self, name: str) -> Topic:
        """The topic called `name`; `TopicNotExist` when there is none.

        Served from memory for up to `TOPIC_CACHE_SECONDS` (publishes look topics up on
        every call); changes made through this service are seen at once.
        """
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[1] < TOPIC_CACHE_SECONDS:
            return cached[0]
        topic = await self.store.get_topic(name)
        if topic is None:
            self._cache.pop(name, None)
            raise ServiceError("TopicNotExist", f"The topic {name} does not exist.")
        self._cache[name] = (topic, now)
        return topic

    async def find_topic(self, name: str) -> Topic | None:
        """The topic called `name` (cached like `get_topic`), or None."""
        try:
            return await self.get_topic(name)
        except ServiceError:
            return None

    def forget(self, name: str) -> None:
        """Drop a topic from the caches (after it changed behind this service's back)."""
        cached = self._cache.pop(name, None)
        if cached is not None:
            self._subscriptions.pop(cached[0].id, None)

    async def create_topic(self, name: str, changes: dict[str, Any]) -> tuple[Topic, bool]:
        """Create a topic; 409-style `TopicAlreadyExist` when it exists with other attributes."""
        check_topic_name(name)
        attributes = build_topic_attributes(TopicAttributes(), changes)
        now_s = self.clock.now_ms() // 1000
        topic, created = await self.store.create_topic(name, attributes, now_s)
        self._cache.pop(name, None)
        if not created and topic.attributes != attributes:
            raise ServiceError(
                "TopicAlreadyExist", f"The topic {name} already exists with other attributes."
            )
        return topic, created

    async def set_topic_attributes(self, name: str, changes: dict[str, Any]) -> Topic:
        """Change some attributes of a topic."""
        topic = await self.get_topic(name)
        attributes = build_topic_attributes(topic.attributes, changes)
        updated = await self.store.update_topic(name, attributes, self.clock.now_ms() // 1000)
        self._cache.pop(name, None)
        if updated is None:
            raise ServiceError("TopicNotExist", f"The topic {name} does not exist.")
        return updated

    async def delete_topic(self, name: str) -> bool:
        """Delete a topic, its subscriptions and its pending deliveries (idempotent)."""
        cached = self._cache.pop(name, None)
        if cached is not None:
            self._subscriptions.pop(cached[0].id, None)
        return await self.store.delete_topic(name, self.clock.now_ms())

    async def list_topics(
        self, prefix: str = "", marker: str | None = None, limit: int = 1000
    ) -> tuple[list[Topic], str | None]:
        """A page of topics by name and the marker of the next page."""
        check_range("x-mns-ret-number", limit, limits.LIST_PAGE_RANGE)
        topics = await self.store.list_topics(prefix, decode_marker(marker), limit + 1)
        return page(topics, limit, lambda t: t.name)

    async def message_count(self, topic: Topic) -> int:
        """Messages of the topic not yet delivered to every subscription."""
        return await self.store.topic_message_count(topic.id)

    # -- subscriptions --------------------------------------------------------------------

    async def check_endpoint(self, spec: SubscriptionSpec) -> None:
        """Refuse an endpoint Subscribe would refuse (form, kind enabled, network rules)."""
        await self._check_endpoint(spec)

    async def _check_endpoint(self, spec: SubscriptionSpec) -> None:
        endpoint = parse_endpoint(spec.endpoint)
        if spec.notify_content_format not in FORMATS_BY_KIND[endpoint.kind]:
            raise invalid_argument(
                f"NotifyContentFormat {spec.notify_content_format} is not supported for"
                f" {endpoint.kind} endpoints; use one of"
                f" {', '.join(sorted(FORMATS_BY_KIND[endpoint.kind]))}."
            )
        if endpoint.kind == MAIL and not self.policy.mail_enabled:
            raise invalid_endpoint(spec.endpoint, "no SMTP relay is configured for mail")
        if endpoint.kind == SMS and not self.policy.sms_enabled:
            raise invalid_endpoint(spec.endpoint, "no SMS gateway is configured")
        if endpoint.kind == HTTP:
            await self._check_network(spec.endpoint)

    async def _check_network(self, url: str) -> None:
        if not (self.policy.allowed_networks or self.policy.denied_networks):
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or 80, type=socket.SOCK_STREAM
            )
        except OSError:
            raise invalid_endpoint(url, f"the host {host} does not resolve") from None
        for info in infos:
            address = str(info[4][0])
            if not address_allowed(
                address, self.policy.allowed_networks, self.policy.denied_networks
            ):
                raise invalid_endpoint(
                    url, f"pushes to {address} are not allowed by the administrator"
                )

    async def subscribe(
        self, topic_name: str, name: str, spec: SubscriptionSpec
    ) -> tuple[Subscription, bool]:
        """Subscribe an endpoint; (subscription, created). Different attributes: 409-style."""
        check_subscription_name(name)
        if spec.notify_strategy not in STRATEGIES:
            raise invalid_argument(
                f"NotifyStrategy {spec.notify_strategy!r} is unknown; use BACKOFF_RETRY or"
                " EXPONENTIAL_DECAY_RETRY."
            )
        check_tag("FilterTag", spec.filter_tag)
        await self._check_endpoint(spec)
        topic = await self.get_topic(topic_name)
        outcome = await self.store.subscribe(topic.id, name, spec, self.clock.now_ms() // 1000)
        self._subscriptions.pop(topic.id, None)
        if outcome is None:
            raise ServiceError("TopicNotExist", f"The topic {topic_name} does not exist.")
        subscription, created = outcome
        if not created and subscription.spec != spec:
            raise ServiceError(
                "SubscriptionAlreadyExist",
                f"The subscription {name} already exists with other attributes.",
            )
        return subscription, created

    async def get_subscription(self, topic_name: str, name: str) -> Subscription:
        """A subscription; `TopicNotExist` / `SubscriptionNotExist` when absent."""
        topic = await self.get_topic(topic_name)
        subscription = await self.store.get_subscription(topic.id, name)
        if subscription is None:
            raise ServiceError("SubscriptionNotExist", f"The subscription {name} does not exist.")
        return subscription

    async def set_notify_strategy(self, topic_name: str, name: str, strategy: str) -> Subscription:
        """Change how failed pushes are retried."""
        if strategy not in STRATEGIES:
            raise invalid_argument(f"NotifyStrategy {strategy!r} is unknown.")
        topic = await self.get_topic(topic_name)
        now_s = self.clock.now_ms() // 1000
        updated = await self.store.set_notify_strategy(topic.id, name, strategy, now_s)
        if updated is None:
            raise ServiceError("SubscriptionNotExist", f"The subscription {name} does not exist.")
        return updated

    async def unsubscribe(self, topic_name: str, name: str) -> bool:
        """Delete a subscription and drop its pending deliveries (idempotent)."""
        topic = await self.get_topic(topic_name)
        self._subscriptions.pop(topic.id, None)
        return await self.store.unsubscribe(topic.id, name, self.clock.now_ms())

    async def list_subscriptions(
        self, topic_name: str, prefix: str = "", marker: str | None = None, limit: int = 1000
    ) -> tuple[list[Subscription], str | None]:
        """A page of a topic's subscriptions and the marker of the next page."""
        check_range("x-mns-ret-number", limit, limits.LIST_PAGE_RANGE)
        topic = await self.get_topic(topic_name)
        found = await self.store.list_subscriptions(
            topic.id, prefix, decode_marker(marker), limit + 1
        )
        return page(found, limit, lambda s: s.name)

    # -- publishing -----------------------------------------------------------------------

    async def publish(self, topic_name: str, request: PublishRequest) -> NewTopicMessage:
        """Publish durably; delivery to subscriptions follows asynchronously."""
        topic = await self.get_topic(topic_name)
        if not request.body:
            raise invalid_argument("The MessageBody must not be empty.")
        size = len(request.body.encode("utf-8"))
        if size > topic.attributes.maximum_message_size:
            raise invalid_argument(
                f"The message body is {size} bytes; the topic {topic_name} accepts at most"
                f" {topic.attributes.maximum_message_size} (MaximumMessageSize)."
            )
        check_tag("MessageTag", request.tag)
        check_attributes(request.attributes)
        check_properties(request.properties)
        now_ms = self.clock.now_ms()
        message = NewTopicMessage(
            message_id=message_id(),
            body=request.body,
            body_md5=body_md5(request.body),
            publish_ms=now_ms,
            expire_ms=now_ms + TOPIC_RETENTION_SECONDS * 1000,
            tag=request.tag,
            attributes=request.attributes,
            group_id=request.group_id,
            properties=request.properties,
        )
        inline = await self._queue_handoffs(topic, message)
        published = await self.store.publish(topic.id, message, now_ms, inline)
        if published is None:
            self._cache.pop(topic_name, None)
            raise ServiceError("TopicNotExist", f"The topic {topic_name} does not exist.")
        if self.queues is not None:
            for queue_id in published.filled_queues:
                self.queues.notifier.notify(queue_id, 1)
        if published.deliveries:
            self.on_published(published.deliveries)
        return message

    async def subscriptions_of(self, topic: Topic) -> list[Subscription]:
        """A topic's subscriptions, cached like the topic itself."""
        return await self._subscriptions_of(topic)

    async def _subscriptions_of(self, topic: Topic) -> list[Subscription]:
        cached = self._subscriptions.get(topic.id)
        now = time.monotonic()
        if cached is not None and now - cached[1] < TOPIC_CACHE_SECONDS:
            return cached[0]
        found = await self.store.list_subscriptions(topic.id, "", None, MAX_SUBSCRIPTIONS)
        self._subscriptions[topic.id] = (found, now)
        return found

    async def _queue_handoffs(
        self, topic: Topic, message: NewTopicMessage
    ) -> dict[int, tuple[int, NewMessage]]:
        """Notifications for the queue endpoints this process knows of, rendered ahead so
        the publish transaction can enqueue them itself (one commit instead of two).
        Subscriptions it does not know yet still get their delivery through the engine."""
        if self.queues is None:
            return {}
        handoffs: dict[int, tuple[int, NewMessage]] = {}
        for subscription in await self._subscriptions_of(topic):
            tag = subscription.spec.filter_tag
            if tag is not None and tag != message.tag:
                continue
            endpoint = parse_endpoint(subscription.spec.endpoint)
            if endpoint.kind != QUEUE:
                continue
            queue = await self.queues.find(endpoint.target)
            if queue is None:
                continue
            delivery = Delivery(0, 0, topic.name, subscription, message)
            body, _ = render_delivery(delivery, self.account_id)
            queued = self.queues.notification_message(
                queue, body.decode("utf-8"), message.publish_ms
            )
            handoffs[subscription.id] = (queue.id, queued)
        return handoffs
