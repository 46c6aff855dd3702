"""Upload callbacks (spec 10): the description a request carries, the body template and
its variables, what the signature covers, and the replies the uploading client gets.

Everything here is pure. A handler parses the description before it stores anything (a
bad one is `400 InvalidArgument` and nothing is stored), stores the object, and returns
a `CallbackReply`: its ordinary reply plus the rendered callback. The listener
(`callback_app`) then makes the callback (`callback_sender`) and turns the answer into
the client's reply, so no handler waits on another server.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

from tidings.api.oss.call import OssCall
from tidings.api.oss.context import Reply
from tidings.api.oss.errors import error_document
from tidings.api.oss.wire import XML_TYPE
from tidings.errors import ServiceError
from tidings.object_models import ObjectVersion

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
BODY_TYPES = (FORM_TYPE, JSON_TYPE)
MAX_URLS = 5
# `${operation}` of each operation that can carry a callback.
PUT_OBJECT = "PutObject"
POST_OBJECT = "PostObject"
COMPLETE_MULTIPART_UPLOAD = "CompleteMultipartUpload"
# Where the OSS listener serves the public key. A bucket name cannot start with '_', so
# the path-style address never names a real bucket's object.
RESERVED_SEGMENT = "_tidings"
PUBLIC_KEY_PATH = f"/{RESERVED_SEGMENT}/callback-pub-key.pem"
USER_AGENT = "tidings-oss-callback"

# A variable's value: text, a number (a JSON number in JSON bodies), or None for one
# that has no value here (image facts of a non-image, an unknown name).
Value = str | int | None

_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """One request's callback description (the decoded `x-oss-callback`)."""

    urls: tuple[str, ...]
    body: str
    body_type: str = FORM_TYPE
    host: str | None = None
    sni: bool = False


def _invalid(detail: str, argument: str) -> ServiceError:
    return ServiceError(
        "InvalidArgument",
        f"The callback is not valid: {detail}",
        {"ArgumentName": argument},
    )


def _check_url(url: str, argument: str) -> str:
    # The URL goes on the wire as given, so it must already be percent-encoded (spec
    # 10.1); anything else would be re-encoded and no longer match the signature.
    if not all(32 < ord(ch) < 127 for ch in url) or "#" in url:
        raise _invalid(f"callbackUrl {url!r} must be a URL-encoded http or https URL.", argument)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError when the port is not a number in range
    except ValueError:
        raise _invalid(f"callbackUrl {url!r} is not a valid URL.", argument) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _invalid(f"callbackUrl {url!r} must be an http or https URL.", argument)
    return url


def _optional_text(config: Mapping[str, object], name: str, argument: str) -> str | None:
    value = config.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string.", argument)
    return value


def _sni(value: object, argument: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid("callbackSNI must be true or false.", argument)


def parse_callback(encoded: str | None, argument: str = "x-oss-callback") -> CallbackSpec | None:
    """The callback a request asks for (None without one); `InvalidArgument` naming
    `argument` when it is not the Base64 of a valid JSON description."""
    if not encoded:
        return None
    try:
        config = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid("it must be the Base64 of a JSON object.", argument) from None
    if not isinstance(config, dict):
        raise _invalid("it must be the Base64 of a JSON object.", argument)
    raw_urls = _optional_text(config, "callbackUrl", argument)
    urls = tuple(u.strip() for u in (raw_urls or "").split(";") if u.strip())
    if not urls:
        raise _invalid("callbackUrl is required.", argument)
    if len(urls) > MAX_URLS:
        raise _invalid(f"callbackUrl names at most {MAX_URLS} URLs.", argument)
    body = _optional_text(config, "callbackBody", argument)
    if not body:
        raise _invalid("callbackBody is required.", argument)
    body_type = (_optional_text(config, "callbackBodyType", argument) or FORM_TYPE).lower()
    body_type = body_type.split(";", 1)[0].strip()
    if body_type not in BODY_TYPES:
        raise _invalid(f"callbackBodyType must be one of {', '.join(BODY_TYPES)}.", argument)
    host = _optional_text(config, "callbackHost", argument)
    if host is not None and not (host == "" or _HOST.fullmatch(host)):
        raise _invalid(f"callbackHost {host!r} is not a host name.", argument)
    return CallbackSpec(
        urls=tuple(_check_url(url, argument) for url in urls),
        body=body,
        body_type=body_type,
        host=host or None,
        sni=_sni(config.get("callbackSNI"), argument),
    )


def requested_callback(call: OssCall) -> CallbackSpec | None:
    """The callback of a PutObject or CompleteMultipartUpload: the `x-oss-callback`
    header, or the `callback` query parameter of a presigned URL."""
    header = call.headers.get("x-oss-callback")
    if header:
        return parse_callback(header)
    return parse_callback(call.params.get("callback"), "callback")


# -- variables and the body -----------------------------------------------------------


def _content_md5(etag: str) -> str:
    # A simple upload's ETag is its MD5; a multipart ETag ("…-3") is not an MD5 of the
    # object, and no MD5 of the whole object exists to report.
    try:
        digest = bytes.fromhex(etag)
    except ValueError:
        return ""
    return base64.b64encode(digest).decode("ascii") if len(digest) == 16 else ""


def callback_variables(
    bucket: str,
    version: ObjectVersion,
    operation: str,
    client_ip: str,
    request_id: str,
    custom: Mapping[str, str],
) -> dict[str, Value]:
    """Every variable a body template may use (spec 10.2); `custom` are the `x:` ones.

    Image facts are always empty: the server does not decode images.
    """
    values: dict[str, Value] = {
        "bucket": bucket,
        "object": version.key,
        "etag": version.etag,
        "size": version.size,
        "mimeType": version.headers.get("Content-Type", ""),
        "imageInfo.height": None,
        "imageInfo.width": None,
        "imageInfo.format": None,
        # As text: a CRC-64 exceeds what JSON numbers hold exactly in most parsers.
        "crc64": str(version.crc64),
        "contentMd5": _content_md5(version.etag),
        "vpcId": "",
        "clientIp": client_ip,
        "reqId": request_id,
        "operation": operation,
    }
    values.update(custom)
    return values


def _text(value: Value) -> str:
    return "" if value is None else str(value)


def _scan(literal: str, in_string: bool, escaped: bool) -> tuple[bool, bool]:
    """JSON string state after `literal`: inside a string?, after a backslash?"""
    for ch in literal:
        if not in_string:
            in_string = ch == '"'
        elif escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            in_string = False
    return in_string, escaped


def _render_json(template: str, values: Mapping[str, Value]) -> str:
    # The documented form puts placeholders where JSON values go (`{"size":${size}}`);
    # users also write them inside strings (`"${object}"`). Tracking whether the
    # placeholder sits inside a string keeps both forms valid JSON.
    parts: list[str] = []
    in_string = escaped = False
    last = 0
    for match in _PLACEHOLDER.finditer(template):
        literal = template[last : match.start()]
        in_string, escaped = _scan(literal, in_string, escaped)
        parts.append(literal)
        value = values.get(match.group(1))
        if in_string:
            parts.append(json.dumps(_text(value), ensure_ascii=False)[1:-1])
            escaped = False
        elif isinstance(value, int):
            parts.append(str(value))
        else:
            parts.append(json.dumps(_text(value), ensure_ascii=False))
        last = match.end()
    parts.append(template[last:])
    return "".join(parts)


def render_body(template: str, body_type: str, values: Mapping[str, Value]) -> bytes:
    """The callback body: each `${name}` replaced by its value, URL-encoded for the form
    type and as a JSON value for the JSON type; unknown names are empty."""
    if body_type == JSON_TYPE:
        return _render_json(template, values).encode("utf-8")
    rendered = _PLACEHOLDER.sub(lambda m: quote(_text(values.get(m.group(1))), safe=""), template)
    return rendered.encode("utf-8")


# -- the callback request -------------------------------------------------------------


def string_to_sign(url: str, body: bytes) -> bytes:
    """What the signature covers: the URL-decoded path, the query as sent (with its
    leading '?', when there is one), a newline, and the body."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return unquote_to_bytes(parts.path or "/") + query.encode("ascii") + b"\n" + body


def callback_headers(spec: CallbackSpec, signature: str, public_key_url: str) -> dict[str, str]:
    """The headers of a callback request other than those the client derives."""
    headers = {
        "Content-Type": spec.body_type,
        "authorization": signature,
        "x-oss-pub-key-url": base64.b64encode(public_key_url.encode("utf-8")).decode("ascii"),
        "User-Agent": USER_AGENT,
    }
    if spec.host:
        headers["Host"] = spec.host
    return headers


def public_key_url(host: str, domains: tuple[str, ...], public_base: str | None) -> str:
    """The URL application servers fetch the public key from.

    The configured public OSS URL when there is one; otherwise the listener as the
    client reached it, minus any bucket of a virtual-hosted address (under the bucket's
    host the path would name an object of that bucket).
    """
    if public_base:
        return f"{public_base.rstrip('/')}{PUBLIC_KEY_PATH}"
    if not _HOST.fullmatch(host):
        host = "localhost"  # nothing trustworthy to go on; only a Host-less client gets here
    if host.startswith("["):
        end = host.index("]") + 1
        name, port = host[:end], host[end:]
    else:
        name, colon, number = host.partition(":")
        port = colon + number
    for domain in domains:
        head = name[: -len(domain) - 1]
        if name.endswith(f".{domain}") and head and "." not in head:
            name = domain
            break
    return f"http://{name}{port}{PUBLIC_KEY_PATH}"


def response_failure(status: int, body: bytes) -> str | None:
    """Why a callback server's answer is a failure, or None when it is a success:
    exactly status 200 with a JSON body."""
    if status != 200:
        return f"Error status : {status}."
    try:
        json.loads(body)
    except ValueError:
        return "Response body is not valid json format."
    return None


# -- replies --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingCallback:
    """A callback to make once the object is stored, with what its answer needs."""

    spec: CallbackSpec
    body: bytes
    host: str
    request_id: str


@dataclass(slots=True)
class CallbackReply(Reply):
    """An operation's ordinary reply with the callback still to make. A listener that
    does not make callbacks sends it as the ordinary reply."""

    pending: PendingCallback | None = None


def with_callback(
    call: OssCall,
    spec: CallbackSpec | None,
    reply: Reply,
    bucket: str,
    version: ObjectVersion,
    operation: str,
) -> Reply:
    """`reply` unchanged without a callback; else a `CallbackReply` with the body rendered
    from the stored version and the request's custom variables."""
    if spec is None:
        return reply
    custom = call.origin.x_vars if call.origin is not None else {}
    values = callback_variables(
        bucket, version, operation, call.request.client, call.request_id, custom
    )
    pending = PendingCallback(
        spec, render_body(spec.body, spec.body_type, values), call.host, call.request_id
    )
    return CallbackReply(reply.status, reply.headers, reply.body, pending=pending)


def _operation_headers(reply: Reply) -> list[tuple[str, str]]:
    # The body is replaced, so its type goes; so does a PostObject redirect.
    return [(n, v) for n, v in reply.headers if n.lower() not in ("content-type", "location")]


def succeeded(reply: Reply, body: bytes) -> Reply:
    """The client's reply when the callback answered: its JSON body, verbatim."""
    return Reply(200, [*_operation_headers(reply), ("Content-Type", JSON_TYPE)], body)


def failed(reply: Reply, pending: PendingCallback, reason: str) -> Reply:
    """The client's reply when the callback failed: 203 CallbackFailed; the object stays."""
    error = ServiceError("CallbackFailed", reason)
    body = error_document(error, pending.request_id, pending.host)
    return Reply(203, [*_operation_headers(reply), ("Content-Type", XML_TYPE)], body)
