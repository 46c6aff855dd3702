"""Hardened XML parsing and a small escaped-string writer, shared by the wire APIs.

Parsing refuses DTDs and entity declarations outright (no billion laughs, no external
entities), never touches the network, and keeps libxml2's default depth and size
limits. Rendering writes strings directly: the documents are flat and small.
"""

from __future__ import annotations

import re

from lxml import etree

from tidings.errors import ServiceError

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# '\r' is written as a character reference: a parser would turn a raw one into '\n'.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"})
# Characters XML 1.0 cannot carry even escaped; a stored body may hold them only if a
# client sent them raw in a tolerant encoding, so they are replaced rather than emitted.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NEEDS_WORK = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')


def malformed(detail: str) -> ServiceError:
    """The request body is not XML we accept."""
    return ServiceError("MalformedXML", f"The request body is not valid XML: {detail}")


def parse(body: bytes) -> etree._Element:
    """Parse a request body, refusing DTDs, entities and anything not well formed."""
    if not body.strip():
        raise malformed("the body is empty.")
    if _DTD.search(body):
        raise malformed("DTDs and entity declarations are not accepted.")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise malformed(str(exc)) from None
    # The byte check above misses a DTD in UTF-16/32; the parsed tree does not.
    if root.getroottree().docinfo.internalDTD is not None:
        raise malformed("DTDs and entity declarations are not accepted.")
    return root


def local_name(element: etree._Element) -> str:
    """An element's tag without its namespace."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def fields(element: etree._Element) -> dict[str, etree._Element]:
    """An element's children by local name (the last one wins on repeats)."""
    return {local_name(child): child for child in element}


def text(element: etree._Element | None) -> str | None:
    """An element's whole text content, or None when the element is absent."""
    if element is None:
        return None
    return "".join(str(part) for part in element.itertext())


def escape(value: str) -> str:
    """Escape text for element content."""
    if _NEEDS_WORK.search(value) is None:  # the common case: Base64 bodies, names
        return value
    return _NOT_XML.sub("\ufffd", value).translate(_ESCAPES)


def element(name: str, value: str | int) -> str:
    """`<name>value</name>`, with the value escaped."""
    if isinstance(value, int):
        return f"<{name}>{value}</{name}>"
    return f"<{name}>{escape(value)}</{name}>"
