"""Bucket lifecycle rules: the pure model, its validation, and what is due when.

No XML, no I/O and no clock: the API layer parses into these dataclasses, the store keeps
them as JSON (`config_to_json`), and the scheduler asks `due_action` / `abort_due` with
its own notion of "now" and of the length of a day (spec §9.12, §12).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tidings.errors import ServiceError

STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
TRANSITION_CLASSES = STORAGE_CLASSES[1:]
MAX_RULES = 1000
MAX_ID_BYTES = 255
MAX_PREFIX_BYTES = 1023
MAX_DAYS = 2**31 - 1
MAX_SIZE = 2**63 - 1
# Access-time transitions skip objects under 64 KiB unless AllowSmallFile says otherwise.
SMALL_FILE_BYTES = 64 * 1024
_DAY_MS = 86_400_000
_COLDNESS = {name: rank for rank, name in enumerate(STORAGE_CLASSES)}

ActionKind = Literal[
    "expire", "transition", "remove_delete_marker", "expire_noncurrent", "transition_noncurrent"
]


@dataclass(frozen=True, slots=True)
class TagFilter:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class NotFilter:
    prefix: str
    tag: TagFilter | None


@dataclass(frozen=True, slots=True)
class Timing:
    """When an action applies: exactly one of `days` and `created_before_ms` is set."""

    days: int | None = None
    created_before_ms: int | None = None  # midnight UTC of the date, epoch ms


@dataclass(frozen=True, slots=True)
class Expiration:
    timing: Timing | None
    expired_object_delete_marker: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    timing: Timing
    storage_class: str
    is_access_time: bool = False
    return_to_std_when_visit: bool = False
    allow_small_file: bool = False


@dataclass(frozen=True, slots=True)
class NoncurrentTransition:
    noncurrent_days: int
    storage_class: str
    is_access_time: bool = False
    return_to_std_when_visit: bool = False
    allow_small_file: bool = False


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    id: str
    prefix: str
    enabled: bool
    tags: tuple[TagFilter, ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None
    nots: tuple[NotFilter, ...] = ()
    expiration: Expiration | None = None
    transitions: tuple[Transition, ...] = ()
    abort_multipart: Timing | None = None
    noncurrent_expiration_days: int | None = None
    noncurrent_transitions: tuple[NoncurrentTransition, ...] = ()


@dataclass(frozen=True, slots=True)
class LifecycleConfiguration:
    rules: tuple[LifecycleRule, ...]


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What the scheduler knows about one object version (or delete marker)."""

    key: str
    size: int
    tags: Mapping[str, str]
    storage_class: str
    last_modified_ms: int
    last_access_ms: int | None
    is_current: bool
    is_delete_marker: bool
    noncurrent_since_ms: int | None  # when it stopped being current (None if current)
    only_version_left: bool  # for delete markers: no other versions of the key remain


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    rule_id: str
    storage_class: str | None = None  # for transitions


# --- validation ---------------------------------------------------------------------------


def _bad(rule: LifecycleRule, message: str) -> ServiceError:
    return ServiceError("InvalidArgument", f"Lifecycle rule {rule.id!r}: {message}")


def _check_days(rule: LifecycleRule, what: str, days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise _bad(rule, f"{what} must be a positive integer, got {days}.")


def _check_timing(rule: LifecycleRule, what: str, timing: Timing) -> None:
    if (timing.days is None) == (timing.created_before_ms is None):
        raise _bad(rule, f"{what} needs exactly one of Days and CreatedBeforeDate.")
    if timing.days is not None:
        _check_days(rule, f"{what} Days", timing.days)
    elif timing.created_before_ms is not None and timing.created_before_ms % _DAY_MS:
        raise _bad(rule, f"{what} CreatedBeforeDate must be midnight UTC.")


def _check_tag(rule: LifecycleRule, tag: TagFilter) -> None:
    if not 1 <= len(tag.key) <= 128 or len(tag.value) > 256:
        raise _bad(rule, "a Tag needs a key of 1-128 characters and a value of 0-256.")


def _check_classes(rule: LifecycleRule, what: str, classes: list[str]) -> None:
    allowed = ", ".join(TRANSITION_CLASSES)
    for index, storage_class in enumerate(classes):
        if storage_class not in TRANSITION_CLASSES:
            raise _bad(rule, f"{what} StorageClass {storage_class!r} is not one of {allowed}.")
        if storage_class in classes[:index]:
            raise _bad(rule, f"{what} to {storage_class} appears more than once.")


def _check_ladder(rule: LifecycleRule, what: str, steps: list[tuple[str, int]]) -> None:
    """`steps` (class, age) must reach each colder class at a strictly greater age."""
    ordered = sorted(steps, key=lambda step: _COLDNESS[step[0]])
    for (warm, warm_age), (cold, cold_age) in itertools.pairwise(ordered):
        if warm_age >= cold_age:
            raise _bad(rule, f"{what} to {cold} must come later than the one to {warm}.")


def _check_filters(rule: LifecycleRule) -> None:
    if len(rule.id.encode("utf-8")) > MAX_ID_BYTES:
        raise _bad(rule, f"the ID is longer than {MAX_ID_BYTES} bytes.")
    if len(rule.prefix.encode("utf-8")) > MAX_PREFIX_BYTES:
        raise _bad(rule, f"the Prefix is longer than {MAX_PREFIX_BYTES} bytes.")
    for tag in rule.tags:
        _check_tag(rule, tag)
    if len({tag.key for tag in rule.tags}) != len(rule.tags):
        raise _bad(rule, "a Tag key appears more than once.")
    low, high = rule.size_greater_than, rule.size_less_than
    if low is not None and not 0 <= low <= MAX_SIZE:
        raise _bad(rule, "ObjectSizeGreaterThan must be a non-negative integer.")
    if high is not None and not 1 <= high <= MAX_SIZE:
        raise _bad(rule, "ObjectSizeLessThan must be a positive integer.")
    if low is not None and high is not None and low >= high:
        raise _bad(rule, "ObjectSizeGreaterThan must be smaller than ObjectSizeLessThan.")
    for clause in rule.nots:
        # A Not with neither part would exclude every object, silently disabling the rule.
        if not clause.prefix and clause.tag is None:
            raise _bad(rule, "a Not clause needs a Prefix or a Tag.")
        if clause.tag is not None:
            _check_tag(rule, clause.tag)
    flags = [t.allow_small_file for t in rule.transitions]
    flags += [t.allow_small_file for t in rule.noncurrent_transitions]
    if any(flags) and (low is not None or high is not None):
        raise _bad(rule, "AllowSmallFile cannot be combined with an object size filter.")


def _check_expiration(rule: LifecycleRule, expiration: Expiration) -> None:
    if expiration.timing is None:
        if not expiration.expired_object_delete_marker:
            message = "Expiration needs Days, CreatedBeforeDate or ExpiredObjectDeleteMarker."
            raise _bad(rule, message)
        return
    if expiration.expired_object_delete_marker:
        raise _bad(rule, "ExpiredObjectDeleteMarker cannot be combined with a time.")
    _check_timing(rule, "Expiration", expiration.timing)


def _check_transitions(rule: LifecycleRule) -> None:
    for transition in rule.transitions:
        _check_timing(rule, "Transition", transition.timing)
        if transition.is_access_time and transition.timing.days is None:
            raise _bad(rule, "an IsAccessTime Transition must use Days.")
    _check_classes(rule, "a Transition", [t.storage_class for t in rule.transitions])
    timed = [(t.storage_class, t.timing.days, t.timing.created_before_ms) for t in rule.transitions]
    by_days = [(cls, days) for cls, days, _ in timed if days is not None]
    # Older objects go colder: a colder class needs an earlier date, hence the minus.
    by_date = [(cls, -date) for cls, _, date in timed if date is not None]
    _check_ladder(rule, "the Transition", by_days)
    _check_ladder(rule, "the Transition", by_date)
    # Day counts and dates cannot be compared with each other, so each only with its kind.
    expire = rule.expiration.timing if rule.expiration is not None else None
    late = "every Transition must come before the Expiration."
    if expire is None:
        return
    if expire.days is not None and any(days >= expire.days for _, days in by_days):
        raise _bad(rule, late)
    if expire.created_before_ms is not None and any(
        -age <= expire.created_before_ms for _, age in by_date
    ):
        raise _bad(rule, late)


def _check_noncurrent(rule: LifecycleRule) -> None:
    days = rule.noncurrent_expiration_days
    if days is not None:
        _check_days(rule, "NoncurrentVersionExpiration NoncurrentDays", days)
    steps = [(nc.storage_class, nc.noncurrent_days) for nc in rule.noncurrent_transitions]
    for _, step_days in steps:
        _check_days(rule, "NoncurrentVersionTransition NoncurrentDays", step_days)
    _check_classes(rule, "a NoncurrentVersionTransition", [cls for cls, _ in steps])
    _check_ladder(rule, "the NoncurrentVersionTransition", steps)
    if days is not None and steps and max(step_days for _, step_days in steps) >= days:
        raise _bad(rule, "every NoncurrentVersionTransition must come before expiry.")


def _check_actions(rule: LifecycleRule) -> None:
    if rule.expiration is not None:
        _check_expiration(rule, rule.expiration)
    if not _action_kinds(rule):
        raise _bad(rule, "the rule has no action.")
    _check_transitions(rule)
    if rule.abort_multipart is not None:
        _check_timing(rule, "AbortMultipartUpload", rule.abort_multipart)
    _check_noncurrent(rule)


def _action_kinds(rule: LifecycleRule) -> set[str]:
    """The action types a rule carries, as named in OSS's overlap error."""
    expiration = rule.expiration or Expiration(None)
    present = {
        "Expiration": expiration.timing is not None,
        "ExpiredObjectDeleteMarker": expiration.expired_object_delete_marker,
        "Transition": bool(rule.transitions),
        "AbortMultipartUpload": rule.abort_multipart is not None,
        "NoncurrentVersionExpiration": rule.noncurrent_expiration_days is not None,
        "NoncurrentVersionTransition": bool(rule.noncurrent_transitions),
    }
    return {kind for kind, here in present.items() if here}


def validate(config: LifecycleConfiguration, allow_same_action_overlap: bool = False) -> None:
    """Refuse a configuration OSS would refuse (spec §9.12); the message names the rule.

    Overlap means one rule's prefix is a prefix of the other's (the empty prefix overlaps
    everything); two such rules may not share an action type unless the client sent
    `x-oss-allow-same-action-overlap: true`.
    """
    if not config.rules:
        raise ServiceError("MalformedXML", "A lifecycle configuration needs at least one Rule.")
    if len(config.rules) > MAX_RULES:
        raise ServiceError(
            "InvalidArgument", f"A lifecycle configuration holds at most {MAX_RULES} rules."
        )
    seen: set[str] = set()
    for rule in config.rules:
        if not rule.id:
            raise ServiceError("InvalidArgument", "Every lifecycle rule needs an ID.")
        if rule.id in seen:
            raise _bad(rule, "the ID is used by more than one rule.")
        seen.add(rule.id)
        _check_filters(rule)
        _check_actions(rule)
    if allow_same_action_overlap:
        return
    for index, first in enumerate(config.rules):
        for second in config.rules[index + 1 :]:
            a, b = first.prefix, second.prefix
            if not (a.startswith(b) or b.startswith(a)):
                continue
            shared = sorted(_action_kinds(first) & _action_kinds(second))
            if shared:
                raise ServiceError(
                    "InvalidArgument",
                    f"Overlap for same action type {shared[0]}: lifecycle rules "
                    f"{first.id!r} and {second.id!r} have overlapping prefixes.",
                )


# --- evaluation ---------------------------------------------------------------------------


def matches(rule: LifecycleRule, version: VersionFacts) -> bool:
    """Whether `rule` is enabled and its prefix, tags, size and Not filters admit `version`."""
    if not rule.enabled or not version.key.startswith(rule.prefix):
        return False
    if any(version.tags.get(tag.key) != tag.value for tag in rule.tags):
        return False
    if rule.size_greater_than is not None and not version.size > rule.size_greater_than:
        return False
    if rule.size_less_than is not None and not version.size < rule.size_less_than:
        return False
    return not any(_not_matches(clause, version.key, version.tags) for clause in rule.nots)


def _not_matches(clause: NotFilter, key: str, tags: Mapping[str, str]) -> bool:
    if not key.startswith(clause.prefix):
        return False
    return clause.tag is None or tags.get(clause.tag.key) == clause.tag.value


def _reached(timing: Timing, since_ms: int, modified_ms: int, now_ms: int, day_ms: int) -> bool:
    if timing.days is not None:
        return now_ms - since_ms >= timing.days * day_ms
    # A date rule concerns what was written before the date, whatever the time is now.
    return timing.created_before_ms is not None and modified_ms < timing.created_before_ms


def _colder(storage_class: str, than: str) -> bool:
    return _COLDNESS.get(storage_class, 0) > _COLDNESS.get(than, 0)


def _skips_small(transition: Transition | NoncurrentTransition, size: int) -> bool:
    small = size < SMALL_FILE_BYTES
    return small and transition.is_access_time and not transition.allow_small_file


def _start(transition: Transition | NoncurrentTransition, base: int, read: int | None) -> int:
    """Where a transition's age counts from: access-time rules need the object unread too."""
    if transition.is_access_time and read is not None:
        return max(base, read)
    return base


def due_action(
    config: LifecycleConfiguration, version: VersionFacts, now_ms: int, day_ms: int
) -> Action | None:
    """The single lifecycle action that applies to `version` at `now_ms`, if any.

    Expiration beats transition; among due transitions the coldest wins, and only a move
    to a colder class than the version's own counts. Delete markers are only removed by
    ExpiredObjectDeleteMarker, and only when nothing else of the key remains. A
    non-current version with unknown `noncurrent_since_ms` is left alone. Ties go to the
    earlier rule. `day_ms` is the length of a day, configurable so tests run in seconds.
    """
    rules = [rule for rule in config.rules if matches(rule, version)]
    if version.is_delete_marker:
        for rule in rules if version.only_version_left else []:
            if rule.expiration is not None and rule.expiration.expired_object_delete_marker:
                return Action("remove_delete_marker", rule.id)
        return None
    modified, access = version.last_modified_ms, version.last_access_ms
    candidates: list[tuple[str, Transition | NoncurrentTransition, Timing, int]]
    if version.is_current:
        for rule in rules:
            timing = rule.expiration.timing if rule.expiration is not None else None
            if timing is not None and _reached(timing, modified, modified, now_ms, day_ms):
                return Action("expire", rule.id)
        candidates = [
            (rule.id, t, t.timing, _start(t, modified, access))
            for rule in rules
            for t in rule.transitions
        ]
        kind: ActionKind = "transition"
    else:
        if version.noncurrent_since_ms is None:
            return None
        became = version.noncurrent_since_ms
        for rule in rules:
            days = rule.noncurrent_expiration_days
            if days is not None and now_ms - became >= days * day_ms:
                return Action("expire_noncurrent", rule.id)
        candidates = [
            (rule.id, nc, Timing(days=nc.noncurrent_days), _start(nc, became, access))
            for rule in rules
            for nc in rule.noncurrent_transitions
        ]
        kind = "transition_noncurrent"
    best: Action | None = None
    coldest = version.storage_class
    for rule_id, transition, timing, since in candidates:
        if _skips_small(transition, version.size):
            continue
        if _reached(timing, since, modified, now_ms, day_ms) and _colder(
            transition.storage_class, coldest
        ):
            best = Action(kind, rule_id, transition.storage_class)
            coldest = transition.storage_class
    return best


def abort_due(
    config: LifecycleConfiguration, key: str, initiated_ms: int, now_ms: int, day_ms: int
) -> str | None:
    """The ID of the first rule whose AbortMultipartUpload applies to an upload, if any.

    An upload has no tags and no final size yet: rules that require tags never match it,
    size filters are ignored, and only Not clauses without a tag can exclude it.
    """
    for rule in config.rules:
        timing = rule.abort_multipart
        if timing is None or not rule.enabled or rule.tags or not key.startswith(rule.prefix):
            continue
        if any(_not_matches(clause, key, {}) for clause in rule.nots):
            continue
        if _reached(timing, initiated_ms, initiated_ms, now_ms, day_ms):
            return rule.id
    return None


# --- storage ------------------------------------------------------------------------------


def config_to_json(config: LifecycleConfiguration) -> str:
    """A compact JSON text of `config`, for the database; `config_from_json` reverses it."""
    document = {"version": 1, **dataclasses.asdict(config)}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _decode(hint: Any, value: Any) -> Any:
    """`value` (parsed JSON) rebuilt as the type `hint`, checked all the way down."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):  # only ever `X | None` here
        inner = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        return None if value is None else _decode(inner, value)
    if origin is tuple and isinstance(value, list):
        return tuple(_decode(typing.get_args(hint)[0], item) for item in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = typing.get_type_hints(hint)
        names = [field.name for field in dataclasses.fields(hint)]
        if set(value) != set(names):
            raise ValueError(f"stored {hint.__name__} has fields {sorted(value)}")
        return hint(**{name: _decode(hints[name], value[name]) for name in names})
    # `type(...) is`, not isinstance: JSON true must not pass for an int.
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise ValueError(f"stored lifecycle configuration has {value!r} where {hint} belongs")


def config_from_json(text: str) -> LifecycleConfiguration:
    """The configuration `config_to_json` stored; ValueError if the text is not one.

    Not re-validated: a configuration accepted once stays readable even if validation
    later tightens.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or data.pop("version", None) != 1:
        raise ValueError("not a stored lifecycle configuration (version 1)")
    config = _decode(LifecycleConfiguration, data)
    assert isinstance(config, LifecycleConfiguration)
    return config
