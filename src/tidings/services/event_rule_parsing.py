"""CreateEventRule's parameters, parsed: JSON strings into the rule model.

Shapes only (a JSON array of strings, an array of arrays of objects, an endpoint object):
what the values mean is checked by `event_rule_checks.new_rule`, which
`rule_from_request` calls last.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import cast

from tidings.errors import ServiceError
from tidings.services.event_overlap import (
    PRODUCTS,
    EndpointKind,
    EventRule,
    MatchAtom,
    MatchRules,
    ProductSpec,
    RuleEndpoint,
)
from tidings.services.event_rule_checks import canonical_product, new_rule

_ENDPOINT_KINDS: tuple[EndpointKind, ...] = ("queue", "http", "topic")
_OSS_ARN = re.compile(r"acs:oss:[^:/]*:[^:/]*:")
_ATOM_KEYS = ("Name", "Prefix", "Suffix", "MatchState")


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
