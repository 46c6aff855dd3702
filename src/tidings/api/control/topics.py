"""Topic actions of `mns-open` 2022-01-19: parse, call `TopicService`, render `Data`.

CreateTopic's scalars arrive in the form body and the rest in the query; the control
app merges both before a handler sees them.
"""

from __future__ import annotations

from typing import Any

from tidings.api.control.context import OK_DATA, Call, Data, Handler
from tidings.api.control.params import Params, refuse_unsupported
from tidings.models import Topic
from tidings.services.topics import TOPIC_RETENTION_SECONDS, TopicService, check_topic_name

# The store's page size when walking every topic to report Total.
_LIST_BATCH = 1000


def topic_changes(params: Params) -> dict[str, Any]:
    """The TopicAttributes fields a CreateTopic / SetTopicAttributes call sets."""
    changes: dict[str, Any] = {}
    size = params.integer("MaxMessageSize")
    if size is not None:
        changes["maximum_message_size"] = size
    logging = params.boolean("EnableLogging")
    if logging is not None:
        changes["logging_enabled"] = logging
    return changes


def render_topic(topic: Topic, message_count: int, base: str) -> dict[str, Any]:
    """The attributes of a topic as GetTopicAttributes / ListTopic report them."""
    url = f"{base}/topics/{topic.name}"
    return {
        "TopicName": topic.name,
        "TopicType": "normal",
        "CreateTime": topic.created_s,
        "LastModifyTime": topic.modified_s,
        "MaxMessageSize": topic.attributes.maximum_message_size,
        "MessageCount": message_count,
        "MessageRetentionPeriod": TOPIC_RETENTION_SECONDS,
        "LoggingEnabled": topic.attributes.logging_enabled,
        # One listener serves both networks: the inner URL is the same endpoint.
        "TopicUrl": url,
        "TopicInnerUrl": url,
        "EnableSSE": False,
        "EncryptionEnabled": False,
        "Tags": [],
    }


def topic_name(params: Params) -> str:
    """The mandatory, valid TopicName parameter."""
    name = params.require("TopicName")
    check_topic_name(name)
    return name


async def create_topic(call: Call) -> Data:
    """CreateTopic: succeeds again for an identical topic; `TopicAlreadyExist` otherwise."""
    params = call.params
    name = topic_name(params)
    refuse_unsupported(params, "TopicType")
    await call.services.topics.create_topic(name, topic_changes(params))
    return OK_DATA


async def set_topic_attributes(call: Call) -> Data:
    """SetTopicAttributes: attributes not given keep their values."""
    params = call.params
    name = topic_name(params)
    refuse_unsupported(params, None)
    await call.services.topics.set_topic_attributes(name, topic_changes(params))
    return OK_DATA


async def get_topic_attributes(call: Call) -> Data:
    """GetTopicAttributes, with the count of messages not yet delivered everywhere."""
    params, topics = call.params, call.services.topics
    name = topic_name(params)
    params.refuse_tags()
    topic = await topics.get_topic(name)
    return render_topic(topic, await topics.message_count(topic), call.base)


async def all_topics(topics: TopicService, prefix: str) -> list[Topic]:
    """Every topic whose name starts with `prefix`, by name."""
    found: list[Topic] = []
    marker: str | None = None
    while True:
        batch, marker = await topics.list_topics(prefix, marker, _LIST_BATCH)
        found.extend(batch)
        if marker is None:
            return found


async def list_topic(call: Call) -> Data:
    """ListTopic: `TopicName` filters by prefix; paged by PageNum / PageSize."""
    params, topics = call.params, call.services.topics
    params.refuse_tags()
    page = params.page()
    kind = params.get("TopicType")
    # Every Tidings topic is a normal one: a fifo filter matches none.
    matching = [] if kind == "fifo" else await all_topics(topics, params.get("TopicName") or "")
    start, end = page.slice(len(matching))
    items = [render_topic(t, await topics.message_count(t), call.base) for t in matching[start:end]]
    return page.envelope(len(matching), items)


async def delete_topic(call: Call) -> Data:
    """DeleteTopic: with its subscriptions; a missing topic is not an error."""
    await call.services.topics.delete_topic(topic_name(call.params))
    return OK_DATA


TOPIC_ACTIONS: dict[str, Handler] = {
    "CreateTopic": create_topic,
    "SetTopicAttributes": set_topic_attributes,
    "GetTopicAttributes": get_topic_attributes,
    "ListTopic": list_topic,
    "DeleteTopic": delete_topic,
}
