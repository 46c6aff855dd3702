"""One function per MNS data-plane operation: parse, call a service, render."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.api.http import Request, Response
from tidings.api.mns import codec
from tidings.api.mns.xml import document, element, fields, local_name, parse, text
from tidings.errors import ServiceError, invalid_argument
from tidings.models import Queue, QueueCounts
from tidings.services.queues import QueueService
from tidings.services.topics import TopicService

XML = "text/xml;charset=utf-8"
LOGGING_BUCKET = "account.logging_bucket"


@dataclass(slots=True)
class Context:
    """What a handler needs besides the request: services and the client-facing base URL."""

    queues: QueueService
    topics: TopicService
    base: str


def ok(status: int, body: bytes = b"", location: str | None = None) -> Response:
    """A success response, with a body content type and `Location` when given."""
    headers = []
    if body:
        headers.append(("Content-Type", XML))
    if location is not None:
        headers.append(("Location", location))
    return Response(status, body, headers)


# -- account ----------------------------------------------------------------------------


async def get_account_attributes(ctx: Context, request: Request) -> Response:
    """GetAccountAttributes: `GET /?accountmeta=true`."""
    bucket = await ctx.queues.store.get_setting(LOGGING_BUCKET) or ""
    return ok(200, document("Account", [element("LoggingBucket", bucket)]))


async def set_account_attributes(ctx: Context, request: Request) -> Response:
    """SetAccountAttributes: `PUT /?accountmeta=true`."""
    if request.body.strip():
        root = parse(request.body)
        if local_name(root) != "Account":
            raise invalid_argument("The request body's root element must be Account.")
        bucket = fields(root).get("LoggingBucket")
        if bucket is not None:
            await ctx.queues.store.put_setting(LOGGING_BUCKET, text(bucket) or "")
    return ok(204)


async def get_account(ctx: Context, request: Request) -> Response:
    """GetAccount: `GET /?account` (used by the Java SDK)."""
    return ok(200, document("Account", [element("AccountId", ctx.queues.account_id)]))


async def open_service(ctx: Context, request: Request) -> Response:
    """OpenService: always already open on a self-hosted server."""
    return ok(200, document("OpenService", [element("OrderId", "tidings-self-hosted")]))


# -- queues -----------------------------------------------------------------------------


async def create_queue(ctx: Context, request: Request, name: str) -> Response:
    """CreateQueue: 201 created, 204 identical queue exists, 409 different one exists."""
    _, created = await ctx.queues.create_queue(name, codec.parse_queue_changes(request.body))
    return ok(201 if created else 204, location=f"{ctx.base}/queues/{name}")


async def set_queue_attributes(ctx: Context, request: Request, name: str) -> Response:
    """SetQueueAttributes: `PUT /queues/{name}?metaoverride=true`."""
    await ctx.queues.set_queue_attributes(name, codec.parse_queue_changes(request.body))
    return ok(204)


async def get_queue_attributes(ctx: Context, request: Request, name: str) -> Response:
    """GetQueueAttributes, with the live message counters."""
    queue = await ctx.queues.get_queue(name)
    counts = await ctx.queues.counts(queue)
    return ok(200, codec.render_queue(queue, counts))


async def delete_queue(ctx: Context, request: Request, name: str) -> Response:
    """DeleteQueue: idempotent."""
    await ctx.queues.delete_queue(name)
    return ok(204)


def header_int(request: Request, name: str, default: int) -> int:
    """An integer request header, or `default` when absent."""
    value = request.headers.get(name)
    return default if value is None else codec.integer(name, value)


async def list_queues(ctx: Context, request: Request) -> Response:
    """ListQueue with prefix, marker, page size and optional attributes."""
    queues, next_marker = await ctx.queues.list_queues(
        prefix=request.headers.get("x-mns-prefix", ""),
        marker=request.headers.get("x-mns-marker") or None,
        limit=header_int(request, "x-mns-ret-number", 1000),
    )
    with_meta = request.headers.get("x-mns-with-meta", "").lower() == "true"
    entries: list[tuple[Queue, QueueCounts | None]] = []
    for queue in queues:
        entries.append((queue, await ctx.queues.counts(queue) if with_meta else None))
    return ok(200, codec.render_queue_list(ctx.base, entries, next_marker))


# -- messages ---------------------------------------------------------------------------


async def send_messages(ctx: Context, request: Request, name: str) -> Response:
    """SendMessage or BatchSendMessage (by the body's root element)."""
    requests, batch = codec.parse_send(request.body)
    outcomes = await ctx.queues.send(name, requests)
    if any(o.error is not None for o in outcomes):
        if not batch:
            error = outcomes[0].error
            assert error is not None
            raise error
        return Response(500, codec.render_send_failures(outcomes), [("Content-Type", XML)])
    return ok(201, codec.render_send(outcomes, batch))


def _optional_int(request: Request, name: str) -> int | None:
    value = request.query.get(name)
    return None if value is None else codec.integer(name, value)


async def receive_or_peek(ctx: Context, request: Request, name: str) -> Response:
    """ReceiveMessage, BatchReceiveMessage, PeekMessage or BatchPeekMessage."""
    count = _optional_int(request, "numofmessages")
    batch = count is not None
    limit = 1 if count is None else count
    if request.query.get("peekonly", "").lower() == "true":
        peeked = await ctx.queues.peek(name, limit)
        return ok(200, codec.render_peeked(peeked, batch))
    received = await ctx.queues.receive(name, limit, _optional_int(request, "waitseconds"))
    return ok(200, codec.render_received(received, batch))


async def delete_messages(ctx: Context, request: Request, name: str) -> Response:
    """DeleteMessage (handle in the query) or BatchDeleteMessage (handles in the body)."""
    handle = request.query.get("receipthandle")
    if not handle and not request.body.strip():
        raise ServiceError("MissingReceiptHandle", "Give the ReceiptHandle to delete.")
    if handle:
        (outcome,) = await ctx.queues.delete(name, [handle])
        if outcome.error is not None:
            raise outcome.error
        return ok(204)
    handles = codec.parse_receipt_handles(request.body)
    outcomes = await ctx.queues.delete(name, handles)
    if any(o.error is not None for o in outcomes):
        return Response(404, codec.render_delete_failures(outcomes), [("Content-Type", XML)])
    return ok(204)


async def change_visibility(ctx: Context, request: Request, name: str) -> Response:
    """ChangeMessageVisibility."""
    handle = request.query.get("receipthandle")
    if not handle:
        raise ServiceError("MissingReceiptHandle", "Give the ReceiptHandle to change.")
    timeout = _optional_int(request, "visibilitytimeout")
    if timeout is None:
        raise ServiceError("MissingVisibilityTimeout", "Give the new VisibilityTimeout.")
    new_handle, next_visible = await ctx.queues.change_visibility(name, handle, timeout)
    return ok(200, codec.render_change_visibility(new_handle, next_visible))
