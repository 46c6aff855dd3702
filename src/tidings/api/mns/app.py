"""The MNS listener as an ASGI app: authenticate, route by hand, render errors.

Routing is a handful of string comparisons rather than a router: this is the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tidings.api.control.app import ControlApp, is_control_request
from tidings.api.http import (
    BodyTooLarge,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    http_request,
    read_body,
    send_response,
)
from tidings.api.mns import handlers, topic_handlers
from tidings.api.mns.codec import render_error
from tidings.api.mns.errors import status_for
from tidings.api.mns.handlers import Context
from tidings.auth import mns as mns_auth
from tidings.auth.keys import KeyRing
from tidings.errors import ServiceError, invalid_argument
from tidings.ids import request_id
from tidings.services.queues import QueueService
from tidings.services.topics import TopicService, check_subscription_name, check_topic_name
from tidings.services.validation import check_queue_name

log = logging.getLogger(__name__)

API_VERSION = "2015-06-06"
# Where HTTP-push receivers fetch the certificate that verifies push signatures.
PUSH_CERT_PATH = "/mns-reserved-cert/push-signing-cert.pem"
# A batch of 16 bodies totals at most 64 KB, but XML escaping can multiply a body's
# size by up to 6 on the wire ('"' becomes '&quot;').
MAX_REQUEST_BYTES = 512 * 1024

QueueHandler = Callable[[Context, Request, str], Awaitable[Response]]

_QUEUE_ROUTES: dict[str, QueueHandler] = {
    "GET": handlers.get_queue_attributes,
    "DELETE": handlers.delete_queue,
}
_MESSAGE_ROUTES: dict[str, QueueHandler] = {
    "POST": handlers.send_messages,
    "GET": handlers.receive_or_peek,
    "DELETE": handlers.delete_messages,
    "PUT": handlers.change_visibility,
}


def _no_route(request: Request) -> ServiceError:
    return ServiceError(
        "InvalidRequestURL", f"No operation answers {request.method} {request.raw_path}."
    )


class MnsApp:
    """ASGI application serving the MNS data-plane API at the root of its origin."""

    def __init__(
        self, queues: QueueService, topics: TopicService, keys: KeyRing, push_cert: bytes
    ) -> None:
        self.queues = queues
        self.topics = topics
        self.keys = keys
        self.push_cert = push_cert
        # The mns-open control plane on the same port (set by tidings.app), or None.
        self.control: ControlApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await http_request(scope, receive, send)
        if request is None:
            return
        rid = request_id()
        host = request.headers.get("host", "localhost")
        base = f"{scope.get('scheme', 'http')}://{host}"
        try:
            request.body = await read_body(
                receive, request.headers.get("content-length"), MAX_REQUEST_BYTES
            )
            response = await self.handle(request, Context(self.queues, self.topics, base))
        except ServiceError as error:
            response = self._error(error, request, rid, base)
        except BodyTooLarge as exc:
            too_large = invalid_argument(f"The request body exceeds {exc.limit} bytes.")
            response = self._error(too_large, request, rid, base)
        except Exception:
            log.exception("MNS %s %s failed (request %s)", request.method, request.target, rid)
            internal = ServiceError("InternalError", f"The server failed; request id {rid}.")
            response = self._error(internal, request, rid, base)
        response.headers.append(("x-mns-request-id", rid))
        response.headers.append(("x-mns-version", API_VERSION))
        await send_response(send, response)

    def _error(self, error: ServiceError, request: Request, rid: str, base: str) -> Response:
        status = status_for(error.code)
        level = logging.DEBUG if error.code == "MessageNotExist" else logging.INFO
        log.log(
            level,
            "MNS %s %s -> %d %s: %s (request %s)",
            request.method,
            request.target,
            status,
            error.code,
            error.message,
            rid,
        )
        body = render_error(error, rid, base)
        return Response(status, body, [("Content-Type", handlers.XML)])

    async def handle(self, request: Request, ctx: Context) -> Response:
        """Authenticate and dispatch one request."""
        if request.method == "GET":
            if request.path == "/health":
                return Response(200, b"ok", [("Content-Type", "text/plain")])
            if request.path == PUSH_CERT_PATH:
                return Response(200, self.push_cert, [("Content-Type", "application/x-pem-file")])
        # The data plane has no POST / operation: other requests pay two comparisons.
        if (
            request.method == "POST"
            and request.path == "/"
            and self.control is not None
            and is_control_request(request)
        ):
            return await self.control.handle(request)
        mns_auth.verify(self.keys, request.method, request.headers, request.target)
        content_md5 = request.headers.get("content-md5")
        if content_md5 and not mns_auth.content_md5_matches(content_md5, request.body):
            raise ServiceError("InvalidDegist", "The Content-MD5 does not match the body.")
        return await self._route(request, ctx)

    async def _route(self, request: Request, ctx: Context) -> Response:
        # Route on the raw path: names never need escaping, and an escaped '/' must not
        # become a separator.
        path, method, query = request.raw_path, request.method, request.query
        if path.startswith("/queues/"):
            name, _, rest = path[len("/queues/") :].partition("/")
            if rest in ("", "messages") and name:
                check_queue_name(name)
            if rest == "messages":
                message_handler = _MESSAGE_ROUTES.get(method)
                if message_handler is not None:
                    return await message_handler(ctx, request, name)
            elif not rest and name:
                if method == "PUT":
                    if query.get("metaoverride", "").lower() == "true":
                        return await handlers.set_queue_attributes(ctx, request, name)
                    return await handlers.create_queue(ctx, request, name)
                queue_handler = _QUEUE_ROUTES.get(method)
                if queue_handler is not None:
                    return await queue_handler(ctx, request, name)
        elif path.startswith("/topics/"):
            return await self._route_topic(request, ctx, path[len("/topics/") :])
        elif path in ("/topics", "/topics/") and method == "GET":
            return await topic_handlers.list_topics(ctx, request)
        elif path in ("/queues", "/queues/") and method == "GET":
            return await handlers.list_queues(ctx, request)
        elif path == "/":
            if "accountmeta" in query:
                if method == "GET":
                    return await handlers.get_account_attributes(ctx, request)
                if method == "PUT":
                    return await handlers.set_account_attributes(ctx, request)
            elif "account" in query and method == "GET":
                return await handlers.get_account(ctx, request)
        elif path == "/commonbuy/openservice" and method == "POST":
            return await handlers.open_service(ctx, request)
        raise _no_route(request)

    async def _route_topic(self, request: Request, ctx: Context, rest: str) -> Response:
        method, query = request.method, request.query
        topic, _, rest = rest.partition("/")
        if topic:
            check_topic_name(topic)
        override = query.get("metaoverride", "").lower() == "true"
        if not rest and topic:
            if method == "PUT":
                if override:
                    return await topic_handlers.set_topic_attributes(ctx, request, topic)
                return await topic_handlers.create_topic(ctx, request, topic)
            if method == "GET":
                return await topic_handlers.get_topic_attributes(ctx, request, topic)
            if method == "DELETE":
                return await topic_handlers.delete_topic(ctx, request, topic)
        elif rest == "messages" and method == "POST":
            return await topic_handlers.publish(ctx, request, topic)
        elif rest in ("subscriptions", "subscriptions/") and method == "GET":
            return await topic_handlers.list_subscriptions(ctx, request, topic)
        elif rest.startswith("subscriptions/"):
            name = rest[len("subscriptions/") :]
            check_subscription_name(name)
            if method == "PUT":
                if override:
                    return await topic_handlers.set_subscription_attributes(
                        ctx, request, topic, name
                    )
                return await topic_handlers.subscribe(ctx, request, topic, name)
            if method == "GET":
                return await topic_handlers.get_subscription_attributes(ctx, request, topic, name)
            if method == "DELETE":
                return await topic_handlers.unsubscribe(ctx, request, topic, name)
        raise _no_route(request)
