"""Event-notification rules: the pure model, its validation, matching and conflicts.

Spec event-sources §1.1-§1.3 and §2.1. The control plane parses a request with
`rule_from_request` (or `parse_*` + `new_rule`), asks `check_can_add` against the rules of
the store, then persists; the emitters ask `select_rules` which rules an event goes to.
No I/O, no clock: the caller supplies `created_ms` and the auto-created topic name.

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

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import cast
from urllib.parse import urlsplit

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
    TypeClass,
    any_description_matches,
    classify_type,
    covering_types,
    describe,
    find_conflict,
    meet_types,
    overlap,
    satisfiable,
    shared_event_types,
)
from tidings.services.validation import check_name

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

MAX_RULES_PER_PRODUCT = 10
MAX_RESOURCE_DESCRIPTIONS = 5
MAX_ENDPOINTS = 5
MAX_RULE_NAME_LENGTH = 85

_ENDPOINT_KINDS: tuple[EndpointKind, ...] = ("queue", "http", "topic")
_RULE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_OSS_ARN = re.compile(r"acs:oss:[^:/]*:[^:/]*:")
_ATOM_KEYS = ("Name", "Prefix", "Suffix", "MatchState")


# ---------------------------------------------------------------------------------------
# Names and products


def canonical_product(product: str) -> str:
    """The registry key of `product` (case-insensitive, aliases resolved), or refuse it."""
    key = product.strip().lower()
    key = PRODUCT_ALIASES.get(key, key)
    if key not in PRODUCTS:
        raise ServiceError(
            "InvalidProductName",
            f"The product {product!r} has no event rules here: use one of"
            f" {', '.join(PRODUCTS)} (aliases: {', '.join(PRODUCT_ALIASES)}).",
        )
    return key


def check_rule_name(name: str) -> None:
    """Refuse a rule name outside letters, digits and '-', starting with a letter, ≤ 85."""
    if not name:
        raise ServiceError("EventRuleNameInvalid", "The rule name is empty: give RuleName.")
    if len(name) > MAX_RULE_NAME_LENGTH:
        raise ServiceError(
            "EventRuleNameInvalid",
            f"The rule name is {len(name)} characters long; at most {MAX_RULE_NAME_LENGTH}"
            " are allowed.",
        )
    if not _RULE_NAME.fullmatch(name):
        raise ServiceError(
            "EventRuleNameInvalid",
            f"The rule name {name!r} is invalid: use letters, digits and '-', starting with"
            " a letter (e.g. 'photos-created').",
        )


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


# ---------------------------------------------------------------------------------------
# Event types


def configured_types_covering(emitted_event_name: str, product: str = "oss") -> set[str]:
    """Every configured spelling whose rules receive `emitted_event_name` (§1.3, §2.1).

    E.g. `ObjectCreated:PutObject` -> PutObject, ObjectCreated:PutObject,
    ObjectCreatedGroup, ObjectCreated:*. `Default` is not among them: the default rule is
    chosen by `select_rules`, not by its event type.
    """
    return set(covering_types(canonical_product(product), emitted_event_name))


def _check_event_types(spec: ProductSpec, event_types: Sequence[str], is_default: bool) -> None:
    if not event_types:
        raise ServiceError("EventTypeInvalid", "EventTypes is empty: list at least one event type.")
    if is_default:
        if tuple(event_types) != (DEFAULT_EVENT_TYPE,):
            raise ServiceError(
                "EventTypeInvalid",
                f"The default rule {DEFAULT_RULE_NAME} takes the single event type"
                f" {DEFAULT_EVENT_TYPE!r}: send EventTypes=[{json.dumps(DEFAULT_EVENT_TYPE)}].",
            )
        return
    classes: list[TypeClass] = []
    for configured in event_types:
        if configured == DEFAULT_EVENT_TYPE:
            raise ServiceError(
                "EventTypeInvalid",
                f"The event type {DEFAULT_EVENT_TYPE!r} is reserved for the default rule: name"
                f" the rule {DEFAULT_RULE_NAME} with the resource {DEFAULT_RESOURCE!r}, or"
                " list the event types this rule wants.",
            )
        found = classify_type(spec, configured)
        if found is None:
            raise ServiceError("EventTypeInvalid", _unknown_type_message(spec, configured))
        classes.append(found)
    for later, later_class in enumerate(classes):
        for earlier, earlier_class in enumerate(classes[:later]):
            common = meet_types(earlier_class, later_class)
            if common is None:
                continue
            first, second = event_types[earlier], event_types[later]
            if earlier_class == later_class:
                why = f"{first!r} and {second!r} are the same event type: list it once."
            else:
                wide, narrow = (second, first) if common == earlier_class else (first, second)
                why = f"{wide!r} already covers {narrow!r}: drop {narrow!r}."
            raise ServiceError("EventTypeInvalid", f"EventTypes repeats itself: {why}")


def _unknown_type_message(spec: ProductSpec, configured: str) -> str:
    known = spec.known_types()
    close = difflib.get_close_matches(configured, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    what = "an API operation name such as" if spec.open_types else "one of"
    # The short spellings only: the emitted names and `X:*` forms would triple the list.
    listed = ", ".join([*spec.event_types, *spec.group_types])
    extras = []
    longer = sorted(spec.emitted_names - set(spec.event_types))
    if longer:
        extras.append(f"emitted names such as {longer[0]!r}")
    if spec.wildcard_prefixes:
        extras.append(f"forms such as {min(spec.wildcard_prefixes) + '*'!r}")
    also = f" ({' and '.join(extras)} work too)" if extras else ""
    return (
        f"The event type {configured!r} is not an event type of {spec.title}.{hint}"
        f" Use {what}: {listed}{also}."
    )


# ---------------------------------------------------------------------------------------
# Parsing the request's JSON parameters


def _decode(raw: object, parameter: str, code: str, example: str) -> object:
    """Decode a JSON-string parameter; already-decoded values pass through."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ServiceError(
            code,
            f"{parameter} is not valid JSON ({error.msg} at character {error.pos}):"
            f" send e.g. {parameter}={example}.",
        ) from None


def parse_event_types(raw: object) -> tuple[str, ...]:
    """EventTypes (a JSON array of strings) as a tuple; meaning is checked by `new_rule`."""
    example = '["PutObject","PostObject"]'
    value = _decode(raw, "EventTypes", "EventTypeInvalid", example)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ServiceError(
            "EventTypeInvalid",
            f"EventTypes must be a JSON array of strings, e.g. EventTypes={example}.",
        )
    return tuple(cast(list[str], value))


def parse_match_rules(raw: object, product: str = "oss") -> MatchRules:
    """MatchRules (JSON `[[{"Prefix":..,"Suffix":..,"Name":..,"MatchState":..}]]`).

    Outer list = OR, inner list = AND. For OSS, an `acs:oss:<region>:<uid>:` before a Name
    or Prefix is set aside (kept for the echo, ignored by matching). An empty or null
    Name counts as absent; Prefix/Suffix default to "". An atom naming none of
    Name/Prefix/Suffix is refused as empty: `{"Prefix":""}` says "every resource"
    explicitly. Semantic checks (limits, overlap, reserved resource) are in `new_rule`.
    """
    spec = PRODUCTS[canonical_product(product)]
    example = '[[{"Prefix":"bucket/photos/","Suffix":".jpg"}]]'
    value = _decode(raw, "MatchRules", "MatchRuleInvalid", example)
    shape = (
        "MatchRules must be a JSON array of arrays of objects (outer = OR, inner = AND),"
        f" e.g. MatchRules={example}"
    )
    if not isinstance(value, list) or not value:
        raise ServiceError("MatchRuleInvalid", shape + "; it is empty or not an array.")
    result: list[tuple[MatchAtom, ...]] = []
    for number, conjunction in enumerate(value, 1):
        if not isinstance(conjunction, list) or not conjunction:
            raise ServiceError(
                "MatchRuleInvalid",
                f"{shape}; resource description list {number} is empty or not an array.",
            )
        result.append(tuple(_parse_atom(spec, item, number) for item in conjunction))
    return tuple(result)


def _parse_atom(spec: ProductSpec, item: object, number: int) -> MatchAtom:
    where = f"In resource description list {number}"
    if not isinstance(item, dict):
        raise ServiceError(
            "MatchRuleInvalid", f'{where}, {item!r} is not an object like {{"Prefix":"a/"}}.'
        )
    for key in item:
        if key not in _ATOM_KEYS:
            close = difflib.get_close_matches(str(key), _ATOM_KEYS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ServiceError(
                "MatchRuleInvalid",
                f"{where}, the field {key!r} is unknown{hint}: use {', '.join(_ATOM_KEYS)}.",
            )
    texts: dict[str, str | None] = {}
    for key in ("Name", "Prefix", "Suffix"):
        text = item.get(key)
        if text is not None and not isinstance(text, str):
            raise ServiceError("MatchRuleInvalid", f"{where}, {key} must be a string.")
        texts[key] = text
    state = item.get("MatchState", True)
    if state is None:
        state = True
    if not isinstance(state, bool):
        raise ServiceError(
            "MatchRuleInvalid", f"{where}, MatchState must be true or false, not {state!r}."
        )
    name = texts["Name"] or None
    prefix, suffix = texts["Prefix"], texts["Suffix"]
    if name is not None and (prefix or suffix):
        raise ServiceError(
            "MatchRuleInvalid",
            f"{where}, Name {name!r} is a full name and takes no Prefix or Suffix: send"
            " either Name, or Prefix and/or Suffix.",
        )
    if name is None and prefix is None and suffix is None:
        raise ServiceError(
            "MatchRuleInvalid",
            f"{where}, a resource description is empty: give a Name, a Prefix and/or a"
            ' Suffix (send {"Prefix":""} to match every resource).',
        )
    arn = ""
    if spec.object_resources:
        found = _OSS_ARN.match(name if name is not None else prefix or "")
        if found:
            arn = found.group()
            if name is not None:
                name = name[len(arn) :]
            else:
                prefix = (prefix or "")[len(arn) :]
            if not (name or prefix or suffix):
                raise ServiceError(
                    "MatchRuleInvalid",
                    f"{where}, {arn!r} names no bucket: append 'bucket/' or 'bucket/key'.",
                )
    return MatchAtom(name, prefix or "", suffix or "", state, arn)


def parse_endpoints(endpoint: object = None, endpoints: object = None) -> tuple[RuleEndpoint, ...]:
    """The `Endpoint` object or the (deprecated) `Endpoints` array, exactly one of them."""
    example = '{"EndpointType":"queue","EndpointValue":"my-queue"}'
    if endpoint is None and endpoints is None:
        raise ServiceError(
            "EndpointInvalid", f"Give the receiving endpoint, e.g. Endpoint={example}."
        )
    if endpoint is not None and endpoints is not None:
        raise ServiceError(
            "EndpointInvalid",
            "Send either Endpoint or Endpoints, not both (Endpoints is the deprecated"
            " multi-endpoint form).",
        )
    if endpoint is not None:
        return (_parse_endpoint(_decode(endpoint, "Endpoint", "EndpointInvalid", example)),)
    value = _decode(endpoints, "Endpoints", "EndpointInvalid", f"[{example}]")
    if not isinstance(value, list):
        raise ServiceError(
            "EndpointInvalid", f"Endpoints must be a JSON array, e.g. Endpoints=[{example}]."
        )
    return tuple(_parse_endpoint(item) for item in value)


def _parse_endpoint(item: object) -> RuleEndpoint:
    if not isinstance(item, dict):
        raise ServiceError(
            "EndpointInvalid",
            f"An endpoint must be an object with EndpointType and EndpointValue, not {item!r}.",
        )
    kind, value = item.get("EndpointType"), item.get("EndpointValue")
    if not isinstance(kind, str) or kind.lower() not in _ENDPOINT_KINDS:
        raise ServiceError(
            "EndpointInvalid",
            f"EndpointType {kind!r} is not supported: use queue, http or topic.",
        )
    if not isinstance(value, str) or not value.strip():
        raise ServiceError(
            "EndpointInvalid",
            "EndpointValue must name the queue or topic, or give the http(s) URL.",
        )
    return RuleEndpoint(cast(EndpointKind, kind.lower()), value)


# ---------------------------------------------------------------------------------------
# Building a rule


def rule_from_request(
    params: Mapping[str, str], *, topic_name: str = "", created_ms: int = 0
) -> EventRule:
    """A validated rule from CreateEventRule's parameters (JSON values still as strings)."""
    for required in ("ProductName", "RuleName", "EventTypes", "MatchRules"):
        if required not in params:
            raise ServiceError(
                "InvalidArgument", f"The parameter {required} is required by CreateEventRule."
            )
    product = canonical_product(params["ProductName"])
    return new_rule(
        product,
        params["RuleName"],
        parse_event_types(params["EventTypes"]),
        parse_match_rules(params["MatchRules"], product),
        parse_endpoints(params.get("Endpoint"), params.get("Endpoints")),
        topic_name=topic_name,
        created_ms=created_ms,
    )


def new_rule(
    product: str,
    name: str,
    event_types: Sequence[str],
    match_rules: MatchRules,
    endpoints: Sequence[RuleEndpoint],
    *,
    topic_name: str = "",
    created_ms: int = 0,
) -> EventRule:
    """Validate one rule on its own (not against other rules: see `check_can_add`).

    With a topic endpoint, `topic_name` becomes that topic; otherwise it is the caller's
    auto-created topic (`auto_topic_name`), or "" for direct queue delivery.
    """
    product = canonical_product(product)
    spec = PRODUCTS[product]
    check_rule_name(name)
    is_default = name == DEFAULT_RULE_NAME
    _check_event_types(spec, event_types, is_default)
    _check_match_rules(spec, match_rules, is_default)
    _check_endpoints(spec, endpoints)
    topics = [e.value for e in endpoints if e.kind == "topic"]
    return EventRule(
        product=product,
        name=name,
        event_types=tuple(event_types),
        match_rules=tuple(tuple(conjunction) for conjunction in match_rules),
        endpoints=tuple(endpoints),
        topic_name=topics[0] if topics else topic_name,
        created_ms=created_ms,
    )


def _check_match_rules(spec: ProductSpec, match_rules: MatchRules, is_default: bool) -> None:
    atoms = [atom for conjunction in match_rules for atom in conjunction]
    if not match_rules or any(not conjunction for conjunction in match_rules):
        raise ServiceError(
            "MatchRuleInvalid", "MatchRules is empty: give at least one resource description."
        )
    for number, conjunction in enumerate(match_rules, 1):
        for atom in conjunction:
            _check_atom(spec, atom, f"In resource description list {number}")
    reserved = [atom for atom in atoms if DEFAULT_RESOURCE in (atom.name, atom.prefix)]
    if is_default:
        only = atoms[0]
        if len(atoms) != 1 or not only.match_state or only.suffix or not reserved:
            raise ServiceError(
                "MatchRuleInvalid",
                f"The default rule takes the single resource description"
                f' {DEFAULT_RESOURCE!r}: send MatchRules=[[{{"Name":"{DEFAULT_RESOURCE}"}}]].',
            )
        return
    if reserved:
        raise ServiceError(
            "MatchRuleInvalid",
            f"The resource {DEFAULT_RESOURCE!r} is reserved for the default rule: name the"
            f" rule {DEFAULT_RULE_NAME} with the event type {DEFAULT_EVENT_TYPE!r}, or"
            " describe the resources this rule wants.",
        )
    if len(atoms) > MAX_RESOURCE_DESCRIPTIONS:
        raise ServiceError(
            "MatchRuleInvalid",
            f"The rule has {len(atoms)} resource descriptions (each Name/Prefix/Suffix object"
            f" counts); at most {MAX_RESOURCE_DESCRIPTIONS} are allowed: merge some or"
            " split the rule.",
        )
    for conjunction in match_rules:
        if satisfiable(conjunction) is None:
            raise ServiceError(
                "MatchRuleInvalid",
                f"The resource description {describe(conjunction)} can match no resource:"
                " its parts exclude each other.",
            )
    for later in range(len(match_rules)):
        for earlier in range(later):
            witness = overlap(match_rules[earlier], match_rules[later])
            if witness is not None:
                raise ServiceError(
                    "MatchRuleInvalid",
                    f"The resource descriptions {describe(match_rules[earlier])} and"
                    f" {describe(match_rules[later])} of this rule overlap: both match e.g."
                    f" {witness!r}. Make them disjoint or keep only the wider one.",
                )


def _check_atom(spec: ProductSpec, atom: MatchAtom, where: str) -> None:
    """Refuse blank strings, and OSS full names that no `bucket/key` can equal."""
    if atom.name == "":
        raise ServiceError("MatchRuleInvalid", f"{where}, Name is empty: give 'bucket/key'.")
    for key, text in (("Name", atom.name), ("Prefix", atom.prefix), ("Suffix", atom.suffix)):
        # A lone space is a legal key character, but a description made only of
        # whitespace is far likelier a form left blank than a wish for such keys.
        if text and not text.strip():
            raise ServiceError(
                "MatchRuleInvalid",
                f"{where}, {key} {text!r} is blank: give a resource string such as"
                " 'bucket/photos/', or leave the field out.",
            )
    name = atom.name
    if spec.object_resources and name not in (None, DEFAULT_RESOURCE) and "/" not in name:
        raise ServiceError(
            "MatchRuleInvalid",
            f"{where}, the full name {name!r} has no '/': OSS resources are 'bucket/key'."
            f' To match every object of bucket {name!r}, send {{"Prefix":"{name}/"}}.',
        )


def _check_endpoints(spec: ProductSpec, endpoints: Sequence[RuleEndpoint]) -> None:
    if not endpoints:
        raise ServiceError("EndpointInvalid", "The rule has no endpoint: give one.")
    if len(endpoints) > MAX_ENDPOINTS:
        raise ServiceError(
            "EndpointInvalid",
            f"The rule has {len(endpoints)} endpoints; at most {MAX_ENDPOINTS} are allowed.",
        )
    if any(e.kind == "topic" for e in endpoints) and len(endpoints) > 1:
        raise ServiceError(
            "EndpointInvalid",
            "A topic endpoint is exclusive: give the topic alone (and subscribe to it), or"
            " give queue/http endpoints only.",
        )
    seen: set[RuleEndpoint] = set()
    for endpoint in endpoints:
        if endpoint in seen:
            raise ServiceError(
                "EndpointInvalid",
                f"The {endpoint.kind} endpoint {endpoint.value!r} is listed twice: list it once.",
            )
        seen.add(endpoint)
        if endpoint.kind == "http":
            _check_url(endpoint.value)
        elif endpoint.kind in ("queue", "topic"):
            check_name(endpoint.value, endpoint.kind, "EndpointInvalid", "EndpointInvalid")
        else:
            raise ServiceError(
                "EndpointInvalid", f"EndpointType {endpoint.kind!r}: use queue, http or topic."
            )
        if spec.name == "dm" and endpoint.kind == "topic" and endpoint.value.startswith("sms."):
            raise ServiceError(
                "EndpointInvalid",
                f"The topic {endpoint.value!r} is an SMS-only topic: DirectMail events need"
                " another topic.",
            )


def _check_url(url: str) -> None:
    why = None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        why = "it must start with http:// or https://"
    elif not parts.hostname:
        why = "it has no host"
    elif not all(0x21 <= ord(char) <= 0x7E for char in url):
        why = "spaces, control and non-ASCII characters must be percent-encoded"
    else:
        try:
            _ = parts.port
        except ValueError:
            why = "the port is not a number"
    if why is not None:
        raise ServiceError(
            "EndpointInvalid",
            f"The http endpoint {url!r} is invalid: {why} (e.g. https://hooks.example.com/oss).",
        )


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
