"""The OSS listener as an ASGI app: address, authenticate, authorise, dispatch, reply.

Every response carries `x-oss-request-id` and `Server: AliyunOSS` (uvicorn adds
`Date`); errors are OSS `Error` documents, mirrored into `x-oss-err` on HEAD.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from tidings.api.http import Receive, Scope, Send, http_request
from tidings.api.oss import bucket_handlers, multipart_handlers, object_handlers, post_object
from tidings.api.oss.call import OssCall, address, decode_path, split_query
from tidings.api.oss.callback_vars import parse_callback_var
from tidings.api.oss.context import OssContext, Reply
from tidings.api.oss.errors import error_response
from tidings.auth.oss import SignedRequest, authenticate
from tidings.auth.oss_v1 import SUBRESOURCES_FULL
from tidings.blobs.base import BlobTooLarge, BodyTooLong, IncompleteBody
from tidings.errors import ServiceError
from tidings.events.oss_event import EVENT_STATUS_OK
from tidings.services import access
from tidings.services.object_events import ANONYMOUS_PRINCIPAL, Origin
from tidings.services.object_rules import new_request_id

log = logging.getLogger(__name__)

Handler = Callable[[OssContext, OssCall], Awaitable[Reply]]

# Sub-resources that select a bucket-level operation, by method, in priority order.
_BUCKET_ROUTES: dict[str, list[tuple[str, Handler]]] = {
    "GET": [
        ("acl", bucket_handlers.get_acl),
        ("bucketInfo", bucket_handlers.get_info),
        ("location", bucket_handlers.get_location),
        ("stat", bucket_handlers.get_stat),
        ("versioning", bucket_handlers.get_versioning),
        ("versions", bucket_handlers.list_versions),
        ("lifecycle", bucket_handlers.get_lifecycle),
        ("tagging", bucket_handlers.get_tags),
        ("uploads", multipart_handlers.list_uploads),
        ("", bucket_handlers.list_objects),
    ],
    "HEAD": [("", bucket_handlers.head_bucket)],
    "PUT": [
        ("acl", bucket_handlers.put_acl),
        ("versioning", bucket_handlers.put_versioning),
        ("lifecycle", bucket_handlers.put_lifecycle),
        ("tagging", bucket_handlers.put_tags),
        ("", bucket_handlers.put_bucket),
    ],
    "DELETE": [
        ("lifecycle", bucket_handlers.delete_lifecycle),
        ("tagging", bucket_handlers.delete_tags),
        ("", bucket_handlers.delete_bucket),
    ],
    "POST": [("delete", object_handlers.delete_multiple)],
}

_OBJECT_ROUTES: dict[str, list[tuple[str, Handler]]] = {
    "GET": [
        ("acl", object_handlers.get_acl),
        ("tagging", object_handlers.get_tags),
        ("objectMeta", object_handlers.get_meta),
        ("uploadId", multipart_handlers.list_parts),
        ("", object_handlers.get_object),
    ],
    "HEAD": [("objectMeta", object_handlers.get_meta), ("", object_handlers.head_object)],
    "PUT": [
        ("acl", object_handlers.put_acl),
        ("tagging", object_handlers.put_tags),
        ("uploadId", multipart_handlers.upload_part),
        ("", object_handlers.put_or_copy),
    ],
    "DELETE": [
        ("tagging", object_handlers.delete_tags),
        ("uploadId", multipart_handlers.abort),
        ("", object_handlers.delete_object),
    ],
    "POST": [
        ("append", object_handlers.append_object),
        ("uploads", multipart_handlers.initiate),
        ("uploadId", multipart_handlers.complete),
        ("restore", object_handlers.restore),
    ],
}

# Object reads decide access with the object's own ACL, once it is loaded.
_OBJECT_READS = {object_handlers.get_object, object_handlers.head_object, object_handlers.get_meta}
# Changing who may read an object, its tags, or starting a restore is the owner's
# business even on a public-read-write bucket.
_OWNER_ONLY = {
    object_handlers.put_acl,
    object_handlers.get_acl,
    object_handlers.put_tags,
    object_handlers.delete_tags,
    object_handlers.restore,
}


# Sub-resources a plain operation (the "" routes) may carry. Any other sub-resource names
# an operation this server lacks (cors, website, symlink, ...), which must never fall
# through to the plain one: `DELETE /bucket/?cors` is not DeleteBucket.
_PLAIN_PARAMS = frozenset(
    {"versionId", "continuation-token", "security-token", "x-oss-process", "callback",
     "callback-var", "x-oss-traffic-limit", "x-oss-request-payer", "x-oss-access-point-name"}
)  # fmt: skip


def _unsupported(call: OssCall) -> str | None:
    for param in call.params:
        plain = param in _PLAIN_PARAMS or param.startswith(("response-", "x-oss-ac-"))
        if param in SUBRESOURCES_FULL and not plain:
            return param
    return None


def _route(routes: dict[str, list[tuple[str, Handler]]], call: OssCall) -> Handler:
    for name, handler in routes.get(call.method, []):
        if name == "" and (param := _unsupported(call)) is not None:
            raise ServiceError(
                "NotImplemented", f"The {call.method} {param} operation is not implemented."
            )
        if name == "" or call.has(name):
            return handler
    raise ServiceError(
        "MethodNotAllowed", f"The method {call.method} is not allowed against this resource."
    )


def _as_service_error(exc: Exception) -> ServiceError:
    """Blob-store refusals in the API's vocabulary."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, BlobTooLarge):
        return ServiceError("EntityTooLarge", str(exc))
    return ServiceError("IncompleteBody", f"The request body was cut short: {exc}")


def _is_post_object(call: OssCall) -> bool:
    content_type = call.headers.get("content-type", "").lower()
    return (
        call.method == "POST"
        and call.bucket is not None
        and call.key is None
        and content_type.startswith("multipart/form-data")
        and not call.has("delete")
    )


class OssApp:
    """ASGI application of the OSS-compatible API."""

    def __init__(self, context: OssContext) -> None:
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await http_request(scope, receive, send)
        if request is None:
            return
        request_id = new_request_id()
        host = request.headers.get("host", "")
        head = request.method == "HEAD"
        started = time.perf_counter()
        call: OssCall | None = None
        try:
            # `/health` (no slash, no query) is the readiness probe; a bucket named
            # "health" is still reachable as `/health/`, the form SDKs use.
            if request.raw_path == "/health" and not request.query_string:
                reply = Reply(200, [("Content-Type", "text/plain")], b"ok")
            else:
                bucket, key = address(decode_path(request.raw_path), host, self.context.domains)
                query = split_query(request.query_string)
                call = OssCall(request, receive, bucket, key, dict(query), query, request_id, host)
                reply = await self._dispatch(call)
        except (ServiceError, BlobTooLarge, IncompleteBody, BodyTooLong) as exc:
            reply = self._error(_as_service_error(exc), request_id, host, head)
        except Exception:
            log.exception("%s %s failed", request.method, request.raw_path)
            internal = ServiceError("InternalError", "We encountered an internal error.")
            reply = self._error(internal, request_id, host, head)
        if call is not None and call.origin is not None and call.origin.notified:
            reply.headers.append(("x-oss-event-status", EVENT_STATUS_OK))
        reply.headers.append(("x-oss-request-id", request_id))
        reply.headers.append(("Server", "AliyunOSS"))
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        reply.headers.append(("x-oss-server-time", str(elapsed_ms)))
        await reply.send(send, head)

    def _error(self, error: ServiceError, request_id: str, host: str, head: bool) -> Reply:
        status, headers, body = error_response(error, request_id, host, head)
        return Reply(status, headers, body)

    async def _dispatch(self, call: OssCall) -> Reply:
        context = self.context
        if _is_post_object(call):
            return await post_object.post_object(context, call)
        call.auth = authenticate(
            SignedRequest(call.method, call.bucket, call.key, call.query, call.headers),
            context.keys,
            time.time(),
        )
        account = call.auth.key.account_id if call.auth.key is not None else None
        call.origin = Origin(
            call.request_id,
            call.request.client,
            account or ANONYMOUS_PRINCIPAL,
            parse_callback_var(
                call.headers.get("x-oss-callback-var") or call.params.get("callback-var")
            ),
        )
        if call.bucket is None:
            if call.method != "GET":
                raise ServiceError("MethodNotAllowed", "Only GET is allowed on the service.")
            if account is None:
                raise ServiceError("AccessDenied", "Listing buckets needs a signed request.")
            return await bucket_handlers.list_buckets(context, call)
        if call.key is None:
            handler = _route(_BUCKET_ROUTES, call)
            if handler is bucket_handlers.put_bucket:
                if account is None:
                    raise ServiceError("AccessDenied", "Creating a bucket needs a signed request.")
                return await handler(context, call)
            bucket = await context.buckets.get(call.bucket)
            if handler is bucket_handlers.list_objects:
                access.require(account, bucket, None, write=False)
            elif handler is object_handlers.delete_multiple:
                access.require(account, bucket, None, write=True)
            elif account != bucket.owner:
                raise ServiceError("AccessDenied", "Only the bucket owner may do this.")
            return await handler(context, call)
        handler = _route(_OBJECT_ROUTES, call)
        bucket = await context.buckets.get(call.bucket)
        if handler in _OWNER_ONLY:
            if account != bucket.owner:
                raise ServiceError("AccessDenied", "Only the bucket owner may do this.")
        elif handler not in _OBJECT_READS:
            write = call.method not in ("GET", "HEAD")
            access.require(account, bucket, None, write=write)
        return await handler(context, call)
