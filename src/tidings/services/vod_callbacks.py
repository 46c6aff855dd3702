"""VOD message callbacks: their configuration (SetMessageCallback) and their delivery.

Spec event-sources §4.1-§4.3. An application (`AppId`) has at most one callback: an
HTTP URL, POSTed the event JSON (signed with `X-VOD-TIMESTAMP`/`X-VOD-SIGNATURE` when
`AuthSwitch` is on), or an SMQ queue, sent the event JSON as one message. Success is
HTTP status exactly 200 within 5 s (redirects are not followed), or the queue accepting
the message; VOD tries 3 times in all, 1 s apart, then drops the event. Unlike VOD, the
outcome is reported back to whoever emitted the event, which is the point of a local
emulator. The queue is always this server's, whatever `MnsEndpoint` says.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import yarl

from tidings.clock import Clock
from tidings.delivery.targets.http import PolicyResolver
from tidings.errors import ServiceError, invalid_argument
from tidings.events import vod
from tidings.services.endpoints import address_allowed
from tidings.services.queues import QueueService, SendRequest
from tidings.services.validation import check_queue_name
from tidings.store.sqlite_vod_callbacks import SqliteVodCallbackStore, VodCallback

CALLBACK_TIMEOUT_SECONDS = 5.0
ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
MAX_URL_BYTES = 256
MAX_AUTH_KEY_LENGTH = 32
# The receiver's answer is read (so the connection closes cleanly) but ignored (§4.2).
MAX_RESPONSE_BYTES = 64 * 1024
HTTP, MNS = "HTTP", "MNS"
# SetMessageCallback's parameters (OwnerAccount is accepted and ignored).
PARAMETERS = (
    "AppId",
    "CallbackType",
    "CallbackURL",
    "EventTypeList",
    "AuthSwitch",
    "AuthKey",
    "MnsEndpoint",
    "MnsQueueName",
    "OwnerAccount",
)


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What became of one event's callback.

    `kind` is `HTTP` or `MNS`; `target` the URL or queue name. `skipped` says the
    application's EventTypeList does not switch this event type on (nothing was sent).
    """

    kind: str
    target: str
    ok: bool
    attempts: int = 0
    status: int | None = None
    message_id: str | None = None
    error: str | None = None
    skipped: bool = False

    def to_api(self) -> dict[str, object]:
        """The console API's JSON object."""
        return {
            "CallbackType": self.kind,
            "Target": self.target,
            "Success": self.ok,
            "Skipped": self.skipped,
            "Attempts": self.attempts,
            "HttpStatus": self.status,
            "MessageId": self.message_id,
            "Error": self.error,
        }


def callback_to_api(callback: VodCallback) -> dict[str, str]:
    """GetMessageCallback's `MessageCallback` object."""
    return {
        "AppId": callback.app_id,
        "CallbackType": callback.callback_type,
        "CallbackURL": callback.callback_url,
        "EventTypeList": callback.event_type_list,
        "AuthSwitch": callback.auth_switch,
        "AuthKey": callback.auth_key,
        "MnsEndpoint": callback.mns_endpoint,
        "MnsQueueName": callback.mns_queue_name,
    }


def callback_from_params(params: Mapping[str, object]) -> VodCallback:
    """A validated configuration from SetMessageCallback's parameters.

    `EventTypeList` defaults to `ALL` here (the console switches events on one by one;
    an emulator is more useful with everything on); `AuthSwitch` defaults to `on` when
    an `AuthKey` is given.
    """
    text = {name: _string(name, value) for name, value in params.items()}
    unknown = [name for name in text if name not in PARAMETERS]
    if unknown:
        raise invalid_argument(
            f"SetMessageCallback has no parameter {unknown[0]!r}: use {', '.join(PARAMETERS)}."
        )
    kind = text.get("CallbackType", "").upper()
    app_id = text.get("AppId") or vod.DEFAULT_APP_ID
    event_types = text.get("EventTypeList", vod.ALL)
    _check_event_types(event_types)
    if kind == HTTP:
        for name in ("MnsEndpoint", "MnsQueueName"):
            if text.get(name):
                raise invalid_argument(f"{name} is for CallbackType MNS, not HTTP.")
        url = text.get("CallbackURL", "")
        _check_url("CallbackURL", url)
        key = text.get("AuthKey", "")
        switch = text.get("AuthSwitch", "on" if key else "off").lower()
        if switch not in ("on", "off"):
            raise invalid_argument(f"AuthSwitch must be on or off, not {switch!r}.")
        if switch == "on":
            _check_auth_key(key)
        return VodCallback(app_id, HTTP, url, event_types, switch, key)
    if kind == MNS:
        for name in ("CallbackURL", "AuthKey"):
            if text.get(name):
                raise invalid_argument(f"{name} is for CallbackType HTTP, not MNS.")
        queue = text.get("MnsQueueName", "")
        if not queue:
            raise invalid_argument("CallbackType MNS needs MnsQueueName, the receiving queue.")
        check_queue_name(queue)
        endpoint = text.get("MnsEndpoint", "")
        if endpoint:
            _check_url("MnsEndpoint", endpoint)
        return VodCallback(app_id, MNS, "", event_types, "off", "", endpoint, queue)
    raise invalid_argument(f"CallbackType must be HTTP or MNS, not {kind or 'empty'!r}.")


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise invalid_argument(f"SetMessageCallback's {name} must be a string, not {value!r}.")
    return value.strip()


def _check_event_types(event_types: str) -> None:
    for name in (n.strip() for n in event_types.split(",")):
        if name and name not in (vod.ALL, vod.AI_COMPLETE, *vod.EVENT_TYPES):
            raise ServiceError(
                "EventTypeInvalid",
                f"EventTypeList names {name!r}, which is not a VOD event type: use ALL,"
                f" AIComplete or comma-separated names such as FileUploadComplete.",
            )


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    why = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        why = "give an http(s) URL with a host"
    elif len(url.encode()) > MAX_URL_BYTES:
        why = f"it is longer than {MAX_URL_BYTES} bytes"
    elif not all(0x21 <= ord(char) <= 0x7E for char in url):
        why = "spaces, control and non-ASCII characters must be percent-encoded"
    if why is not None:
        raise invalid_argument(f"{name} {url!r} is invalid: {why}.")


def _check_auth_key(key: str) -> None:
    if not key:
        raise invalid_argument("AuthSwitch on needs an AuthKey to sign callbacks with.")
    classes = (str.isupper, str.islower, str.isdigit)
    if (
        len(key) > MAX_AUTH_KEY_LENGTH
        or not key.isascii()
        or not key.isprintable()
        or not all(any(test(char) for char in key) for test in classes)
    ):
        raise invalid_argument(
            f"AuthKey must be at most {MAX_AUTH_KEY_LENGTH} characters and mix upper case,"
            " lower case and digits (e.g. Vod2025Key)."
        )


class VodCallbacks:
    """Configures VOD callbacks and sends events to them."""

    def __init__(
        self,
        store: SqliteVodCallbackStore,
        queues: QueueService,
        clock: Clock,
        *,
        allowed_networks: tuple[str, ...] = (),
        denied_networks: tuple[str, ...] = (),
        timeout: float = CALLBACK_TIMEOUT_SECONDS,
        attempts: int = ATTEMPTS,
        retry_delay: float = RETRY_DELAY_SECONDS,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queues = queues
        self.clock = clock
        self.allowed_networks = allowed_networks
        self.denied_networks = denied_networks
        self.timeout = timeout
        self.attempts = attempts
        self.retry_delay = retry_delay
        # The signature's timestamp is real time, which receivers check against their
        # own clocks, never the (possibly accelerated) server clock.
        self.wall = wall

    async def set(self, params: Mapping[str, object]) -> VodCallback:
        """SetMessageCallback: validate and store (replacing the application's config)."""
        callback = callback_from_params(params)
        await self.store.put(callback, self.clock.now_ms())
        return callback

    async def get(self, app_id: str = vod.DEFAULT_APP_ID) -> VodCallback:
        """GetMessageCallback; NotFound when the application has none."""
        callback = await self.store.get(app_id)
        if callback is None:
            raise ServiceError("NotFound", f"The VOD application {app_id} has no callback.")
        return callback

    async def list(self) -> list[VodCallback]:
        """Every application's callback."""
        return await self.store.list()

    async def delete(self, app_id: str = vod.DEFAULT_APP_ID) -> None:
        """DeleteMessageCallback; NotFound when the application has none."""
        if not await self.store.delete(app_id):
            raise ServiceError("NotFound", f"The VOD application {app_id} has no callback.")

    async def deliver(self, app_id: str, event_type: str, body: str) -> CallbackResult | None:
        """Send an event to the application's callback; None when it has none."""
        callback = await self.store.get(app_id)
        if callback is None:
            return None
        target = (
            callback.callback_url if callback.callback_type == HTTP else callback.mns_queue_name
        )
        if not vod.event_enabled(callback.event_type_list, event_type):
            reason = f"{event_type} is not in EventTypeList {callback.event_type_list!r}"
            return CallbackResult(callback.callback_type, target, False, error=reason, skipped=True)
        if callback.callback_type == HTTP:
            key = callback.auth_key if callback.auth_switch == "on" else ""
            return await self._post(callback.callback_url, key, body)
        return await self._enqueue(callback.mns_queue_name, body)

    async def _enqueue(self, queue: str, body: str) -> CallbackResult:
        error = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self.retry_delay)
            try:
                (outcome,) = await self.queues.send(queue, [SendRequest(body)])
            except ServiceError as refused:
                error = f"{refused.code}: {refused.message}"
                continue
            if outcome.error is None:
                return CallbackResult(MNS, queue, True, attempt, message_id=outcome.message_id)
            error = f"{outcome.error.code}: {outcome.error.message}"
        return CallbackResult(MNS, queue, False, self.attempts, error=error)

    async def _post(self, url: str, key: str, body: str) -> CallbackResult:
        refusal = self._refused_literal(urlsplit(url).hostname or "")
        if refusal is not None:
            return CallbackResult(HTTP, url, False, error=refusal)
        status: int | None = None
        error = ""
        async with self._session() as session:
            for attempt in range(1, self.attempts + 1):
                if attempt > 1:
                    await asyncio.sleep(self.retry_delay)
                headers = {"Content-Type": "application/json"}
                if key:
                    headers.update(vod.auth_headers(url, key, int(self.wall())))
                try:
                    async with session.post(
                        yarl.URL(url, encoded=True),
                        data=body.encode("utf-8"),
                        headers=headers,
                        allow_redirects=False,
                    ) as response:
                        await response.content.read(MAX_RESPONSE_BYTES)
                        status = response.status
                except TimeoutError:
                    status, error = None, f"no answer within {self.timeout:g} s"
                    continue
                except (aiohttp.ClientError, ValueError) as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"
                    continue
                if status == 200:
                    return CallbackResult(HTTP, url, True, attempt, status)
                # Only exactly 200 counts: VOD treats 201, 204 and redirects as failures.
                error = f"HTTP {status}"
        return CallbackResult(HTTP, url, False, self.attempts, status, error=error)

    def _session(self) -> aiohttp.ClientSession:
        # One session per event: callbacks are rare, and nothing must outlive a CLI run.
        resolver = None
        if self.allowed_networks or self.denied_networks:
            resolver = PolicyResolver(self.allowed_networks, self.denied_networks)
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=resolver, force_close=True),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            skip_auto_headers=("User-Agent",),
        )

    def _refused_literal(self, host: str) -> str | None:
        # aiohttp never asks the resolver about IP literals, so they are checked here.
        if not (self.allowed_networks or self.denied_networks):
            return None
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None  # a name: the resolver judges it
        if address_allowed(host.strip("[]"), self.allowed_networks, self.denied_networks):
            return None
        return f"callbacks to {host} are not allowed by the administrator"
