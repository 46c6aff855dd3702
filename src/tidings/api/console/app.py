"""The console listener's JSON API: the delivery ledger and replays.

Authenticated with HTTP Basic, the user being an AccessKey ID and the password its
secret. Errors are JSON: {"Code": ..., "Message": ...}.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import logging
from typing import Any

from tidings.api.console.emit import PREFIX as EMIT_PREFIX
from tidings.api.console.emit import handle_emit
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
from tidings.auth.keys import KeyRing
from tidings.errors import ServiceError, invalid_argument
from tidings.metrics import CONTENT_TYPE, Metrics
from tidings.models import DeliveryFilter
from tidings.services.deliveries import LedgerService
from tidings.services.emit import EmitService

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
_STATUS = {"Unauthorized": 401, "DeliveryNotExist": 404, "NotFound": 404, "InternalError": 500}


def _json(status: int, payload: Any) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, [("content-type", "application/json")])


def _int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_argument(f"{name} must be an integer.") from None


def delivery_filter(params: dict[str, Any]) -> DeliveryFilter:
    """A ledger filter from query parameters or a JSON body (times in Unix ms)."""
    return DeliveryFilter(
        message_id=params.get("message_id") or None,
        topic_name=params.get("topic") or None,
        subscription_name=params.get("subscription") or None,
        state=params.get("state") or None,
        since_ms=_int(params, "since"),
        until_ms=_int(params, "until"),
    )


class ConsoleApp:
    """ASGI app of the console listener."""

    def __init__(self, ledger: LedgerService, keys: KeyRing, metrics: Metrics) -> None:
        self.ledger = ledger
        self.keys = keys
        self.metrics = metrics
        # Set by the app when the producer emulator is wired in (`/api/emit/...`).
        self.emitter: EmitService | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await http_request(scope, receive, send)
        if request is None:
            return
        try:
            request.body = await read_body(
                receive, request.headers.get("content-length"), MAX_REQUEST_BYTES
            )
            response = await self.handle(request)
        except ServiceError as error:
            response = _json(
                _STATUS.get(error.code, 400), {"Code": error.code, "Message": error.message}
            )
        except BodyTooLarge as exc:
            response = _json(400, {"Code": "InvalidArgument", "Message": str(exc)})
        except Exception:
            log.exception("console %s %s failed", request.method, request.target)
            response = _json(500, {"Code": "InternalError", "Message": "The server failed."})
        await send_response(send, response)

    def _authenticate(self, request: Request) -> None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeError):
            user = password = ""
        key = self.keys.get(user) if scheme.lower() == "basic" else None
        if key is None or not hmac.compare_digest(key.secret, password):
            raise ServiceError(
                "Unauthorized", "Use HTTP Basic with an AccessKey ID and its secret."
            )

    async def handle(self, request: Request) -> Response:
        """Route one request."""
        path, method = request.path.rstrip("/"), request.method
        if path == "/health" and method == "GET":
            return Response(200, b"ok", [("content-type", "text/plain")])
        if path == "/metrics" and method == "GET":
            # Unauthenticated like most scrape targets: counters only, no message data.
            return Response(200, self.metrics.render(), [("content-type", CONTENT_TYPE)])
        self._authenticate(request)
        if path == "/api/deliveries" and method == "GET":
            limit = _int(request.query, "limit") or 100
            records = await self.ledger.find(delivery_filter(request.query), limit)
            return _json(200, {"Deliveries": [dataclasses.asdict(r) for r in records]})
        if path.startswith("/api/deliveries/") and method == "GET":
            delivery_id = _int({"id": path.rsplit("/", 1)[1]}, "id")
            assert delivery_id is not None
            record, attempts = await self.ledger.show(delivery_id)
            payload = dataclasses.asdict(record)
            payload["attempts"] = [dataclasses.asdict(a) for a in attempts]
            return _json(200, payload)
        if path == "/api/deliveries/replay" and method == "POST":
            try:
                params = json.loads(request.body or b"{}")
            except ValueError:
                raise invalid_argument("The body must be a JSON object.") from None
            if not isinstance(params, dict):
                raise invalid_argument("The body must be a JSON object.")
            count = await self.ledger.replay(delivery_filter(params))
            return _json(200, {"Replayed": count})
        if path.startswith(EMIT_PREFIX) and self.emitter is not None:
            return await handle_emit(self.emitter, request, path)
        raise ServiceError("NotFound", f"No operation answers {method} {request.path}.")
