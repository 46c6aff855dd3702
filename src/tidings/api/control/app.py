"""The `mns-open` 2022-01-19 control plane, served on the MNS listener.

`MnsApp` hands over `POST /` requests for which `is_control_request` holds; `ControlApp`
then parses the query and form body, authenticates (ACS3 or RPC signature), dispatches
by `Action` through `tidings.api.control.actions.ACTIONS`, and answers the JSON envelope,
for refusals too: never HTML or a stack trace.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from tidings.api.control import envelope
from tidings.api.control.actions import ACTIONS
from tidings.api.control.context import Call, Data, Handler, Services
from tidings.api.control.params import Params, parse_form
from tidings.api.http import Request, Response
from tidings.auth import acs
from tidings.auth.keys import KeyRing
from tidings.errors import ServiceError, invalid_argument

log = logging.getLogger(__name__)

API_VERSION = "2022-01-19"
FORM = "application/x-www-form-urlencoded"


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(FORM)


def is_control_request(request: Request) -> bool:
    """Whether a `POST /` request is for the control plane: it names an `Action` in its
    query or form body, or carries `x-acs-action` (the SDK's default ACS3 signing)."""
    if "action" in request.query or "x-acs-action" in request.headers:
        return True
    # Only a form body can name the action; look before paying for a parse.
    if b"Action=" not in request.body or not _is_form(request):
        return False
    try:
        return any(name == "Action" for name, _ in parse_form(request.body.decode(), "body"))
    except (UnicodeDecodeError, ServiceError):
        return True  # ours to refuse, with a JSON error rather than an MNS XML one


class ControlApp:
    """Serves control-plane requests; `handle` always answers, refusals included."""

    def __init__(
        self, services: Services, keys: KeyRing, actions: Mapping[str, Handler] | None = None
    ) -> None:
        self.services = services
        self.keys = keys
        self.actions = ACTIONS if actions is None else actions

    async def handle(self, request: Request) -> Response:
        """Answer one control-plane request with the JSON envelope."""
        rid = str(uuid.uuid4()).upper()
        host = request.headers.get("host", "localhost")
        # Logged instead of the target: an RPC query string carries the signature.
        named = request.headers.get("x-acs-action") or request.query.get("action", "?")
        try:
            data = await self._dispatch(request, rid, host)
            status, body = 200, envelope.success(rid, data)
        except ServiceError as error:
            status = envelope.status_for(error.code)
            log.info(
                "control %s -> %d %s: %s (request %s)",
                named,
                status,
                error.code,
                error.message,
                rid,
            )
            body = envelope.failure(rid, error, host)
        except Exception:
            log.exception("control %s failed (request %s)", named, rid)
            internal = ServiceError(
                "InternalError", f"The server failed; see its log for request {rid}."
            )
            status, body = 500, envelope.failure(rid, internal, host)
        headers = [("Content-Type", envelope.JSON), ("x-acs-request-id", rid)]
        return Response(status, body, headers)

    async def _dispatch(self, request: Request, rid: str, host: str) -> Data:
        query = parse_form(request.query_string, "query string")
        form: list[tuple[str, str]] = []
        if request.body and _is_form(request):
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid_argument("The form body is not UTF-8.") from None
            form = parse_form(text, "form body")
        key = acs.verify(
            self.keys, request.method, request.raw_path, query, form, request.headers, request.body
        )
        # CreateTopic sends some parameters in the query and the rest in the form body.
        params = Params(dict([*query, *form]))
        action = self._action(request, params)
        self._check_version(request, params)
        handler = self.actions.get(action)
        if handler is None:
            raise ServiceError(
                "InvalidAction.NotFound",
                f"The action {action!r} is not served by the mns-open control plane"
                f" ({API_VERSION}); use one of: {', '.join(sorted(self.actions))}.",
            )
        return await handler(Call(self.services, params, key, f"http://{host}", rid))

    @staticmethod
    def _action(request: Request, params: Params) -> str:
        header = request.headers.get("x-acs-action")
        parameter = params.get("Action")
        if header and parameter and header != parameter:
            raise invalid_argument(
                f"The x-acs-action header ({header}) and the Action parameter ({parameter})"
                " differ; send one action."
            )
        action = header or parameter
        if not action:
            raise ServiceError("MissingAction", "Action is mandatory: name the operation.")
        return action

    @staticmethod
    def _check_version(request: Request, params: Params) -> None:
        version = request.headers.get("x-acs-version") or params.get("Version")
        if not version:
            raise ServiceError(
                "MissingVersion", f"Version is mandatory: send Version={API_VERSION}."
            )
        if version != API_VERSION:
            raise ServiceError(
                "InvalidVersion",
                f"Version {version!r} is not served; the mns-open control plane is {API_VERSION}.",
            )
