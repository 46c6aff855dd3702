"""Event-rule actions of `mns-open` 2022-01-19: CreateEventRule, GetEventRule,
ListEventRules and DeleteEventRule (event-sources.md 1.2)."""

from __future__ import annotations

from typing import Any

from tidings.api.control.context import Call, Data, Handler
from tidings.api.control.params import missing
from tidings.errors import ServiceError
from tidings.services.event_rules import EventRule, RuleEndpoint
from tidings.services.rules import RuleService

# GetEventRule's `Endpoint` is one of queue/topic; list results cap Subscriptions at 20.
_MAX_LISTED_SUBSCRIPTIONS = 20


def _rules(call: Call) -> RuleService:
    if call.services.rules is None:
        raise ServiceError("UnsupportedOperation", "Event rules are not served here.")
    return call.services.rules


def _endpoint(endpoint: RuleEndpoint) -> dict[str, str]:
    return {"EndpointType": endpoint.kind, "EndpointValue": endpoint.value}


def render_rule(rule: EventRule, subscriptions_cap: int | None = None) -> dict[str, Any]:
    """A rule as GetEventRule / ListEventRules report it."""
    endpoints = [_endpoint(e) for e in rule.endpoints]
    primary = next((e for e in endpoints if e["EndpointType"] in ("queue", "topic")), None)
    subscriptions = endpoints if subscriptions_cap is None else endpoints[:subscriptions_cap]
    data: dict[str, Any] = {
        "RuleName": rule.name,
        "ProductName": rule.product,
        "EventTypes": list(rule.event_types),
        "MatchRules": [[atom.to_api() for atom in conj] for conj in rule.match_rules],
        "Subscriptions": subscriptions,
        "TopicName": rule.topic_name,
        "CreateTime": rule.created_ms,
    }
    if primary is not None:
        data["Endpoint"] = primary
    return data


# CreateEventRule's mandatory parameters. Absent ones are Missing<Name>; present but
# empty ones are refused by the rule's own validation, which says what is wrong with them
# (and the endpoint's absence is an EndpointInvalid).
_CREATE_REQUIRED = ("ProductName", "RuleName", "EventTypes", "MatchRules")


async def create_event_rule(call: Call) -> Data:
    """CreateEventRule: Data is the rule name."""
    for name in _CREATE_REQUIRED:
        if name not in call.params.values:
            raise missing(name)
    rule = await _rules(call).create(call.params.values)
    return rule.name


async def get_event_rule(call: Call) -> Data:
    """GetEventRule."""
    params = call.params
    rule = await _rules(call).get(params.require("ProductName"), params.require("RuleName"))
    return render_rule(rule)


async def list_event_rules(call: Call) -> Data:
    """ListEventRules, filtered by product, rule name, topic, subscription or resource."""
    params = call.params
    rules = await _rules(call).list(params.get("ProductName") or None)
    name = params.get("RuleName")
    topic = params.get("TopicName")
    resource = params.get("ResourceName")
    subscription = params.json_object("Subscription")
    selected = []
    for rule in rules:
        if name and rule.name != name:
            continue
        if topic and rule.topic_name != topic:
            continue
        if resource and not any(
            resource in text for conj in rule.match_rules for atom in conj for text in atom.texts()
        ):
            continue
        if subscription and subscription not in [_endpoint(e) for e in rule.endpoints]:
            continue
        selected.append(rule)
    page = params.page()
    start, end = page.slice(len(selected))
    items = [render_rule(rule, _MAX_LISTED_SUBSCRIPTIONS) for rule in selected[start:end]]
    return page.envelope(len(selected), items)


async def delete_event_rule(call: Call) -> Data:
    """DeleteEventRule: no Data."""
    params = call.params
    product = params.get("ProductName")
    rule_name = params.get("RuleName")
    if not product:
        raise missing("ProductName")
    if not rule_name:
        raise missing("RuleName")
    await _rules(call).delete(product, rule_name)
    return None


RULE_ACTIONS: dict[str, Handler] = {
    "CreateEventRule": create_event_rule,
    "GetEventRule": get_event_rule,
    "ListEventRules": list_event_rules,
    "DeleteEventRule": delete_event_rule,
}
