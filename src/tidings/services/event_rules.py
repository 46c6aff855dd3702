"""Event-notification rules: the pure model, its validation, matching and conflicts.

Spec event-sources §1.1-§1.3 and §2.1. The control plane parses a request with
`rule_from_request` (or `parse_*` + `new_rule`), asks `check_can_add` against the rules of
the store, then persists; the emitters ask `select_rules` which rules an event goes to.
No I/O, no clock: the caller supplies `created_ms` and the auto-created topic name.

This module is the one to import: it holds matching, conflicts and the stored form, and
gives the names of `event_overlap` (the model and its algebra), `event_rule_checks` (one
rule validated on its own) and `event_rule_parsing` (the request's JSON parameters).

Error codes (each a `ServiceError` whose message says what to change):

* `InvalidArgument` -- a required request parameter is missing.
* `InvalidProductName` -- ProductName is not one of `PRODUCTS` (or an alias).
* `EventRuleNameInvalid` -- RuleName outside `[A-Za-z][A-Za-z0-9-]{0,84}`.
* `EventTypeInvalid` -- EventTypes malformed, empty, unknown, repeated, redundant (a group
  and one of its members), or `Default` outside the default rule (and vice versa).
* `MatchRuleInvalid` -- MatchRules malformed, empty, blank values, Name with Prefix/Suffix,
  more than `MAX_RESOURCE_DESCRIPTIONS` atoms, a description that can match nothing, two
  descriptions of the rule that overlap, or the reserved default resource misused.
* `EndpointInvalid` -- no endpoint, more than `MAX_ENDPOINTS`, a topic mixed with others,
  a duplicate, an unknown kind or a malformed queue/topic name or URL.
* `EventRuleAlreadyExist` -- the product already has a rule of that name.
* `EventRuleLimitExceeded` -- the product already has `MAX_RULES_PER_PRODUCT` rules.
* `EventRuleConflict` -- another rule can match the same resource and shares an event type.
* `EventRuleNotExist` -- (for get/delete) no rule of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from tidings.errors import ServiceError
from tidings.services.event_overlap import (
    DEFAULT_EVENT_TYPE,
    DEFAULT_RESOURCE,
    DEFAULT_RULE_NAME,
    PRODUCT_ALIASES,
    PRODUCTS,
    Conflict,
    EndpointKind,
    EventRule,
    MatchAtom,
    MatchRules,
    ProductSpec,
    RuleEndpoint,
    any_description_matches,
    covering_types,
    find_conflict,
    satisfiable,
    shared_event_types,
)
from tidings.services.event_rule_checks import (
    MAX_ENDPOINTS,
    MAX_RESOURCE_DESCRIPTIONS,
    MAX_RULES_PER_PRODUCT,
    canonical_product,
    check_rule_name,
    new_rule,
)
from tidings.services.event_rule_parsing import (
    parse_endpoints,
    parse_event_types,
    parse_match_rules,
    rule_from_request,
)

__all__ = [
    "DEFAULT_EVENT_TYPE",
    "DEFAULT_RESOURCE",
    "DEFAULT_RULE_NAME",
    "MAX_ENDPOINTS",
    "MAX_RESOURCE_DESCRIPTIONS",
    "MAX_RULES_PER_PRODUCT",
    "PRODUCTS",
    "PRODUCT_ALIASES",
    "Conflict",
    "EndpointKind",
    "EventRule",
    "MatchAtom",
    "MatchRules",
    "ProductSpec",
    "RuleEndpoint",
    "auto_subscription_name",
    "auto_topic_name",
    "canonical_product",
    "check_can_add",
    "check_rule_name",
    "configured_types_covering",
    "event_rule_not_exist",
    "find_conflict",
    "new_rule",
    "parse_endpoints",
    "parse_event_types",
    "parse_match_rules",
    "rule_from_dict",
    "rule_from_request",
    "rule_matches",
    "rule_to_dict",
    "satisfiable",
    "select_rules",
    "shared_event_types",
]


# ---------------------------------------------------------------------------------------
# Names and event types


def auto_topic_name(product: str, rule_name: str, digits: str) -> str:
    """The topic auto-created for a rule without a topic endpoint (spec §1.1)."""
    return f"mns-en-topics-{product}-{rule_name}-{digits}"


def auto_subscription_name(product: str, rule_name: str, index: int, digits: str) -> str:
    """The subscription auto-created for the rule's `index`-th endpoint (1-based)."""
    return f"mns-en-subs-{product}-{rule_name}-{index}-{digits}"


def event_rule_not_exist(product: str, name: str) -> ServiceError:
    """The rule addressed by a get/delete does not exist."""
    return ServiceError(
        "EventRuleNotExist", f"The product {product!r} has no event rule named {name!r}."
    )


def configured_types_covering(emitted_event_name: str, product: str = "oss") -> set[str]:
    """Every configured spelling whose rules receive `emitted_event_name` (§1.3, §2.1).

    E.g. `ObjectCreated:PutObject` -> PutObject, ObjectCreated:PutObject,
    ObjectCreatedGroup, ObjectCreated:*. `Default` is not among them: the default rule is
    chosen by `select_rules`, not by its event type.
    """
    return set(covering_types(canonical_product(product), emitted_event_name))


# ---------------------------------------------------------------------------------------
# Matching, conflicts and limits


def rule_matches(rule: EventRule, event_name: str, resource: str) -> bool:
    """Whether the rule selects the event on `resource` (`bucket/key` for OSS), §1.3 (2).

    The default rule selects everything; `select_rules` makes it a catch-all.
    """
    if rule.is_default:
        return True
    # isdisjoint runs in C: this is asked for every rule on every object operation.
    if covering_types(rule.product, event_name).isdisjoint(rule.event_types):
        return False
    return any_description_matches(rule.match_rules, resource)


def select_rules(
    rules: Iterable[EventRule], product: str, event_name: str, resource: str
) -> list[EventRule]:
    """The rules an event goes to, in the given order (§1.3).

    Every non-default rule of `product` that matches (normally at most one, by the
    non-overlap rule); if none does, the product's default rule when it exists (so a
    default rule alone receives everything, bucket-level events included).
    """
    key = product.lower()
    key = PRODUCT_ALIASES.get(key, key)
    default: EventRule | None = None
    chosen: list[EventRule] = []
    for rule in rules:
        if rule.product != key:
            continue
        if rule.is_default:
            default = rule
        elif rule_matches(rule, event_name, resource):
            chosen.append(rule)
    if not chosen and default is not None:
        chosen.append(default)
    return chosen


def check_can_add(new_rule: EventRule, existing_rules: Iterable[EventRule]) -> None:
    """Refuse a new rule clashing with the product's rules: name, limit, then overlap."""
    peers = [rule for rule in existing_rules if rule.product == new_rule.product]
    if any(rule.name == new_rule.name for rule in peers):
        raise ServiceError(
            "EventRuleAlreadyExist",
            f"The product {new_rule.product!r} already has a rule named {new_rule.name!r}:"
            " choose another name, or delete that rule first (rules cannot be updated).",
        )
    if len(peers) >= MAX_RULES_PER_PRODUCT:
        raise ServiceError(
            "EventRuleLimitExceeded",
            f"The product {new_rule.product!r} already has {len(peers)} rules, the most"
            f" allowed ({MAX_RULES_PER_PRODUCT}, the default rule included): delete one first.",
        )
    conflict = find_conflict(new_rule, peers)
    if conflict is not None:
        raise conflict.error()


# ---------------------------------------------------------------------------------------
# Serialisation (store rows and API echoes share the API's field names)


def rule_to_dict(rule: EventRule) -> dict[str, object]:
    """The rule as JSON-ready data; MatchRules and EventTypes exactly as they were sent."""
    return {
        "ProductName": rule.product,
        "RuleName": rule.name,
        "EventTypes": list(rule.event_types),
        "MatchRules": [[atom.to_api() for atom in conjunction] for conjunction in rule.match_rules],
        "Endpoints": [{"EndpointType": e.kind, "EndpointValue": e.value} for e in rule.endpoints],
        "TopicName": rule.topic_name,
        "CreateTime": rule.created_ms,
    }


def rule_from_dict(data: Mapping[str, object]) -> EventRule:
    """Inverse of `rule_to_dict`, re-validating the rule on its own."""
    product = canonical_product(str(data["ProductName"]))
    rule = new_rule(
        product,
        str(data["RuleName"]),
        parse_event_types(data["EventTypes"]),
        parse_match_rules(data["MatchRules"], product),
        parse_endpoints(endpoints=data["Endpoints"]),
        topic_name=str(data.get("TopicName", "")),
    )
    created = data.get("CreateTime", 0)
    return replace(rule, created_ms=created if isinstance(created, int) else 0)
