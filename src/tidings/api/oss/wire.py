"""Small pieces of the OSS wire format: times, XML documents, URL encoding, headers."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote

from tidings.api.xml import DECLARATION, escape

XML_TYPE = "application/xml"


def iso8601(ms: int) -> str:
    """An XML timestamp as oss2 insists on it: UTC, truncated to the second, `.000Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ms // 1000))


def http_date(ms: int) -> str:
    """An RFC 1123 date (`Sat, 05 Dec 2015 11:04:39 GMT`)."""
    return email.utils.formatdate(ms / 1000, usegmt=True)


def parse_iso8601(value: str) -> int | None:
    """Epoch ms of an ISO 8601 UTC timestamp (with or without fraction), or None."""
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def url_encode(value: str) -> str:
    """Percent-encoding for `encoding-type=url`: spaces as %20, '+' as %2B, '/' encoded."""
    return quote(value, safe="-_.~")


class Encoder:
    """Encodes the fields an operation lists when the client asked for url encoding."""

    def __init__(self, encoding_type: str | None) -> None:
        self.url = (encoding_type or "").lower() == "url"

    def __call__(self, value: str) -> str:
        return url_encode(value) if self.url else value

    def element(self) -> str:
        """`<EncodingType>url</EncodingType>` when encoding, else nothing."""
        return "<EncodingType>url</EncodingType>" if self.url else ""


def el(name: str, value: str | int | bool | None) -> str:
    """`<name>value</name>` with the value escaped; booleans lower-case; None as empty."""
    if value is None:
        return f"<{name}></{name}>"
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    if isinstance(value, int):
        return f"<{name}>{value}</{name}>"
    return f"<{name}>{escape(value)}</{name}>"


def document(root: str, parts: Iterable[str]) -> bytes:
    """A response document: declaration, no namespace."""
    inner = "".join(parts)
    return f"{DECLARATION}<{root}>{inner}</{root}>".encode()


def owner(account_id: str) -> str:
    """The `<Owner>` element of listings and ACL documents."""
    return f"<Owner>{el('ID', account_id)}{el('DisplayName', account_id)}</Owner>"


def quoted_etag(etag: str) -> str:
    """ETags travel quoted."""
    return f'"{etag}"'
