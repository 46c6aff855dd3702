"""One function per topic and subscription operation: parse, call a service, render."""

from __future__ import annotations

from tidings.api.http import Request, Response
from tidings.api.mns import topic_codec
from tidings.api.mns.handlers import Context, header_int, ok
from tidings.models import Topic
from tidings.services.topics import TOPIC_RETENTION_SECONDS


async def create_topic(ctx: Context, request: Request, name: str) -> Response:
    """CreateTopic: 201 created, 204 identical topic exists, 409 different one exists."""
    _, created = await ctx.topics.create_topic(name, topic_codec.parse_topic_changes(request.body))
    return ok(201 if created else 204, location=f"{ctx.base}/topics/{name}")


async def set_topic_attributes(ctx: Context, request: Request, name: str) -> Response:
    """SetTopicAttributes."""
    await ctx.topics.set_topic_attributes(name, topic_codec.parse_topic_changes(request.body))
    return ok(204)


async def get_topic_attributes(ctx: Context, request: Request, name: str) -> Response:
    """GetTopicAttributes."""
    topic = await ctx.topics.get_topic(name)
    count = await ctx.topics.message_count(topic)
    return ok(200, topic_codec.render_topic(topic, count, TOPIC_RETENTION_SECONDS))


async def delete_topic(ctx: Context, request: Request, name: str) -> Response:
    """DeleteTopic: idempotent."""
    await ctx.topics.delete_topic(name)
    return ok(204)


async def list_topics(ctx: Context, request: Request) -> Response:
    """ListTopic with prefix, marker, page size and optional attributes."""
    topics, next_marker = await ctx.topics.list_topics(
        prefix=request.headers.get("x-mns-prefix", ""),
        marker=request.headers.get("x-mns-marker") or None,
        limit=header_int(request, "x-mns-ret-number", 1000),
    )
    with_meta = request.headers.get("x-mns-with-meta", "").lower() == "true"
    entries: list[tuple[Topic, int | None]] = []
    for topic in topics:
        entries.append((topic, await ctx.topics.message_count(topic) if with_meta else None))
    body = topic_codec.render_topic_list(ctx.base, entries, next_marker, TOPIC_RETENTION_SECONDS)
    return ok(200, body)


async def publish(ctx: Context, request: Request, name: str) -> Response:
    """PublishMessage: durable when answered; delivery follows."""
    message = await ctx.topics.publish(name, topic_codec.parse_publish(request.body))
    body = topic_codec.render_published(message.message_id, message.body_md5, message.group_id)
    return ok(201, body)


async def subscribe(ctx: Context, request: Request, topic: str, name: str) -> Response:
    """Subscribe: 201 created, 204 identical subscription exists, 409 different one."""
    spec = topic_codec.parse_subscription(request.body)
    _, created = await ctx.topics.subscribe(topic, name, spec)
    return ok(201 if created else 204, location=f"{ctx.base}/topics/{topic}/subscriptions/{name}")


async def set_subscription_attributes(
    ctx: Context, request: Request, topic: str, name: str
) -> Response:
    """SetSubscriptionAttributes: only NotifyStrategy can change."""
    strategy = topic_codec.parse_notify_strategy(request.body)
    if strategy is None:
        await ctx.topics.get_subscription(topic, name)
    else:
        await ctx.topics.set_notify_strategy(topic, name, strategy)
    return ok(204)


async def get_subscription_attributes(
    ctx: Context, request: Request, topic: str, name: str
) -> Response:
    """GetSubscriptionAttributes."""
    subscription = await ctx.topics.get_subscription(topic, name)
    return ok(200, topic_codec.render_subscription(subscription, ctx.topics.account_id))


async def unsubscribe(ctx: Context, request: Request, topic: str, name: str) -> Response:
    """Unsubscribe: idempotent for a missing subscription of an existing topic."""
    await ctx.topics.unsubscribe(topic, name)
    return ok(204)


async def list_subscriptions(ctx: Context, request: Request, topic: str) -> Response:
    """ListSubscriptionByTopic."""
    subscriptions, next_marker = await ctx.topics.list_subscriptions(
        topic,
        prefix=request.headers.get("x-mns-prefix", ""),
        marker=request.headers.get("x-mns-marker") or None,
        limit=header_int(request, "x-mns-ret-number", 1000),
    )
    return ok(200, topic_codec.render_subscription_list(ctx.base, subscriptions, next_marker))
