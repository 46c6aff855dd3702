"""One OSS request as the handlers see it: addressing decoded, query split, body streams.

Path style (`/bucket/key`) always; virtual-hosted style (`bucket.domain/key`) when the
Host ends with a configured domain. The key is the percent-decoded rest of the path,
never normalised ('//' and '..' are parts of keys, not of a file system).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, unquote_to_bytes

from tidings.api.http import Receive, Request
from tidings.auth.oss import Authenticated
from tidings.errors import ServiceError
from tidings.services.object_events import Origin
from tidings.services.objects import check_md5_bytes

# Bodies the server parses in memory (XML documents, form fields) are capped: the
# largest, DeleteMultipleObjects with 1000 keys, is at most about 2 MB.
MAX_XML_BYTES = 2 * 1024 * 1024 + 64 * 1024


@dataclass(slots=True)
class OssCall:
    """An authenticated OSS request, ready for a handler."""

    request: Request
    receive: Receive
    bucket: str | None
    key: str | None
    params: dict[str, str]
    query: list[tuple[str, str]]
    request_id: str
    host: str
    auth: Authenticated = field(default_factory=lambda: Authenticated(None, "anonymous"))
    # Who the events of this request name; set once the request is authenticated.
    origin: Origin | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Request headers with lower-case names."""
        return self.request.headers

    @property
    def method(self) -> str:
        """The HTTP method."""
        return self.request.method

    def has(self, name: str) -> bool:
        """Whether the query carries `name` (with or without a value)."""
        return name in self.params

    def body_stream(self) -> AsyncIterator[bytes]:
        """The request body as it arrives (uvicorn has already undone chunked encoding)."""
        return _stream(self.receive)

    def declared_size(self) -> int | None:
        """The Content-Length, or None for a chunked body; 411 when neither is given."""
        length = self.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ServiceError("InvalidArgument", "Content-Length is not a number.")
            return int(length)
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return None
        raise ServiceError("MissingContentLength", "You must provide the Content-Length header.")

    async def read_body(self, limit: int = MAX_XML_BYTES) -> bytes:
        """The whole body of a small request, checked against its Content-Length and
        Content-MD5; EntityTooLarge beyond `limit`."""
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ServiceError("EntityTooLarge", f"The request body exceeds {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.body_stream():
            size += len(chunk)
            if size > limit:
                raise ServiceError("EntityTooLarge", f"The request body exceeds {limit} bytes.")
            chunks.append(chunk)
        body = b"".join(chunks)
        if declared is not None and declared.isdigit() and size != int(declared):
            # The client went away mid-body: never act on a truncated document.
            raise ServiceError(
                "IncompleteBody", f"The request body was cut short: {size} of {declared} bytes."
            )
        if "content-md5" in self.headers:  # spec 5.2: every body that carries one
            check_md5_bytes(self.headers["content-md5"], body)
        return body


async def _stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Only `more_body: False` ends a body; a chunked one has no length to check
            # against, so a disconnect must fail the write rather than end it early.
            raise ServiceError(
                "IncompleteBody", "The client disconnected before the request body ended."
            )
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def split_query(query_string: str) -> list[tuple[str, str]]:
    """Query parameters decoded with form rules ('+' is a space), in wire order."""
    pairs: list[tuple[str, str]] = []
    for item in query_string.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def decode_path(raw_path: str) -> str:
    """The percent-decoded path ('+' stays a plus); InvalidObjectName if not UTF-8."""
    try:
        return unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(
            "InvalidObjectName", "The object name is not valid UTF-8 once percent-decoded."
        ) from None


def address(path: str, host: str, domains: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(bucket, key) of a request; None for the service level or the bucket level."""
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for domain in domains:
        suffix = "." + domain
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            bucket = hostname[: -len(suffix)]
            if "." not in bucket:
                key = path[1:] if path.startswith("/") else path
                return bucket, key or None
    if not path.startswith("/") or path == "/":
        return None, None
    bucket, _, key = path[1:].partition("/")
    return bucket or None, key or None
