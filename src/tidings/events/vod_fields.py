"""Typed fields of VOD event bodies: types, defaults, presence, coercion and rendering.

Pure machinery behind `tidings.events.vod`: an event body is a table of `Field`s in the
documented member order. `coerce_all` turns loosely typed input (CLI `k=v` strings or
JSON values) into each field's type, refusing unknown names and wrong types with a
helpful message; `render` lays the members out in table order, filling defaults by the
field's presence rule (always, only on success, only on failure, only when given).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tidings.errors import invalid_argument

# "items": a JSON array of objects, each rendered with `Field.items`; "changes": an
# object whose members are JSON strings; "jsonstr": a string holding JSON.
Kind = Literal["str", "int", "float", "bool", "json", "jsonstr", "items", "changes"]
# always; only when the event succeeded / failed (unless given); only when given.
Presence = Literal["always", "ok", "fail", "given"]
EXTEND_MAX_BYTES = 512
# Ids a list item (a stream, a snapshot job) shares with its event; the rest are its own.
SHARED_IDS = ("VideoId",)
_INTEGER = re.compile(r"-?[0-9]+")


def event_time(ms: int) -> str:
    """`yyyy-MM-ddTHH:mm:ssZ` in UTC, the documented EventTime format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def compact(value: object) -> str:
    """Compact UTF-8 JSON, members in insertion order."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class Context:
    """What defaults are computed from: the event, the time, and its generated ids."""

    event_type: str
    now_ms: int
    region: str
    account_id: str
    given: Mapping[str, object]
    ok: bool = True
    ids: dict[str, str] = field(default_factory=dict)

    def id(self, name: str) -> str:
        """The given id `name`, else one generated once per event (32 hex, like VOD's)."""
        value = self.given.get(name)
        if isinstance(value, str) and value:
            return value
        return self.ids.setdefault(name, uuid.uuid4().hex)

    def item(self, given: Mapping[str, object]) -> Context:
        """The context of a list item: its own fields and job ids, the same video."""
        ids = {name: self.id(name) for name in SHARED_IDS}
        return Context(self.event_type, self.now_ms, self.region, self.account_id, given, ids=ids)

    def later(self, seconds: int) -> str:
        """An EventTime-style time `seconds` after now (negative: before)."""
        return event_time(self.now_ms + seconds * 1000)


Default = Callable[[Context], object]


@dataclass(frozen=True, slots=True)
class Field:
    """One member of an event body."""

    name: str
    kind: Kind = "str"
    presence: Presence = "always"
    default: Default | None = None
    items: tuple[Field, ...] = ()  # the members of each item of an "items" field


def F(
    name: str,
    kind: Kind = "str",
    when: Presence = "always",
    default: object = None,
    items: tuple[Field, ...] = (),
) -> Field:
    """A field; `default` is a constant or a function of the `Context`."""
    if default is not None and not callable(default):
        default = constant(default)
    return Field(name, kind, when, default, items)


def constant(value: object) -> Default:
    """A default that is always `value`."""
    return lambda _: value


def render(
    fields: tuple[Field, ...],
    values: Mapping[str, object],
    context: Context,
    *,
    ok: bool | None = None,
    words: tuple[str, str] | None = None,
) -> dict[str, object]:
    """Fields in table order: given values, else defaults when their presence says so."""
    success, failure = words or ("success", "fail")
    status = values.get("Status")
    if status is None:
        status = success if ok is None or ok else failure
    if status not in (success, failure):
        raise invalid_argument(f"Status must be {success!r} or {failure!r}, not {status!r}.")
    context.ok = status == success
    result: dict[str, object] = {}
    for spec in fields:
        if spec.name in values:
            result[spec.name] = values[spec.name]
        elif spec.name == "Status":
            result["Status"] = status
        elif (
            spec.presence in ("always", "ok" if context.ok else "fail") and spec.default is not None
        ):
            result[spec.name] = spec.default(context)
    return result


def coerce_all(
    fields: tuple[Field, ...], given: Mapping[str, object], context: Context, where: str
) -> dict[str, object]:
    """Every given value coerced to its field's type; an unknown name is refused with the
    nearest known one (`where` names a list item in messages)."""
    by_name = {f.name: f for f in fields}
    values: dict[str, object] = {}
    for name, value in given.items():
        spec = by_name.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, by_name, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise invalid_argument(
                f"{context.event_type}{where} has no field {name!r}{hint}: use"
                f" {', '.join(by_name)}."
            )
        values[name] = coerce(spec, value, context)
    return values


def coerce(spec: Field, value: object, context: Context) -> object:
    """`value` as the field's type; CLI strings are parsed, wrong JSON types refused."""
    kind, name = spec.kind, spec.name
    wrong = invalid_argument(f"{name} must be {KIND_NAMES[kind]}, not {value!r}.")
    if kind == "str":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise wrong
        return str(value)
    if kind == "int":
        if isinstance(value, str):
            if not _INTEGER.fullmatch(value.strip()):
                raise wrong
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong
    if kind == "float":
        try:
            number = float(value) if isinstance(value, str | int | float) else math.nan
        except ValueError:
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            raise wrong
        return number
    if kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, bool):
            return value
        raise wrong
    if kind == "jsonstr":
        if isinstance(value, dict | list):
            value = compact(value)
        if not isinstance(value, str):
            raise wrong
        if name == "Extend" and len(value.encode()) > EXTEND_MAX_BYTES:
            raise invalid_argument(f"Extend is at most {EXTEND_MAX_BYTES} bytes.")
        return value
    if kind == "json":
        # A string that is not JSON is a plain string value (e.g. comma-joined JobIds).
        try:
            return json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return value
    parsed = parse_json(name, value) if isinstance(value, str) else value
    if kind == "changes":
        if not isinstance(parsed, dict):
            raise wrong
        # Each member is itself a JSON string {"OldValue":...,"NewValue":...} (§4.5).
        return {
            key: item if isinstance(item, str) else compact(item) for key, item in parsed.items()
        }
    if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
        raise wrong
    fields = spec.items
    items = []
    for number, item in enumerate(parsed, 1):
        item_context = context.item(item)
        values = coerce_all(fields, item, item_context, f" {name}[{number}]")
        items.append(render(fields, values, item_context))
    return items


def parse_json(name: str, text: str) -> object:
    """`text` as JSON, or a refusal naming the field."""
    try:
        return json.loads(text)
    except ValueError as error:
        raise invalid_argument(f"{name} is not valid JSON: {error}.") from None


KIND_NAMES: dict[Kind, str] = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "json": "JSON",
    "jsonstr": "a JSON string (or an object, which is serialised)",
    "items": "a JSON array of objects",
    "changes": 'an object like {"Title":{"OldValue":"a","NewValue":"b"}}',
}
