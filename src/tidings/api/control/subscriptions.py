"""Subscription actions of `mns-open` 2022-01-19 over `TopicService`.

The control plane names endpoints by `PushType` + `Endpoint`; Tidings stores the data
plane's endpoint strings. `endpoint_for` translates, so a subscription made here reads
back identically through `aliyun-mns-sdk` and the reverse.
"""

from __future__ import annotations

from typing import Any

from tidings.api.control.context import OK_DATA, Call, Data, Handler
from tidings.api.control.params import Params, enabled, unsupported
from tidings.api.control.topics import topic_name
from tidings.errors import invalid_argument
from tidings.models import Subscription, SubscriptionSpec
from tidings.services.endpoints import HTTP, MAIL, QUEUE, SMS, parse_endpoint
from tidings.services.topics import TopicService, check_subscription_name
from tidings.services.validation import check_queue_name

# PushType -> the endpoint kind it stands for. `email` and `alisms` are the legacy names.
PUSH_TYPES = {"http": HTTP, "queue": QUEUE, "dm": MAIL, "email": MAIL, "dysms": SMS, "alisms": SMS}
_UNSUPPORTED_PUSH_TYPES = ("fc", "eventbus", "mpush", "kafka")
_LIST_BATCH = 1000


def _smq_target(endpoint: str, product: str) -> str | None:
    """The last field of `smq-ep:<product>:<uid>:<target>`, or None for other forms."""
    fields = endpoint.split(":", 3)
    if len(fields) == 4 and fields[0] == "smq-ep" and fields[1] == product:
        return fields[3]
    return None


def endpoint_for(push_type: str, endpoint: str, region: str, account_id: str) -> str:
    """The data-plane endpoint string for a control-plane PushType and Endpoint."""
    kind = PUSH_TYPES.get(push_type)
    if kind is None:
        if push_type in _UNSUPPORTED_PUSH_TYPES:
            raise unsupported(
                f"PushType {push_type!r}", "use http, queue, dm (or email) or dysms (or alisms)"
            )
        raise invalid_argument(
            f"PushType {push_type!r} is unknown; use http, queue, dm, email, dysms or alisms."
        )
    if kind == QUEUE and ":" not in endpoint:
        # A bare queue name is accepted as a convenience and stored in the ARN form.
        check_queue_name(endpoint)
        endpoint = f"acs:mns:{region}:{account_id}:queues/{endpoint}"
    elif kind == MAIL and (address := _smq_target(endpoint, "dm")) is not None:
        if address == "__dynamic":
            raise unsupported(
                "A dynamic DirectMail endpoint (smq-ep:dm:<uid>:__dynamic)",
                "name the address: smq-ep:dm:<uid>:<address> or mail:directmail:<address>",
            )
        endpoint = f"mail:directmail:{address}"
    elif kind == SMS and (phone := _smq_target(endpoint, "dysms")) is not None:
        endpoint = f"sms:directsms:{phone}"
    parsed = parse_endpoint(endpoint)
    if parsed.kind != kind:
        raise invalid_argument(
            f"PushType {push_type} needs a {kind} endpoint, but {endpoint!r} is a {parsed.kind}"
            " endpoint; change PushType or Endpoint."
        )
    return endpoint


def refuse_subscription_extras(params: Params) -> None:
    """Subscription features Tidings has no place for, refused rather than dropped."""
    if enabled(params.json_object("DlqPolicy"), "DlqPolicy"):
        raise unsupported(
            "A subscription DlqPolicy",
            'omit it or send {"Enabled":false}; failed pushes'
            " stay in the delivery ledger (tidings deliveries)",
        )
    if enabled(params.json_object("TenantRateLimitPolicy"), "TenantRateLimitPolicy"):
        raise unsupported("TenantRateLimitPolicy", 'omit it or send {"Enabled":false}')
    if params.get("StsRoleArn"):
        raise unsupported("StsRoleArn", "omit it (no role is assumed to push)")
    for name, instead in (
        ("DmAttributes", "give AccountName and Subject per message (DirectMail attribute)"),
        ("DysmsAttributes", "give TemplateCode and SignName per message (DirectSMS attribute)"),
        ("KafkaAttributes", "omit it"),
    ):
        if params.json_object(name):
            raise unsupported(name, instead)


def render_subscription(subscription: Subscription, account_id: str) -> dict[str, Any]:
    """A subscription as GetSubscriptionAttributes / ListSubscriptionByTopic report it."""
    spec = subscription.spec
    return {
        "SubscriptionName": subscription.name,
        "TopicName": subscription.topic_name,
        "TopicOwner": account_id,
        "Endpoint": spec.endpoint,
        "NotifyStrategy": spec.notify_strategy,
        "NotifyContentFormat": spec.notify_content_format,
        "FilterTag": spec.filter_tag or "",
        "CreateTime": subscription.created_s,
        "LastModifyTime": subscription.modified_s,
        "DlqPolicy": {"Enabled": False},
        "TenantRateLimitPolicy": {"Enabled": False},
    }


def subscription_name(params: Params) -> str:
    """The mandatory, valid SubscriptionName parameter."""
    name = params.require("SubscriptionName")
    check_subscription_name(name)
    return name


async def subscribe(call: Call) -> Data:
    """Subscribe: succeeds again for an identical subscription; `Data` is its name."""
    params, services = call.params, call.services
    topic = topic_name(params)
    name = subscription_name(params)
    push_type = params.require("PushType")
    endpoint = endpoint_for(
        push_type, params.require("Endpoint"), services.region, services.account_id
    )
    refuse_subscription_extras(params)
    # Mail endpoints take only SIMPLIFIED; defaulting to it spares a needless refusal.
    default_format = "SIMPLIFIED" if PUSH_TYPES[push_type] == MAIL else "XML"
    spec = SubscriptionSpec(
        endpoint=endpoint,
        filter_tag=params.get("MessageTag") or None,
        notify_strategy=params.get("NotifyStrategy") or "BACKOFF_RETRY",
        notify_content_format=params.get("NotifyContentFormat") or default_format,
    )
    await services.topics.subscribe(topic, name, spec)
    return name


async def set_subscription_attributes(call: Call) -> Data:
    """SetSubscriptionAttributes: only NotifyStrategy can change."""
    params, topics = call.params, call.services.topics
    topic = topic_name(params)
    name = subscription_name(params)
    refuse_subscription_extras(params)
    strategy = params.get("NotifyStrategy")
    if strategy:
        await topics.set_notify_strategy(topic, name, strategy)
    else:
        await topics.get_subscription(topic, name)
    return OK_DATA


async def get_subscription_attributes(call: Call) -> Data:
    """GetSubscriptionAttributes."""
    params = call.params
    subscription = await call.services.topics.get_subscription(
        topic_name(params), subscription_name(params)
    )
    return render_subscription(subscription, call.services.account_id)


async def all_subscriptions(topics: TopicService, topic: str, prefix: str) -> list[Subscription]:
    """Every subscription of `topic` whose name starts with `prefix`, by name."""
    found: list[Subscription] = []
    marker: str | None = None
    while True:
        batch, marker = await topics.list_subscriptions(topic, prefix, marker, _LIST_BATCH)
        found.extend(batch)
        if marker is None:
            return found


def _endpoint_matches(subscription: Subscription, kind: str | None, value: str | None) -> bool:
    endpoint = parse_endpoint(subscription.spec.endpoint)
    if kind is not None and endpoint.kind != kind:
        return False
    return value is None or value in (subscription.spec.endpoint, endpoint.target)


async def list_subscription_by_topic(call: Call) -> Data:
    """ListSubscriptionByTopic: filters by name prefix, EndpointType and EndpointValue."""
    params = call.params
    topic = topic_name(params)
    page = params.page()
    push_type = params.get("EndpointType") or None
    kind = None
    if push_type is not None:
        kind = PUSH_TYPES.get(push_type)
        if kind is None:
            raise invalid_argument(
                f"EndpointType {push_type!r} is unknown; use http, queue, dm, email, dysms"
                " or alisms."
            )
    value = params.get("EndpointValue") or None
    found = await all_subscriptions(
        call.services.topics, topic, params.get("SubscriptionName") or ""
    )
    matching = [s for s in found if _endpoint_matches(s, kind, value)]
    start, end = page.slice(len(matching))
    items = [render_subscription(s, call.services.account_id) for s in matching[start:end]]
    return page.envelope(len(matching), items)


async def unsubscribe(call: Call) -> Data:
    """Unsubscribe: a missing subscription of an existing topic is not an error."""
    params = call.params
    await call.services.topics.unsubscribe(topic_name(params), subscription_name(params))
    return OK_DATA


SUBSCRIPTION_ACTIONS: dict[str, Handler] = {
    "Subscribe": subscribe,
    "SetSubscriptionAttributes": set_subscription_attributes,
    "GetSubscriptionAttributes": get_subscription_attributes,
    "ListSubscriptionByTopic": list_subscription_by_topic,
    "Unsubscribe": unsubscribe,
}
