"""Publishing to a topic from inside another change's transaction (the outbox).

An object change and the event it causes commit together: the object store runs the
change and then stores the event as a topic message with its deliveries, in one
transaction. A `TopicOutlet` is everything that needs, looked up ahead (topic,
subscriptions, target queues), so that building the publication inside the transaction
is pure rendering; `after_commit` then wakes long polls and hands deliveries to the
engine, exactly as a PublishMessage does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tidings.delivery.notification import render_delivery
from tidings.events.mns_notification import SIMPLIFIED
from tidings.ids import message_id
from tidings.models import (
    Delivery,
    NewMessage,
    NewTopicMessage,
    Publication,
    Published,
    Queue,
    Subscription,
    Topic,
)
from tidings.services.endpoints import QUEUE, parse_endpoint
from tidings.services.queue_rules import body_md5
from tidings.services.queues import QueueService
from tidings.services.topics import TOPIC_RETENTION_SECONDS, TopicService


@dataclass(frozen=True, slots=True)
class TopicOutlet:
    """A topic with its subscriptions and the queues its queue endpoints name."""

    topic: Topic
    subscriptions: list[Subscription]
    queues: dict[int, Queue] = field(default_factory=dict)

    def publication(
        self,
        body: str,
        now_ms: int,
        account_id: str,
        queues: QueueService,
        ordering_key: str | None = None,
    ) -> Publication:
        """The message and its rendered queue notifications (pure; safe in the writer).

        Messages with the same `ordering_key` reach each subscription in publish order.
        """
        message = NewTopicMessage(
            message_id=message_id(),
            body=body,
            body_md5=body_md5(body),
            publish_ms=now_ms,
            expire_ms=now_ms + TOPIC_RETENTION_SECONDS * 1000,
            ordering_key=ordering_key,
        )
        inline: dict[int, tuple[int, NewMessage]] = {}
        for subscription in self.subscriptions:
            queue = self.queues.get(subscription.id)
            if queue is None or subscription.spec.filter_tag is not None:
                continue
            if subscription.spec.notify_content_format == SIMPLIFIED:
                # The published body itself (every rule's own subscriptions): no render.
                text, md5 = body, message.body_md5
            else:
                delivery = Delivery(0, 0, self.topic.name, subscription, message)
                text, md5 = render_delivery(delivery, account_id)[0].decode("utf-8"), None
            inline[subscription.id] = (
                queue.id,
                queues.notification_message(queue, text, now_ms, md5),
            )
        return Publication(self.topic.id, message, inline)


class TopicOutlets:
    """Looks up outlets (through the topic service's caches) and finishes publications."""

    def __init__(self, topics: TopicService, queues: QueueService) -> None:
        self.topics = topics
        self.queues = queues

    async def outlet(self, topic_name: str) -> TopicOutlet | None:
        """The outlet of a topic, or None when the topic does not exist."""
        topic = await self.topics.find_topic(topic_name)
        if topic is None:
            return None
        subscriptions = await self.topics.subscriptions_of(topic)
        queues: dict[int, Queue] = {}
        for subscription in subscriptions:
            endpoint = parse_endpoint(subscription.spec.endpoint)
            if endpoint.kind == QUEUE:
                queue = await self.queues.find(endpoint.target)
                if queue is not None:
                    queues[subscription.id] = queue
        return TopicOutlet(topic, subscriptions, queues)

    def after_commit(self, published: list[Published]) -> None:
        """Wake long polls on the queues that got messages; start the other deliveries."""
        deliveries: list[Delivery] = []
        for result in published:
            for queue_id in result.filled_queues:
                self.queues.notifier.notify(queue_id, 1)
            deliveries.extend(result.deliveries)
        if deliveries:
            self.topics.on_published(deliveries)


PublicationBuilder = Callable[[object], list[Publication]]
