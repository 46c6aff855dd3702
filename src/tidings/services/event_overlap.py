"""The semantics of event rules: the model, event-type algebra and exact overlap.

Everything here is about what a rule *means*: which events a configured type covers
(spec event-sources §2.1), which resources an `MatchAtom` matches, and whether two rules
could ever receive the same event. `tidings.services.event_rules` builds on it with the
request parsing, validation, limits and rule selection, and re-exports this module's
public names; callers import from there.

A resource description is a `MatchAtom`: a full name, or a prefix and/or a suffix,
optionally negated (`MatchState=false`). A rule's `MatchRules` is an OR of AND-lists of
atoms (§1.2). Two AND-lists overlap iff their concatenation is satisfiable, so every
resource-overlap question reduces to `satisfiable`, which decides a conjunction exactly
and returns a concrete witness. Strings are arbitrary Unicode strings, not only well-formed
`bucket/key` resources: the non-overlap rule is stated on the resource strings, and a
decision that hinged on bucket-name syntax would surprise. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from tidings.errors import ServiceError

DEFAULT_RULE_NAME = "DefaultEnRule"
DEFAULT_EVENT_TYPE = "Default"
DEFAULT_RESOURCE = "mns-en-reserved-default"
OPEN_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,127}")

EndpointKind = Literal["queue", "http", "topic"]

# Tried first as the middle of a witness because `photos/x.jpg` reads better than
# `photos/.jpg`; correctness never depends on them (see `satisfiable`).
_FILLERS = ("x", "", "0", "_")
_FRESH_CANDIDATES = "x0_~#-.zq9"


@dataclass(frozen=True, slots=True)
class MatchAtom:
    """One resource description: `name` exactly, or `prefix` and `suffix` both.

    Exactly one form: `name` set (prefix and suffix empty), or `name` None with any prefix
    and suffix; empty prefix and suffix match every resource. The prefix and suffix are
    tested independently, so they may overlap in the resource (`ab` + `bc` matches `abc`).
    `match_state=False` negates the atom. `arn_prefix` is the `acs:oss:<region>:<uid>:`
    that the request put before `name`/`prefix` and that matching ignores; it is kept
    only to echo the rule back exactly as it was sent.
    """

    name: str | None
    prefix: str = ""
    suffix: str = ""
    match_state: bool = True
    arn_prefix: str = ""

    def __post_init__(self) -> None:
        if self.name is not None and (self.prefix or self.suffix):
            raise ValueError("a full-name MatchAtom takes no prefix or suffix")

    def matches(self, resource: str) -> bool:
        """Whether `resource` satisfies this atom (negation included)."""
        if self.name is not None:
            hit = resource == self.name
        else:
            hit = resource.startswith(self.prefix) and resource.endswith(self.suffix)
        return hit == self.match_state

    def to_api(self) -> dict[str, object]:
        """The `EventMatchRule` JSON object, with the resource strings as they were sent."""
        if self.name is not None:
            return {"Name": self.arn_prefix + self.name, "MatchState": self.match_state}
        return {
            "Prefix": self.arn_prefix + self.prefix,
            "Suffix": self.suffix,
            "MatchState": self.match_state,
        }

    def texts(self) -> tuple[str, ...]:
        """The strings this atom compares against (what a fresh character must avoid)."""
        return (self.name,) if self.name is not None else (self.prefix, self.suffix)


# Outer tuple: OR of descriptions; inner tuple: AND of atoms.
MatchRules = tuple[tuple[MatchAtom, ...], ...]


def all_match(atoms: Iterable[MatchAtom], resource: str) -> bool:
    """Whether `resource` satisfies every atom of a conjunction."""
    return all(atom.matches(resource) for atom in atoms)


def any_description_matches(match_rules: MatchRules, resource: str) -> bool:
    """Whether `resource` satisfies at least one AND-list of `match_rules`."""
    # Plain loops, not any()/all() over generators: this runs for every rule on every
    # object operation, and the generators cost more than the comparisons.
    for atoms in match_rules:
        for atom in atoms:
            if not atom.matches(resource):
                break
        else:
            return True
    return False


def satisfiable(atoms: Iterable[MatchAtom]) -> str | None:
    """A resource that satisfies every atom, or None when no string at all does.

    Exact over arbitrary strings. With a positive full name, the name is the only
    candidate. Otherwise every positive prefix must be a prefix of the longest one P (and
    suffixes likewise, longest S), or nothing matches. Then W = P + c + S, with c a
    character that occurs in no atom, is a witness whenever any witness exists: W meets
    every positive atom; it differs from every name (c is in none); and if W starts with
    a negated atom's prefix P', then P' (free of c) is a prefix of P, so every string
    starting with P starts with P' too, likewise for suffixes: a negated atom that W
    violates is violated by every string meeting the positive atoms.
    """
    conjunction = tuple(atoms)
    positive = [atom for atom in conjunction if atom.match_state]
    names = {atom.name for atom in positive if atom.name is not None}
    if len(names) > 1:
        return None
    if names:
        (only,) = names
        return only if all_match(conjunction, only) else None
    prefix = _longest_if_chain([atom.prefix for atom in positive], at_start=True)
    suffix = _longest_if_chain([atom.suffix for atom in positive], at_start=False)
    if prefix is None or suffix is None:
        return None  # an early exit: no candidate below could meet every atom anyway
    for candidate in _candidates(prefix, suffix, conjunction):
        if all_match(conjunction, candidate):
            return candidate
    return None


def overlap(first: Sequence[MatchAtom], second: Sequence[MatchAtom]) -> str | None:
    """A resource matched by both AND-lists, or None when they are disjoint."""
    return satisfiable((*first, *second))


def describe(atoms: Sequence[MatchAtom]) -> str:
    """An AND-list as the user wrote it, compactly, for error messages."""
    parts = []
    for atom in atoms:
        fields = atom.to_api()
        if atom.match_state:
            del fields["MatchState"]  # the default; leaving it out keeps messages short
        if atom.name is None and not atom.suffix:
            del fields["Suffix"]
        if atom.name is None and not fields["Prefix"] and "Suffix" in fields:
            del fields["Prefix"]
        parts.append(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))
    return parts[0] if len(parts) == 1 else "[" + ",".join(parts) + "]"


def _longest_if_chain(texts: list[str], *, at_start: bool) -> str | None:
    """The longest text if every other one is a prefix (`at_start`) or suffix of it."""
    longest = max(texts, key=len, default="")
    if at_start:
        return longest if all(longest.startswith(text) for text in texts) else None
    return longest if all(longest.endswith(text) for text in texts) else None


def _candidates(prefix: str, suffix: str, atoms: Sequence[MatchAtom]) -> Iterator[str]:
    for filler in _FILLERS:
        yield prefix + filler + suffix
    yield _shortest_join(prefix, suffix)
    # The last candidate is the one the completeness argument of `satisfiable` relies on.
    yield prefix + _fresh_character(atoms) + suffix


def _shortest_join(prefix: str, suffix: str) -> str:
    """The shortest string starting with `prefix` and ending with `suffix`."""
    for start in range(max(0, len(prefix) - len(suffix)), len(prefix) + 1):
        tail = prefix[start:]
        if suffix.startswith(tail):
            return prefix + suffix[len(tail) :]
    return prefix + suffix  # unreachable: the empty tail always fits


def _fresh_character(atoms: Sequence[MatchAtom]) -> str:
    """A character that occurs in none of the atoms' texts."""
    used = {char for atom in atoms for text in atom.texts() for char in text}
    for char in _FRESH_CANDIDATES:
        if char not in used:
            return char
    code = 0x80
    while chr(code) in used or 0xD800 <= code <= 0xDFFF:
        code += 1
    return chr(code)


# ---------------------------------------------------------------------------------------
# Products and event types


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """What a product's rules may select: its configured event types and groups."""

    name: str
    title: str
    # Configured type (what EventTypes lists) -> the eventName the product emits.
    event_types: Mapping[str, str]
    # Group type -> the prefix of the emitted names it covers.
    group_types: Mapping[str, str] = field(default_factory=dict)
    # Vision AI selects API operation names, which are not enumerated anywhere
    # (spec §6: "accept any string"): any identifier is then a type of its own.
    open_types: bool = False
    # OSS resources are `<bucket>/<key>`; ARN-prefixed Name/Prefix values are accepted.
    object_resources: bool = False

    @property
    def emitted_names(self) -> frozenset[str]:
        """Every eventName a configured (non-group) type stands for."""
        return frozenset(self.event_types.values())

    @property
    def wildcard_prefixes(self) -> frozenset[str]:
        """`X:` for every emitted `X:Y`: the `X:*` forms §1.3 asks to accept."""
        return frozenset(name[: name.index(":") + 1] for name in self.emitted_names if ":" in name)

    def known_types(self) -> list[str]:
        """Every configured spelling, for error messages."""
        names = [*self.event_types, *self.group_types]
        names += sorted(prefix + "*" for prefix in self.wildcard_prefixes)
        names += [e for e in sorted(self.emitted_names) if e not in self.event_types]
        return names


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


PRODUCTS: Mapping[str, ProductSpec] = {
    "oss": ProductSpec(
        name="oss",
        title="OSS",
        event_types={
            "PutObject": "ObjectCreated:PutObject",
            "PostObject": "ObjectCreated:PostObject",
            "CopyObject": "ObjectCreated:CopyObject",
            "InitiateMultipartUpload": "ObjectCreated:InitiateMultipartUpload",
            "UploadPart": "ObjectCreated:UploadPart",
            "UploadPartCopy": "ObjectCreated:UploadPartCopy",
            "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
            "AppendObject": "ObjectCreated:AppendObject",
            "AbortMultipartUpload": "ObjectRemoved:AbortMultipartUpload",
            "GetObject": "ObjectDownloaded:GetObject",
            "DeleteObject": "ObjectRemoved:DeleteObject",
            "DeleteObjects": "ObjectRemoved:DeleteObjects",
            **_same(
                "ObjectReplication:ObjectCreated",
                "ObjectReplication:ObjectRemoved",
                "ObjectReplication:ObjectModified",
                "ObjectModified:ChangeStorageClass",
            ),
            "FinishRestore": "ObjectRestore:FinishRestore",
        },
        group_types={
            "ObjectCreatedGroup": "ObjectCreated:",
            "ObjectDownloadedGroup": "ObjectDownloaded:",
            "ObjectRemovedGroup": "ObjectRemoved:",
        },
        object_resources=True,
    ),
    "dm": ProductSpec(
        name="dm",
        title="DirectMail",
        event_types=_same("Deliver:SendSuccessfully", "Deliver:SendFailed"),
    ),
    "vod": ProductSpec(
        name="vod",
        title="ApsaraVideo VOD",
        event_types=_same(
            "FileUploadComplete",
            "ImageUploadComplete",
            "AttachedMediaUploadComplete",
            "UploadByURLComplete",
            "StreamTranscodeComplete",
            "TranscodeComplete",
            "SnapshotComplete",
            "DynamicImageComplete",
            "VideoAnalysisComplete",
            "AddLiveRecordVideoComplete",
            "LiveRecordVideoComposeStart",
            "CreateAuditComplete",
            "AIMediaAuditComplete",
            "AIMediaDNAComplete",
            "AIVideoTagComplete",
            "ProduceMediaComplete",
            "DeleteMediaComplete",
            "MediaBaseChangeComplete",
            "UpdateMediaStorageClassComplete",
            "RestoreMediaComplete",
            "SubmitMediaRefreshComplete",
            "WorkflowTaskComplete",
        ),
    ),
    "viapi": ProductSpec(
        name="viapi",
        title="Vision AI",
        event_types=_same(
            "AbstractEcommerceVideo",
            "AbstractFilmVideo",
            "EraseVideoSubtitles",
            "EraseVideoLogo",
            "SuperResolveVideo",
            "AdjustVideoColor",
            "GenerateVideo",
            "SegmentVideoBody",
            "GenerateVideoCover",
        ),
        open_types=True,
    ),
}
# The spec only guesses the keys of DirectMail and Vision AI (§9); accept the long forms.
PRODUCT_ALIASES: Mapping[str, str] = {"directmail": "dm", "vision": "viapi"}


# An event type denotes a set of emitted names: one name ("exact") or every name with a
# given prefix ("prefix"); two types share events iff these sets intersect.
TypeClass = tuple[Literal["exact", "prefix"], str]


def classify_type(spec: ProductSpec, configured: str) -> TypeClass | None:
    """The emitted names a configured spelling selects, or None if it is not one (or Default)."""
    if configured == DEFAULT_EVENT_TYPE:
        return None
    if configured in spec.event_types:
        return ("exact", spec.event_types[configured])
    if configured in spec.emitted_names:
        return ("exact", configured)
    if configured in spec.group_types:
        return ("prefix", spec.group_types[configured])
    if configured.endswith(":*") and configured[:-1] in spec.wildcard_prefixes:
        return ("prefix", configured[:-1])
    if spec.open_types and OPEN_TYPE.fullmatch(configured):
        return ("exact", configured)
    return None


def meet_types(first: TypeClass, second: TypeClass) -> TypeClass | None:
    """The intersection of two type classes, which is again a class (or empty)."""
    (kind_a, text_a), (kind_b, text_b) = first, second
    if kind_a == "exact" and kind_b == "exact":
        return first if text_a == text_b else None
    if kind_a == "exact":
        return first if text_a.startswith(text_b) else None
    if kind_b == "exact":
        return second if text_b.startswith(text_a) else None
    if text_a.startswith(text_b):
        return first
    return second if text_b.startswith(text_a) else None


def render_type(spec: ProductSpec, type_class: TypeClass) -> str:
    """A type class in the vocabulary users configure (`PutObject`, `ObjectCreatedGroup`)."""
    kind, text = type_class
    if kind == "exact":
        return next((c for c, e in spec.event_types.items() if e == text), text)
    return next((g for g, p in spec.group_types.items() if p == text), text + "*")


@lru_cache(maxsize=4096)
def covering_types(product: str, emitted_event_name: str) -> frozenset[str]:
    """Every configured spelling of `product` (a registry key) that selects the name.

    Cached: the emitters ask it for every event, with few distinct names.
    """
    spec = PRODUCTS[product]
    covering = {c for c, e in spec.event_types.items() if e == emitted_event_name}
    if emitted_event_name in spec.emitted_names or (
        spec.open_types and OPEN_TYPE.fullmatch(emitted_event_name)
    ):
        covering.add(emitted_event_name)
    covering |= {g for g, p in spec.group_types.items() if emitted_event_name.startswith(p)}
    covering |= {p + "*" for p in spec.wildcard_prefixes if emitted_event_name.startswith(p)}
    return frozenset(covering)


# ---------------------------------------------------------------------------------------
# Rules and conflicts


@dataclass(frozen=True, slots=True)
class RuleEndpoint:
    """Where a rule delivers: a queue name, an http(s) URL or a topic name."""

    kind: EndpointKind
    value: str


@dataclass(frozen=True, slots=True)
class EventRule:
    """A validated rule. `topic_name` is the topic endpoint, the auto-created topic, or ""."""

    product: str
    name: str
    event_types: tuple[str, ...]
    match_rules: MatchRules
    endpoints: tuple[RuleEndpoint, ...]
    topic_name: str = ""
    created_ms: int = 0

    @property
    def is_default(self) -> bool:
        """Whether this is the product's catch-all default rule."""
        return self.name == DEFAULT_RULE_NAME


@dataclass(frozen=True, slots=True)
class Conflict:
    """Why a new rule may not coexist with `existing_rule`."""

    existing_rule: str
    new_description: tuple[MatchAtom, ...]
    existing_description: tuple[MatchAtom, ...]
    shared_event_types: tuple[str, ...]
    witness: str  # a resource both descriptions match

    def message(self) -> str:
        """The refusal, naming both descriptions, the shared types and an example."""
        return (
            f"The rule overlaps the existing rule {self.existing_rule!r}: the resource"
            f" description {describe(self.new_description)} and the existing rule's"
            f" {describe(self.existing_description)} both match e.g. {self.witness!r}, and"
            f" both rules select {', '.join(self.shared_event_types)}. Rules that can"
            " match the same object may not share an event type: narrow the resource"
            " descriptions so they are disjoint, or drop the shared event types."
        )

    def error(self) -> ServiceError:
        """The `EventRuleConflict` refusal for this conflict."""
        return ServiceError(
            "EventRuleConflict",
            self.message(),
            {
                "ConflictRuleName": self.existing_rule,
                "SharedEventTypes": ",".join(self.shared_event_types),
                "ExampleResource": self.witness,
            },
        )


def shared_event_types(first: EventRule, second: EventRule) -> tuple[str, ...]:
    """The event types two rules of one product both select, group types expanded.

    `ObjectCreatedGroup` and `PutObject` share `PutObject`; two equal groups share the
    group. Empty when either is a default rule or the products differ.
    """
    if first.product != second.product or first.is_default or second.is_default:
        return ()
    spec = PRODUCTS[first.product]
    shared: list[str] = []
    for configured_a in first.event_types:
        class_a = classify_type(spec, configured_a)
        for configured_b in second.event_types:
            class_b = classify_type(spec, configured_b)
            common = None if class_a is None or class_b is None else meet_types(class_a, class_b)
            if common is not None and render_type(spec, common) not in shared:
                shared.append(render_type(spec, common))
    return tuple(shared)


def find_conflict(new_rule: EventRule, existing_rules: Iterable[EventRule]) -> Conflict | None:
    """The first existing rule that could receive an event `new_rule` would, or None.

    Exact: two rules conflict iff some resource matches an AND-list of each and they
    share an event type. Default rules, other products and a rule of the same name (the
    rule itself) never conflict.
    """
    if new_rule.is_default:
        return None
    for existing in existing_rules:
        if existing.name == new_rule.name:
            continue
        shared = shared_event_types(new_rule, existing)
        if not shared:
            continue
        for mine in new_rule.match_rules:
            for theirs in existing.match_rules:
                witness = overlap(mine, theirs)
                if witness is not None:
                    return Conflict(existing.name, mine, theirs, shared, witness)
    return None
