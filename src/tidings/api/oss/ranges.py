"""The `Range` header of GetObject, with OSS's two behaviours (spec 7.2).

By default an invalid or unsatisfiable range is ignored and the whole object is sent.
With `x-oss-range-behavior: standard`, an end beyond the object is clamped, a start
at or beyond its end is `416 InvalidRange`, and so are several ranges.
"""

from __future__ import annotations

import re

from tidings.errors import ServiceError

_SPEC = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


def _invalid(header: str, size: int) -> ServiceError:
    return ServiceError(
        "InvalidRange",
        "The requested range is not satisfiable.",
        {"RangeRequested": header, "ActualObjectSize": str(size)},
    )


def parse_range(header: str | None, size: int, standard: bool) -> tuple[int, int] | None:
    """The byte range [start, end) to send, or None for the whole object."""
    if header is None or size == 0:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs:
        if standard:
            raise _invalid(header, size)
        return None
    items = specs.split(",")
    if len(items) > 1 and standard:
        raise _invalid(header, size)
    match = _SPEC.fullmatch(items[0])
    if match is None or (not match.group(1) and not match.group(2)):
        if standard:
            raise _invalid(header, size)
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # bytes=-n: the last n bytes
        count = int(last)
        if count == 0:
            if standard:
                raise _invalid(header, size)
            return None
        return max(size - count, 0), size
    start = int(first)
    end = int(last) + 1 if last else size
    if start >= size or end <= start:
        if standard:
            raise _invalid(header, size)
        return None
    if end > size:
        if not standard:
            return None
        end = size
    return start, end
