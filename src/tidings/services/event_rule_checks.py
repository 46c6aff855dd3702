"""One event rule checked on its own: product, name, event types, resources, endpoints.

`new_rule` is where a rule is validated, whether it comes from a request, the CLI or a
stored row; what it is checked against other rules (`check_can_add`) and how it matches
are in `event_rules`. Every refusal is a `ServiceError` whose message says what to send
instead (codes listed in `event_rules`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from tidings.errors import ServiceError
from tidings.services.event_overlap import (
    DEFAULT_EVENT_TYPE,
    DEFAULT_RESOURCE,
    DEFAULT_RULE_NAME,
    PRODUCT_ALIASES,
    PRODUCTS,
    EventRule,
    MatchAtom,
    MatchRules,
    ProductSpec,
    RuleEndpoint,
    TypeClass,
    classify_type,
    describe,
    meet_types,
    overlap,
    satisfiable,
)
from tidings.services.validation import check_name

MAX_RULES_PER_PRODUCT = 10
MAX_RESOURCE_DESCRIPTIONS = 5
MAX_ENDPOINTS = 5
MAX_RULE_NAME_LENGTH = 85

_RULE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


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
