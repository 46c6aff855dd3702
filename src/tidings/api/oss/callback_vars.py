"""Upload-callback custom variables (`x-oss-callback-var`), which events carry as xVars.

The header (or the `callback-var` query parameter of a presigned URL) is the Base64 of
a JSON object whose names start with `x:` and are lower case (spec 10.1). PostObject
sends each variable as its own `x:<name>` form field instead.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from tidings.errors import ServiceError


def _invalid(detail: str) -> ServiceError:
    return ServiceError(
        "InvalidArgument",
        f"x-oss-callback-var is not valid: {detail}",
        {"ArgumentName": "x-oss-callback-var"},
    )


def _checked(variables: Mapping[str, object]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in variables.items():
        if not name.startswith("x:") or name != name.lower() or len(name) < 3:
            raise _invalid(f"the variable name {name!r} must start with 'x:' and be lower case.")
        if not isinstance(value, str):
            raise _invalid(f"the value of {name!r} must be a string.")
        checked[name] = value
    return checked


def parse_callback_var(encoded: str | None) -> dict[str, str]:
    """The variables of an `x-oss-callback-var` value; InvalidArgument when malformed."""
    if not encoded:
        return {}
    try:
        decoded = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid("it must be the Base64 of a JSON object.") from None
    if not isinstance(decoded, dict):
        raise _invalid("it must be the Base64 of a JSON object.")
    return _checked(decoded)


def form_variables(fields: Mapping[str, str]) -> dict[str, str]:
    """The `x:<name>` fields of a PostObject form (names already lower-cased)."""
    return _checked({name: value for name, value in fields.items() if name.startswith("x:")})
