"""Request parameters of the control plane: decoding and typed, validated access.

The SDK sends scalars as strings (`True`/`False` for booleans), objects as one JSON
string parameter (`DlqPolicy={"Enabled":true,...}`) and tag lists flattened
(`Tag.1.Key=...`). Every refusal names the parameter and the accepted form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tidings.errors import ServiceError, invalid_argument

_INTEGER = re.compile(r"-?[0-9]{1,18}")
PAGE_NUM_DEFAULT = 1
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_RANGE = (10, 50)
PAGE_NUM_MAX = 100_000_000


def parse_form(text: str, where: str) -> list[tuple[str, str]]:
    """Decode `a=b&c=d` form encoding ('+' is a space), keeping names' case and blanks."""
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise invalid_argument(f"The {where} is not valid percent-encoded UTF-8.") from None


def missing(name: str) -> ServiceError:
    """`Missing<Name>`, the cloud's code for an absent mandatory parameter."""
    return ServiceError(f"Missing{name}", f"{name} is mandatory for this action.")


def unsupported(what: str, instead: str) -> ServiceError:
    """A feature of the cloud API that Tidings does not implement, and what to do instead."""
    return ServiceError("UnsupportedOperation", f"{what} is not supported by Tidings; {instead}.")


@dataclass(frozen=True, slots=True)
class Page:
    """A clamped page request: 1-based number and size."""

    number: int
    size: int

    def slice(self, total: int) -> tuple[int, int]:
        """The [start, end) indexes of this page among `total` items."""
        start = min((self.number - 1) * self.size, total)
        return start, min(start + self.size, total)

    def envelope(self, total: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        """The paged `Data` object: PageNum, PageSize, Pages, Size, Total, PageData."""
        return {
            "PageNum": self.number,
            "PageSize": self.size,
            "Pages": -(-total // self.size),
            "Size": len(items),
            "Total": total,
            "PageData": items,
        }


class Params:
    """The parameters of one call by name (case-sensitive, as the API defines them)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        """The raw value, or None when absent."""
        return self.values.get(name)

    def require(self, name: str) -> str:
        """A mandatory, non-empty parameter."""
        value = self.values.get(name)
        if not value:
            raise missing(name)
        return value

    def integer(self, name: str) -> int | None:
        """An integer parameter, or None when absent."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        return as_integer(name, value)

    def boolean(self, name: str) -> bool | None:
        """A boolean parameter (`true`/`false` in any case), or None when absent."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        return as_boolean(name, value)

    def json_object(self, name: str) -> dict[str, Any] | None:
        """A parameter whose value is a JSON object, or None when absent."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise invalid_argument(
                f'{name} must be a JSON object such as {{"Enabled":true}}, not {value!r}.'
            )
        return parsed

    def refuse_tags(self) -> None:
        """Tags are not stored by Tidings: refuse them rather than silently drop them."""
        if any(name == "Tag" or name.startswith("Tag.") for name in self.values):
            raise unsupported(
                "Tagging (Tag.N.Key / Tag.N.Value)", "remove the Tag parameters from the request"
            )

    def page(self) -> Page:
        """PageNum and PageSize, clamped as the cloud does: 1.. and 10..50 (default 20)."""
        number = self.integer("PageNum")
        size = self.integer("PageSize")
        number = PAGE_NUM_DEFAULT if number is None else min(max(number, 1), PAGE_NUM_MAX)
        low, high = PAGE_SIZE_RANGE
        size = PAGE_SIZE_DEFAULT if size is None else min(max(size, low), high)
        return Page(number, size)


def as_integer(name: str, value: object) -> int:
    """An integer from a parameter or a JSON member (number or decimal string)."""
    if isinstance(value, bool):
        raise invalid_argument(f"{name} must be an integer, not {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise invalid_argument(f"{name} must be an integer, not {value!r}.")


def as_boolean(name: str, value: object) -> bool:
    """A boolean from a parameter or a JSON member (`true`/`false`, any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_argument(f"{name} must be true or false, not {value!r}.")


def enabled(policy: dict[str, Any] | None, name: str) -> bool:
    """Whether a `{"Enabled": ...}` policy object is switched on (absent: off)."""
    if policy is None or policy.get("Enabled") is None:
        return False
    return as_boolean(f"{name}.Enabled", policy["Enabled"])


def refuse_unsupported(params: Params, type_param: str | None) -> None:
    """Refuse the cloud features Tidings does not have, instead of ignoring them."""
    params.refuse_tags()
    if type_param is not None:
        kind = params.get(type_param)
        if kind not in (None, "", "normal"):
            raise unsupported(
                f"{type_param} {kind!r}",
                f"omit {type_param} or give 'normal' (FIFO is not offered)",
            )
    if params.boolean("EnableSSE"):
        raise unsupported("Server-side encryption (EnableSSE=true)", "omit EnableSSE or set false")
    for name in ("SseType", "SseAlgorithm", "KmsKeyId"):
        if params.get(name):
            raise unsupported(f"{name}", f"omit {name} (server-side encryption is not offered)")
    if enabled(params.json_object("TenantRateLimitPolicy"), "TenantRateLimitPolicy"):
        raise unsupported("TenantRateLimitPolicy", 'omit it or send {"Enabled":false}')
