"""OSS error documents: the status of each code and the XML `Error` body.

HEAD responses cannot carry a body, so the document also travels base64-encoded in
`x-oss-err`, which both SDKs decode to learn the code.
"""

from __future__ import annotations

import base64

from tidings.api.oss.wire import XML_TYPE, document, el
from tidings.errors import ServiceError

STATUS = {
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "InvalidObjectState": 403,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchVersion": 404,
    "NoSuchUpload": 404,
    "NoSuchLifecycle": 404,
    "NoSuchTagSet": 404,
    "NoSuchStyle": 404,
    "MethodNotAllowed": 405,
    "BucketAlreadyExists": 409,
    "BucketNotEmpty": 409,
    "PositionNotEqualToLength": 409,
    "ObjectNotAppendable": 409,
    "FileAlreadyExists": 409,
    "RestoreAlreadyInProgress": 409,
    "MissingContentLength": 411,
    "PreconditionFailed": 412,
    "NotModified": 304,
    "InvalidRange": 416,
    "InternalError": 500,
    "NotImplemented": 501,
}

# Fine-grained codes (`x-oss-ec`); no SDK logic depends on the values.
_EC = {"NoSuchKey": "0026-00000001", "NoSuchBucket": "0015-00000101"}


def status_of(code: str) -> int:
    """The HTTP status a code travels with; everything unlisted is a 400."""
    return STATUS.get(code, 400)


def error_document(error: ServiceError, request_id: str, host: str) -> bytes:
    """The `Error` document of spec 3.1."""
    parts = [
        el("Code", error.code),
        el("Message", error.message),
        el("RequestId", request_id),
        el("HostId", host),
    ]
    parts.extend(el(name, value) for name, value in error.details.items())
    if error.code in _EC:
        parts.append(el("EC", _EC[error.code]))
    return document("Error", parts)


def error_response(
    error: ServiceError, request_id: str, host: str, head: bool
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of an error; a HEAD gets the body in `x-oss-err`."""
    status = status_of(error.code)
    headers = list(error.headers.items())
    if status == 304:
        return status, headers, b""
    body = error_document(error, request_id, host)
    if error.code in _EC:
        headers.append(("x-oss-ec", _EC[error.code]))
    if head:
        headers.append(("x-oss-err", base64.b64encode(body).decode("ascii")))
        return status, headers, b""
    headers.append(("Content-Type", XML_TYPE))
    return status, headers, body
