"""The console API of the producer emulator (`tidings.services.emit`).

* `POST /api/emit/{product}` with `{"EventType": ..., "Fields": {...}, "AppId": ...}`
  (`Fields` and `AppId` optional) emits one event and answers what became of it:
  `{"Product", "EventType", "MessageBody", "MessageIds", "Published", "Callback"}`.
* `GET /api/emit/{product}` lists the product's event types.
* `GET|PUT|DELETE /api/emit/vod/callback` reads, sets (SetMessageCallback's parameters
  as a JSON object) or removes a VOD application's callback; `?AppId=` picks the
  application (default `app-1000000`). `GET /api/emit/vod/callbacks` lists them all.

Products are `dm`, `vod` and `viapi` (aliases `directmail`, `vision`). The caller has
already been authenticated by the console app.
"""

from __future__ import annotations

import json

from tidings.api.http import Request, Response
from tidings.errors import ServiceError, invalid_argument
from tidings.events.vod import DEFAULT_APP_ID
from tidings.services.emit import EmitService, event_types, product_of
from tidings.services.vod_callbacks import callback_to_api

PREFIX = "/api/emit/"


def _json(payload: object) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(200, body, [("content-type", "application/json")])


def _object(request: Request) -> dict[str, object]:
    try:
        params = json.loads(request.body or b"{}")
    except ValueError:
        raise invalid_argument("The body must be a JSON object.") from None
    if not isinstance(params, dict):
        raise invalid_argument("The body must be a JSON object.")
    return params


async def handle_emit(emitter: EmitService, request: Request, path: str) -> Response:
    """Answer a request under `/api/emit/` (`path` without its trailing slash)."""
    method = request.method
    rest = path[len(PREFIX) :]
    # The query parser lower-cases names: `?AppId=` arrives as `appid`.
    app_id = request.query.get("appid") or DEFAULT_APP_ID
    callbacks = emitter.callbacks
    if rest == "vod/callback":
        if method == "GET":
            return _json({"MessageCallback": callback_to_api(await callbacks.get(app_id))})
        if method in ("PUT", "POST"):
            callback = await callbacks.set(_object(request))
            return _json({"MessageCallback": callback_to_api(callback)})
        if method == "DELETE":
            await callbacks.delete(app_id)
            return _json({"AppId": app_id, "Deleted": True})
    elif rest == "vod/callbacks" and method == "GET":
        found = await callbacks.list()
        return _json({"MessageCallbacks": [callback_to_api(c) for c in found]})
    elif rest and "/" not in rest:
        if method == "GET":
            product = product_of(rest)
            return _json({"Product": product, "EventTypes": list(event_types(product))})
        if method == "POST":
            return _json(await _emit(emitter, rest, _object(request)))
    raise ServiceError("NotFound", f"No operation answers {method} {request.path}.")


async def _emit(emitter: EmitService, product: str, params: dict[str, object]) -> object:
    event_type, fields, app_id = (
        params.get("EventType"),
        params.get("Fields", {}),
        params.get("AppId"),
    )
    if not isinstance(event_type, str) or not event_type:
        raise invalid_argument('Give the event type: {"EventType": "...", "Fields": {...}}.')
    if not isinstance(fields, dict):
        raise invalid_argument('"Fields" must be a JSON object of field names and values.')
    if app_id is not None and not isinstance(app_id, str):
        raise invalid_argument('"AppId" must be a string.')
    unknown = set(params) - {"EventType", "Fields", "AppId"}
    if unknown:
        raise invalid_argument(
            f"Unknown member {sorted(unknown)[0]!r}: send EventType, Fields and AppId only."
        )
    report = await emitter.deliver(product, event_type, fields, app_id)
    return report.to_api()
