"""Streaming multipart/form-data parser for OSS PostObject (spec 7.9).

The form fields come first and are small, so they are read into memory; the `file` part
is last and may be gigabytes, so it is handed to the caller as a stream read straight
from the ASGI `receive`. The parser only ever holds the fields, one part's headers, and
one received chunk plus a boundary's worth of look-behind.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

from tidings.api.http import Receive
from tidings.errors import ServiceError

FIELD_LIMIT = 4096  # bytes per non-file field (spec 7.9: FieldItemTooLong)

# RFC 2046 caps boundaries at 70 characters; a little slack costs nothing and the cap
# keeps the look-behind small.
_BOUNDARY_LIMIT = 200
# One part's header block; real ones are a Content-Disposition and maybe a Content-Type.
_HEADERS_LIMIT = 8192
# Transport padding allowed between a boundary and its CRLF (RFC 2046 LWSP).
_PADDING_LIMIT = 256

# `; key=value` or `; key="quoted value"`; `\\.` keeps an escaped quote inside the string.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
# Only `\"` and `\\` are unescaped: browsers send Windows paths (`C:\dir\a.txt`) raw.
_QUOTED_PAIR = re.compile(r'\\([\\"])')


@dataclass(slots=True)
class PostForm:
    """A PostObject form: the fields before the file, and the file as a stream."""

    fields: dict[str, str]
    file_name: str
    file_content_type: str | None
    file: AsyncIterator[bytes]


def _malformed(message: str) -> ServiceError:
    return ServiceError("MalformedPOSTRequest", message)


def _too_many_files() -> ServiceError:
    return ServiceError(
        "IncorrectNumberOfFilesInPOSTRequest", "POST requires exactly one file upload per request."
    )


class _Body:
    """The request body as a growing buffer that the parser consumes from the front."""

    __slots__ = ("_receive", "buf", "consumed", "ended")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.buf = bytearray()
        self.consumed = 0
        self.ended = False

    async def fill(self) -> bool:
        """Append the next non-empty chunk; False once the body has no more."""
        while not self.ended:
            message = await self._receive()
            if message["type"] != "http.request":
                self.ended = True  # http.disconnect: the client is gone
                break
            self.ended = not message.get("more_body", False)
            chunk = message.get("body", b"")
            if chunk:
                self.buf += chunk
                return True
        return False

    async def need(self, size: int) -> None:
        """Make the buffer hold at least `size` bytes, or fail as a cut-short body."""
        while len(self.buf) < size:
            if not await self.fill():
                raise _malformed("The request body ended before the closing boundary.")

    async def find(self, token: bytes, limit: int) -> int | None:
        """Index of `token` in the buffer, reading more as needed; None past `limit` bytes."""
        start = 0
        while (index := self.buf.find(token, start)) < 0:
            # Bytes before the last len(token)-1 cannot be part of a later match.
            start = max(0, len(self.buf) - len(token) + 1)
            if start > limit:
                return None
            await self.need(len(self.buf) + 1)
        return index if index <= limit else None

    def take(self, size: int) -> bytes:
        """Remove and return the first `size` bytes."""
        data = bytes(self.buf[:size])
        del self.buf[:size]
        self.consumed += size
        return data


def _parse_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `type; k=v; k2="v 2"` into the lower-case type and lower-case-keyed params.

    An RFC 5987 `key*=charset'lang'pct-encoded` form wins over a plain `key=`.
    """
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        if key.endswith("*"):
            charset, _, encoded = raw.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                extended[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue  # an unusable extended value leaves the plain one in force
        else:
            params[key] = raw
    params.update(extended)
    return head.strip().lower(), params


def _decode(data: bytes) -> str:
    # Browsers send non-ASCII names as raw UTF-8; anything else is taken byte for byte.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


async def _after_delimiter(body: _Body) -> bool:
    """Consume what follows a delimiter: True for the closing `--`, False for a new part."""
    await body.need(2)
    if body.buf[:2] == b"--":
        body.take(2)
        return True
    end = await body.find(b"\r\n", _PADDING_LIMIT)
    if end is None or body.buf[:end].strip(b" \t"):
        raise _malformed("A multipart boundary is followed by unexpected bytes.")
    body.take(end + 2)
    return False


async def _read_part_headers(body: _Body) -> tuple[str, dict[str, str], str | None]:
    """Read one part's header block: its field name, disposition params and Content-Type."""
    await body.need(2)
    if body.buf[:2] == b"\r\n":
        block = b""
        body.take(2)
    else:
        end = await body.find(b"\r\n\r\n", _HEADERS_LIMIT)
        if end is None:
            raise _malformed(f"A form part's headers exceed {_HEADERS_LIMIT} bytes.")
        block = body.take(end + 4)[:end]
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n") if block else []:
        name, colon, value = _decode(line).partition(":")
        if not colon:
            raise _malformed("A form part has a malformed header line.")
        headers[name.strip().lower()] = value.strip()
    disposition, params = _parse_params(headers.get("content-disposition", ""))
    if disposition != "form-data" or "name" not in params:
        raise _malformed("Each form part needs 'Content-Disposition: form-data; name=...'.")
    return params["name"], params, headers.get("content-type")


async def _file_stream(body: _Body, delimiter: bytes) -> AsyncIterator[bytes]:
    """Yield the file part's bytes as they arrive, then check the form ends right after."""
    look_behind = len(delimiter) - 1
    while (index := body.buf.find(delimiter)) < 0:
        # Hold back only a tail that could begin a delimiter: it always starts with CR.
        cr = body.buf.find(b"\r", max(0, len(body.buf) - look_behind))
        ready = len(body.buf) if cr < 0 else cr
        if ready:
            yield body.take(ready)
        await body.need(len(body.buf) + 1)
    if index:
        yield body.take(index)
    body.take(len(delimiter))
    if await _after_delimiter(body):
        return  # the epilogue, if any, carries nothing for us
    name, _, _ = await _read_part_headers(body)
    if name.lower() == "file":
        raise _too_many_files()
    raise _malformed(f"The form field {name!r} follows the file; 'file' must be the last field.")


async def read_post_form(
    receive: Receive, content_type: str, *, max_fields_bytes: int = 64 * 1024
) -> PostForm:
    """Read a PostObject form's fields and return with the file stream at its first byte.

    Fields are keyed by lower-cased name (a repeated field keeps its last value); the
    `file` part must be the last one. `max_fields_bytes` bounds everything before the
    file (preamble, headers and values). Errors are `ServiceError`s: MalformedPOSTRequest,
    FieldItemTooLong and IncorrectNumberOfFilesInPOSTRequest. Errors found after the file
    (a cut-short body, another part after it) are raised by the `file` iterator, so the
    caller must only commit the object once that iterator has finished cleanly.
    """
    media_type, params = _parse_params(content_type)
    boundary = params.get("boundary", "")
    if media_type != "multipart/form-data" or not 0 < len(boundary) <= _BOUNDARY_LIMIT:
        raise _malformed("The request must be multipart/form-data with a boundary.")
    delimiter = b"\r\n--" + boundary.encode("latin-1", errors="replace")
    body = _Body(receive)
    # The first delimiter may open the body without a CRLF; a virtual one makes every
    # delimiter look alike.
    body.buf += b"\r\n"
    body.consumed = -2

    start = await body.find(delimiter, max_fields_bytes)
    if start is None:
        raise _malformed("No multipart boundary found at the start of the body.")
    body.take(start + len(delimiter))
    fields: dict[str, str] = {}
    while not await _after_delimiter(body):
        name, disposition, part_type = await _read_part_headers(body)
        if name.lower() == "file":
            return PostForm(
                fields=fields,
                file_name=disposition.get("filename", ""),
                file_content_type=part_type,
                file=_file_stream(body, delimiter),
            )
        end = await body.find(delimiter, FIELD_LIMIT)
        if end is None:
            raise ServiceError(
                "FieldItemTooLong",
                f"The form field {name!r} exceeds the maximum of {FIELD_LIMIT} bytes.",
            )
        value = body.take(end + len(delimiter))[:end]
        if body.consumed > max_fields_bytes:
            raise _malformed(f"The form fields before the file exceed {max_fields_bytes} bytes.")
        try:
            fields[name.lower()] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(f"The form field {name!r} is not valid UTF-8.") from None
    raise _too_many_files()
