"""Event-notification rules: create, read, list and delete, with their topics.

A rule publishes to one topic. With queue or HTTP endpoints the rule gets its own topic
(named as the cloud names it) and one SIMPLIFIED subscription per endpoint, so a queue
receives the bare event body; with a topic endpoint it publishes to that topic. Rules
take effect as soon as they are committed (the cloud takes about ten minutes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from tidings.clock import Clock
from tidings.errors import ServiceError
from tidings.models import SubscriptionSpec
from tidings.services.event_rules import (
    EventRule,
    auto_subscription_name,
    auto_topic_name,
    canonical_product,
    check_can_add,
    event_rule_not_exist,
    rule_from_dict,
    rule_from_request,
    rule_to_dict,
)
from tidings.services.queues import QueueService
from tidings.services.topics import TopicService
from tidings.store.sqlite_rules import SqliteRuleStore, StoredRule, TopicPlan

# Rules are read on every object operation; a change made through this process is seen
# at once, one made by another process (the CLI) within this time.
CACHE_SECONDS = 1.0
# Rule subscriptions retry for about a day: an event must not be lost to a short outage.
RULE_NOTIFY_STRATEGY = "EXPONENTIAL_DECAY_RETRY"


# Where a rule's definition keeps the idempotency token of the request that created it.
_CLIENT_TOKEN = "ClientToken"


class _AlreadyCreated(Exception):
    """A create repeated with its ClientToken: `rule` is what the first one created."""

    def __init__(self, rule: StoredRule) -> None:
        super().__init__(rule.name)
        self.rule = rule


def _same_request(rule: EventRule, earlier: EventRule) -> bool:
    return (rule.product, rule.name, rule.event_types, rule.match_rules, rule.endpoints) == (
        earlier.product,
        earlier.name,
        earlier.event_types,
        earlier.match_rules,
        earlier.endpoints,
    )


def _check_token(token: str, rule: EventRule, existing: list[StoredRule]) -> None:
    """Raise `_AlreadyCreated` for a repeated request, a mismatch for a reused token."""
    for stored in existing:
        if stored.definition.get(_CLIENT_TOKEN) != token:
            continue
        if _same_request(rule, _rule_of(stored)):
            raise _AlreadyCreated(stored)
        raise ServiceError(
            "IdempotentParameterMismatch",
            f"The ClientToken {token!r} was used by the request that created the rule"
            f" {stored.name!r} of {stored.product!r}, with other parameters: use a new"
            " token for a different request.",
        )


def _rule_of(stored: StoredRule) -> EventRule:
    return replace(
        rule_from_dict(stored.definition),
        topic_name=stored.topic_name,
        created_ms=stored.created_ms,
    )


class RuleService:
    """The event rules of every product, backed by the store, cached for matching."""

    def __init__(
        self,
        store: SqliteRuleStore,
        topics: TopicService,
        queues: QueueService,
        clock: Clock,
        region: str,
        account_id: str,
    ) -> None:
        self.store = store
        self.topics = topics
        self.queues = queues
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self._cache: dict[str, tuple[float, list[EventRule]]] = {}

    async def rules(self, product: str) -> list[EventRule]:
        """The product's rules in creation order (cached briefly)."""
        cached = self._cache.get(product)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        rules = [_rule_of(stored) for stored in await self.store.list_rules(product)]
        self._cache[product] = (time.monotonic(), rules)
        return rules

    async def create(self, params: Mapping[str, str]) -> EventRule:
        """CreateEventRule: validate, check endpoints exist, then commit rule and topic.

        With a `ClientToken`, repeating a create that succeeded (a retry whose answer was
        lost) answers the rule it created; the same token with another request is
        refused with `IdempotentParameterMismatch`.
        """
        now_ms = self.clock.now_ms()
        rule = rule_from_request(params, created_ms=now_ms)
        token = params.get("ClientToken") or None
        plan = await self._topic_plan(rule, now_ms)
        rule = replace(rule, topic_name=plan.name)
        definition = rule_to_dict(rule)
        if token is not None:
            definition[_CLIENT_TOKEN] = token

        def check(existing: list[StoredRule]) -> None:
            if token is not None:
                _check_token(token, rule, existing)
            check_can_add(rule, [_rule_of(stored) for stored in existing])

        stored = StoredRule(rule.product, rule.name, definition, plan.name, plan.create, 0)
        try:
            await self.store.create_rule(stored, plan, check, now_ms)
        except _AlreadyCreated as done:
            return _rule_of(done.rule)
        self._cache.pop(rule.product, None)
        return rule

    async def _topic_plan(self, rule: EventRule, now_ms: int) -> TopicPlan:
        topics = [e.value for e in rule.endpoints if e.kind == "topic"]
        if topics:
            if await self.topics.find_topic(topics[0]) is None:
                raise ServiceError(
                    "EndpointInvalid", f"The topic endpoint {topics[0]} does not exist."
                )
            return TopicPlan(topics[0], create=False)
        digits = str(now_ms)
        subscriptions: list[tuple[str, SubscriptionSpec]] = []
        for index, endpoint in enumerate(rule.endpoints, start=1):
            if endpoint.kind == "queue":
                if await self.queues.find(endpoint.value) is None:
                    raise ServiceError(
                        "EndpointInvalid", f"The queue endpoint {endpoint.value} does not exist."
                    )
                target = f"acs:mns:{self.region}:{self.account_id}:queues/{endpoint.value}"
            else:
                target = endpoint.value
            spec = SubscriptionSpec(
                endpoint=target,
                notify_strategy=RULE_NOTIFY_STRATEGY,
                notify_content_format="SIMPLIFIED",
            )
            # The same checks as Subscribe (URL form, administrator's network rules): an
            # endpoint the delivery could never use must be refused now, not per upload.
            await self.topics.check_endpoint(spec)
            name = auto_subscription_name(rule.product, rule.name, index, digits)
            subscriptions.append((name, spec))
        name = auto_topic_name(rule.product, rule.name, digits)
        return TopicPlan(name, create=True, subscriptions=tuple(subscriptions))

    async def get(self, product: str, name: str) -> EventRule:
        """GetEventRule; EventRuleNotExist when there is none."""
        product = canonical_product(product)
        for rule in await self.list(product):
            if rule.name == name:
                return rule
        raise event_rule_not_exist(product, name)

    async def list(self, product: str | None = None) -> list[EventRule]:
        """Every rule (of one product), in creation order, read from the store."""
        product = canonical_product(product) if product else None
        return [_rule_of(stored) for stored in await self.store.list_rules(product)]

    async def delete(self, product: str, name: str) -> None:
        """DeleteEventRule (its automatic topic goes with it)."""
        product = canonical_product(product)
        rule = await self.get(product, name)
        if not await self.store.delete_rule(product, name, self.clock.now_ms()):
            raise event_rule_not_exist(product, name)
        self._cache.pop(product, None)
        self.topics.forget(rule.topic_name)
