"""PutBucketLifecycle and GetBucketLifecycle bodies (spec §9.12) to and from the model.

Parsing is lenient where the SDKs differ (child order, `True` vs `true`, dates with or
without a fraction) and strict about shape: an unknown or repeated element is
`MalformedXML`, a value out of range is `InvalidArgument`. Rendering follows what `oss2`
insists on when reading: no namespace, `ID`/`Prefix`/`Status` always present, dates as
`YYYY-MM-DDT00:00:00.000Z`, lower-case booleans.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import uuid

from lxml import etree

from tidings.api.xml import DECLARATION, element, escape, local_name, malformed, parse, text
from tidings.errors import ServiceError
from tidings.services.lifecycle_rules import (
    MAX_RULES,
    Expiration,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentTransition,
    NotFilter,
    TagFilter,
    Timing,
    Transition,
    validate,
)

_Kids = dict[str, list[etree._Element]]

_DAY_MS = 86_400_000
_EPOCH = datetime.date(1970, 1, 1).toordinal()
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00:?00)?)?"
)
_NUMBER = re.compile(r"[0-9]{1,19}")  # longer cannot fit any limit and could be costly
_FLAGS = ("IsAccessTime", "ReturnToStdWhenVisit", "AllowSmallFile")
_REPEATED = {"Tag", "Transition", "NoncurrentVersionTransition"}
# AtimeBase is GET-only, but v2 sends it back when a fetched rule is put again.
_RULE_CHILDREN = _REPEATED | {"ID", "Prefix", "Status", "Filter", "Expiration", "AtimeBase"}
_RULE_CHILDREN |= {"AbortMultipartUpload", "NoncurrentVersionExpiration"}


def _bad(message: str) -> ServiceError:
    return ServiceError("InvalidArgument", message)


def _children(
    node: etree._Element, allowed: set[str], repeatable: frozenset[str] | set[str] = frozenset()
) -> _Kids:
    """`node`'s children by name, refusing names outside `allowed` and unwanted repeats."""
    kids: _Kids = {}
    parent = local_name(node)
    for child in node:
        name = local_name(child)
        if name not in allowed:
            raise malformed(f"<{name}> is not expected inside <{parent}>.")
        kids.setdefault(name, []).append(child)
        if name not in repeatable and len(kids[name]) > 1:
            raise malformed(f"<{name}> appears more than once inside <{parent}>.")
    return kids


def _string(kids: _Kids, name: str) -> str | None:
    found = kids.get(name)
    return text(found[0]) if found else None


def _required(kids: _Kids, name: str, parent: str) -> str:
    value = _string(kids, name)
    if value is None:
        raise malformed(f"<{parent}> needs a <{name}>.")
    return value


def _number(value: str, what: str) -> int:
    if not _NUMBER.fullmatch(value.strip()):
        raise _bad(f"{what} must be a non-negative integer, got {value!r}.")
    return int(value)


def _boolean(value: str, what: str) -> bool:
    # oss2 writes str(True); anything but a spelling of true/false is refused.
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise _bad(f"{what} must be true or false, got {value!r}.")
    return lowered == "true"


def _date(value: str, what: str) -> int:
    """Epoch ms of an ISO date at midnight UTC; v2 and oss2 spell it differently."""
    found = _DATE.fullmatch(value.strip())
    if found is None:
        raise _bad(f"{what} must be an ISO 8601 date such as 2023-01-01T00:00:00.000Z.")
    year, month, day, hour, minute, second, fraction, _ = found.groups()
    if any(part not in (None, "00") for part in (hour, minute, second)) or (
        fraction and fraction.strip("0")
    ):
        raise _bad(f"{what} must be at midnight UTC (T00:00:00.000Z).")
    try:
        date = datetime.date(int(year), int(month), int(day))
    except ValueError:
        raise _bad(f"{what} {value!r} is not a calendar date.") from None
    return (date.toordinal() - _EPOCH) * _DAY_MS


def _timing(kids: _Kids, parent: str, legacy_date: bool = False) -> Timing | None:
    names = ["Days", "CreatedBeforeDate"] + (["Date"] if legacy_date else [])
    present = [name for name in names if name in kids]
    if len(present) > 1:
        raise _bad(f"<{parent}> takes only one of {', '.join(names)}.")
    if not present:
        return None
    value = _required(kids, present[0], parent)
    if present[0] == "Days":
        return Timing(days=_number(value, f"{parent} Days"))
    # The model has no legacy Date: it is kept as CreatedBeforeDate (objects written before
    # it), whereas real OSS would also delete objects written after the date had passed.
    return Timing(created_before_ms=_date(value, f"{parent} {present[0]}"))


def _tag(node: etree._Element) -> TagFilter:
    kids = _children(node, {"Key", "Value"})
    return TagFilter(_required(kids, "Key", "Tag"), _string(kids, "Value") or "")


def _flags(kids: _Kids, parent: str) -> dict[str, bool]:
    attributes = ("is_access_time", "return_to_std_when_visit", "allow_small_file")
    return {
        attribute: _boolean(value, f"{parent} {name}")
        for attribute, name in zip(attributes, _FLAGS, strict=True)
        if (value := _string(kids, name)) is not None
    }


def _transition(node: etree._Element) -> Transition:
    kids = _children(node, {"Days", "CreatedBeforeDate", "StorageClass", *_FLAGS})
    timing = _timing(kids, "Transition")
    if timing is None:
        raise malformed("<Transition> needs <Days> or <CreatedBeforeDate>.")
    storage_class = _required(kids, "StorageClass", "Transition").strip()
    return Transition(timing, storage_class, **_flags(kids, "Transition"))


def _noncurrent_transition(node: etree._Element) -> NoncurrentTransition:
    name = "NoncurrentVersionTransition"
    kids = _children(node, {"NoncurrentDays", "StorageClass", *_FLAGS})
    days = _number(_required(kids, "NoncurrentDays", name), f"{name} NoncurrentDays")
    storage_class = _required(kids, "StorageClass", name).strip()
    return NoncurrentTransition(days, storage_class, **_flags(kids, name))


def _expiration(node: etree._Element) -> Expiration:
    kids = _children(node, {"Days", "CreatedBeforeDate", "Date", "ExpiredObjectDeleteMarker"})
    timing = _timing(kids, "Expiration", legacy_date=True)
    marker = _string(kids, "ExpiredObjectDeleteMarker")
    if timing is None and marker is None:
        raise malformed("<Expiration> needs Days, CreatedBeforeDate or ExpiredObjectDeleteMarker.")
    deletes_markers = marker is not None and _boolean(marker, "ExpiredObjectDeleteMarker")
    return Expiration(timing, deletes_markers)


def _filter(node: etree._Element) -> tuple[int | None, int | None, tuple[NotFilter, ...]]:
    kids = _children(node, {"ObjectSizeGreaterThan", "ObjectSizeLessThan", "Not"}, {"Not"})
    sizes = [
        None if value is None else _number(value, name)
        for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan")
        for value in [_string(kids, name)]
    ]
    nots = []
    for clause in kids.get("Not", []):
        parts = _children(clause, {"Prefix", "Tag"})
        tag = _tag(parts["Tag"][0]) if "Tag" in parts else None
        nots.append(NotFilter(_string(parts, "Prefix") or "", tag))
    return sizes[0], sizes[1], tuple(nots)


def _rule(node: etree._Element) -> LifecycleRule:
    kids = _children(node, _RULE_CHILDREN, _REPEATED)
    rule_id = _string(kids, "ID") or ""
    status = _required(kids, "Status", "Rule").strip()
    if status not in ("Enabled", "Disabled"):
        raise _bad(f"Lifecycle rule {rule_id!r}: Status must be Enabled or Disabled.")
    low = high = None
    nots: tuple[NotFilter, ...] = ()
    if "Filter" in kids:
        low, high, nots = _filter(kids["Filter"][0])
    abort = None
    if "AbortMultipartUpload" in kids:
        abort_kids = _children(kids["AbortMultipartUpload"][0], {"Days", "CreatedBeforeDate"})
        abort = _timing(abort_kids, "AbortMultipartUpload")
        if abort is None:
            raise malformed("<AbortMultipartUpload> needs <Days> or <CreatedBeforeDate>.")
    noncurrent_days = None
    if "NoncurrentVersionExpiration" in kids:
        name = "NoncurrentVersionExpiration"
        nc_kids = _children(kids[name][0], {"NoncurrentDays"})
        noncurrent_days = _number(_required(nc_kids, "NoncurrentDays", name), name)
    return LifecycleRule(
        id=rule_id,
        prefix=_string(kids, "Prefix") or "",
        enabled=status == "Enabled",
        tags=tuple(_tag(tag) for tag in kids.get("Tag", [])),
        size_greater_than=low,
        size_less_than=high,
        nots=nots,
        expiration=_expiration(kids["Expiration"][0]) if "Expiration" in kids else None,
        transitions=tuple(_transition(t) for t in kids.get("Transition", [])),
        abort_multipart=abort,
        noncurrent_expiration_days=noncurrent_days,
        noncurrent_transitions=tuple(
            _noncurrent_transition(t) for t in kids.get("NoncurrentVersionTransition", [])
        ),
    )


def parse_lifecycle(body: bytes, allow_same_action_overlap: bool = False) -> LifecycleConfiguration:
    """The validated configuration a PutBucketLifecycle body describes.

    `MalformedXML` for a body that is not XML or not of this schema, `InvalidArgument`
    for values out of range. A rule without an ID gets a fresh unique one.
    `allow_same_action_overlap` carries the `x-oss-allow-same-action-overlap` header.
    """
    root = parse(body)
    if local_name(root) != "LifecycleConfiguration":
        raise malformed("the root element must be <LifecycleConfiguration>.")
    nodes = _children(root, {"Rule"}, {"Rule"}).get("Rule", [])
    if len(nodes) > MAX_RULES:  # refused before the work of reading them all
        raise _bad(f"A lifecycle configuration holds at most {MAX_RULES} rules.")
    parsed = [_rule(node) for node in nodes]
    taken = {rule.id for rule in parsed}
    rules = []
    for rule in parsed:
        while not rule.id:
            fresh = str(uuid.uuid4())
            if fresh not in taken:
                rule = dataclasses.replace(rule, id=fresh)
                taken.add(fresh)
        rules.append(rule)
    config = LifecycleConfiguration(tuple(rules))
    validate(config, allow_same_action_overlap)
    return config


def _render_date(epoch_ms: int) -> str:
    day = datetime.date.fromordinal(_EPOCH + epoch_ms // _DAY_MS)
    return f"{day.isoformat()}T00:00:00.000Z"


def _render_timing(timing: Timing) -> str:
    if timing.days is not None:
        return element("Days", timing.days)
    if timing.created_before_ms is not None:
        return element("CreatedBeforeDate", _render_date(timing.created_before_ms))
    return ""


def _render_flags(t: Transition | NoncurrentTransition) -> str:
    values = (t.is_access_time, t.return_to_std_when_visit, t.allow_small_file)
    return "".join(f"<{name}>true</{name}>" for name, on in zip(_FLAGS, values, strict=True) if on)


def _render_tag(tag: TagFilter) -> str:
    return f"<Tag>{element('Key', tag.key)}{element('Value', tag.value)}</Tag>"


def _render_rule(rule: LifecycleRule) -> str:
    parts = [
        element("ID", rule.id),
        element("Prefix", rule.prefix),
        element("Status", "Enabled" if rule.enabled else "Disabled"),
    ]
    low, high = rule.size_greater_than, rule.size_less_than
    if low is not None or high is not None or rule.nots:
        parts.append("<Filter>")
        if low is not None:
            parts.append(element("ObjectSizeGreaterThan", low))
        if high is not None:
            parts.append(element("ObjectSizeLessThan", high))
        for clause in rule.nots:
            tag = _render_tag(clause.tag) if clause.tag is not None else ""
            parts.append(f"<Not><Prefix>{escape(clause.prefix)}</Prefix>{tag}</Not>")
        parts.append("</Filter>")
    parts.extend(_render_tag(tag) for tag in rule.tags)
    for t in rule.transitions:
        body = _render_timing(t.timing) + element("StorageClass", t.storage_class)
        parts.append(f"<Transition>{body}{_render_flags(t)}</Transition>")
    if rule.expiration is not None:
        body = _render_timing(rule.expiration.timing) if rule.expiration.timing else ""
        if rule.expiration.expired_object_delete_marker:
            body += "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
        parts.append(f"<Expiration>{body}</Expiration>")
    if rule.abort_multipart is not None:
        body = _render_timing(rule.abort_multipart)
        parts.append(f"<AbortMultipartUpload>{body}</AbortMultipartUpload>")
    for nc in rule.noncurrent_transitions:
        body = element("NoncurrentDays", nc.noncurrent_days)
        body += element("StorageClass", nc.storage_class) + _render_flags(nc)
        parts.append(f"<NoncurrentVersionTransition>{body}</NoncurrentVersionTransition>")
    if rule.noncurrent_expiration_days is not None:
        body = element("NoncurrentDays", rule.noncurrent_expiration_days)
        parts.append(f"<NoncurrentVersionExpiration>{body}</NoncurrentVersionExpiration>")
    return "<Rule>" + "".join(parts) + "</Rule>"


def render_lifecycle(config: LifecycleConfiguration) -> bytes:
    """The GetBucketLifecycle body for `config`: no namespace, only elements that apply."""
    rules = "".join(_render_rule(rule) for rule in config.rules)
    document = f"{DECLARATION}<LifecycleConfiguration>{rules}</LifecycleConfiguration>"
    return document.encode("utf-8")
