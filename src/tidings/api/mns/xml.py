"""The MNS flavour of the XML wire format: a default namespace on every document.

The hardened parser and the escaped-string writer live in `tidings.api.xml`; the
client requires a default namespace and no prefixes, and Python-style booleans.
"""

from __future__ import annotations

from collections.abc import Iterable

from tidings.api.xml import DECLARATION, element, escape, fields, local_name, malformed, parse, text

__all__ = [
    "NAMESPACE",
    "boolean",
    "document",
    "element",
    "escape",
    "fields",
    "local_name",
    "malformed",
    "parse",
    "text",
]

NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"


def document(root: str, parts: Iterable[str]) -> bytes:
    """A whole response document with the MNS default namespace on `root`."""
    inner = "".join(parts)
    if not inner:
        return f'{DECLARATION}<{root} xmlns="{NAMESPACE}"/>'.encode()
    return f'{DECLARATION}<{root} xmlns="{NAMESPACE}">{inner}</{root}>'.encode()


def boolean(value: bool) -> str:
    """A boolean as the SDK expects it in responses."""
    return "True" if value else "False"
