"""The producer emulator: DirectMail, VOD and Vision AI events, as those services send them.

`EmitService.deliver` renders an event in its producer's documented format (spec
event-sources §4-§6), publishes it through every event rule of that product that
selects it (§1.3), and, for VOD, sends it to the application's own callback (§4.2/4.3).
Users point their consumers at this server and watch them handle realistic events.

Which rules an event reaches. Rules select by event type and by resource, but the spec
defines a resource string only for OSS (`bucket/key`): DirectMail and Vision AI rules are
made of event types and endpoints alone (the console asks for nothing else; seed 001),
and VOD has no rules in the cloud at all (it has SetMessageCallback). So for these
products a rule's MatchRules never narrow it: every rule whose event types cover the
event receives it, and the product's default rule receives what no other rule took.

Message bodies are the producer's own format, never Base64 (§0): the `k=v&...` text for
DirectMail and compact JSON for VOD and Vision AI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from tidings.clock import Clock
from tidings.errors import ServiceError
from tidings.events import directmail, vision, vod
from tidings.services.event_rules import PRODUCTS as RULE_PRODUCTS
from tidings.services.event_rules import (
    EventRule,
    MatchAtom,
    MatchRules,
    canonical_product,
    select_rules,
)
from tidings.services.rules import RuleService
from tidings.services.topics import PublishRequest, TopicService
from tidings.services.vod_callbacks import CallbackResult, VodCallbacks

DM, VOD, VIAPI = "dm", "vod", "viapi"
EMITTED = (DM, VOD, VIAPI)
# The products whose events carry no resource string (see the module docstring).
RESOURCELESS = frozenset(EMITTED)
# One description matching every string: empty prefix and suffix (§1.1).
_EVERYTHING: MatchRules = ((MatchAtom(None),),)


def product_of(name: str) -> str:
    """The registry key (`dm`, `vod`, `viapi`) of a product name or alias."""
    product = canonical_product(name)
    if product not in EMITTED:
        raise ServiceError(
            "InvalidProductName",
            f"{product!r} events come from real operations, not from emit: emit dm"
            " (DirectMail), vod or viapi (Vision AI) events.",
        )
    return product


def event_types(product: str) -> tuple[str, ...]:
    """The event types rules of a product select (Vision AI: any operation name works)."""
    return tuple(RULE_PRODUCTS[product_of(product)].event_types)


def render_body(
    product: str,
    event_type: str,
    fields: Mapping[str, object],
    *,
    now_ms: int,
    region: str,
    account_id: str,
) -> str:
    """The message body of one event in its producer's format (pure)."""
    product = product_of(product)
    if product == DM:
        event = directmail.delivery_event(event_type, fields, now_ms=now_ms, region=region)
        return directmail.message_body(event)
    if product == VOD:
        document = vod.document(
            event_type, fields, now_ms=now_ms, region=region, account_id=account_id
        )
        return vod.message_body(document)
    return vision.message_body(vision.job_event(event_type, fields))


@dataclass(frozen=True, slots=True)
class RulePublication:
    """One rule's copy of an event: the topic message, or why it was lost."""

    rule_name: str
    topic_name: str
    message_id: str | None
    error: str | None = None

    def to_api(self) -> dict[str, object]:
        """The console API's JSON object."""
        return {
            "RuleName": self.rule_name,
            "TopicName": self.topic_name,
            "MessageId": self.message_id,
            "Error": self.error,
        }


@dataclass(frozen=True, slots=True)
class EmitReport:
    """Everything one emitted event became."""

    product: str
    event_type: str
    body: str
    publications: tuple[RulePublication, ...]
    callback: CallbackResult | None = None

    @property
    def message_ids(self) -> list[str]:
        """The ids of every message written: rule topics first, then the VOD queue."""
        ids = [p.message_id for p in self.publications if p.message_id is not None]
        if self.callback is not None and self.callback.message_id is not None:
            ids.append(self.callback.message_id)
        return ids

    @property
    def failed(self) -> bool:
        """Whether a rule's topic or the callback did not take the event."""
        lost = any(p.error is not None for p in self.publications)
        callback = self.callback
        return lost or (callback is not None and not callback.ok and not callback.skipped)

    def to_api(self) -> dict[str, object]:
        """The console API's answer to an emit."""
        return {
            "Product": self.product,
            "EventType": self.event_type,
            "MessageBody": self.body,
            "MessageIds": self.message_ids,
            "Published": [p.to_api() for p in self.publications],
            "Callback": None if self.callback is None else self.callback.to_api(),
        }


def matching_rules(rules: list[EventRule], product: str, event_type: str) -> list[EventRule]:
    """The rules of `product` an event of `event_type` goes to (§1.3, default rule last).

    The resource-less products match every rule's MatchRules (see the module docstring).
    """
    if product in RESOURCELESS:
        rules = [replace(rule, match_rules=_EVERYTHING) for rule in rules]
    return select_rules(rules, product, event_type, "")


class EmitService:
    """Emits producer events through event rules and VOD callbacks."""

    def __init__(
        self,
        rules: RuleService,
        topics: TopicService,
        callbacks: VodCallbacks,
        clock: Clock,
        region: str,
        account_id: str,
    ) -> None:
        self.rules = rules
        self.topics = topics
        self.callbacks = callbacks
        self.clock = clock
        self.region = region
        self.account_id = account_id

    def render(self, product: str, event_type: str, fields: Mapping[str, object]) -> str:
        """The body the event would have, now (nothing is sent)."""
        return render_body(
            product,
            event_type,
            fields,
            now_ms=self.clock.now_ms(),
            region=self.region,
            account_id=self.account_id,
        )

    async def deliver(
        self,
        product: str,
        event_type: str,
        fields: Mapping[str, object],
        app_id: str | None = None,
    ) -> EmitReport:
        """Render the event, publish it through the matching rules, run the VOD callback.

        `app_id` picks the VOD application whose callback receives the event (default:
        the event's `AppId` field, else `app-1000000`). A rule whose topic is gone loses
        the event, as in the cloud, and the report says so.
        """
        product = product_of(product)
        body = self.render(product, event_type, fields)
        publications = []
        for rule in matching_rules(await self.rules.rules(product), product, event_type):
            try:
                message = await self.topics.publish(rule.topic_name, PublishRequest(body))
            except ServiceError as error:
                publication = RulePublication(
                    rule.name, rule.topic_name, None, f"{error.code}: {error.message}"
                )
            else:
                publication = RulePublication(rule.name, rule.topic_name, message.message_id)
            publications.append(publication)
        callback = None
        if product == VOD:
            given_app = fields.get("AppId")
            app = app_id or (given_app if isinstance(given_app, str) else "") or vod.DEFAULT_APP_ID
            callback = await self.callbacks.deliver(app, event_type, body)
        return EmitReport(product, event_type, body, tuple(publications), callback)

    async def emit(self, product: str, event_type: str, fields: Mapping[str, object]) -> list[str]:
        """`deliver`, answering the ids of the messages written (topics, VOD queue)."""
        return (await self.deliver(product, event_type, fields)).message_ids
