"""Making upload callbacks (spec 10.3): `CallbackSender` against a loopback aiohttp
application server — the signed POST, fail-over between URLs, every failure mode, and
the administrator's network policy."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tests.unit.test_upload_callback import KEY_URL, app_server_verifies
from tidings.api.oss.callback import FORM_TYPE, CallbackSpec
from tidings.api.oss.callback_sender import CallbackSender
from tidings.auth.callback_key import CallbackSigner


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> CallbackSigner:
    return CallbackSigner.load_or_create(tmp_path_factory.mktemp("callback"))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    """A loopback application server whose answer each test chooses."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answer: Handler = self.ok
        self.base = ""

    async def ok(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"Status": "OK"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append((request.raw_path, headers, body))
        return await self.answer(request)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def send(
    sender: CallbackSender, urls: list[str], body: bytes = b"a=1", host: str | None = None
) -> tuple[bytes | None, str | None]:
    try:
        result = await sender.send(CallbackSpec(tuple(urls), "t", FORM_TYPE, host), body, KEY_URL)
    finally:
        await sender.close()
    return result.body, result.failure


async def test_sender_posts_signed_body(receiver: Receiver, signer: CallbackSigner) -> None:
    url = f"{receiver.base}/cb%20x?from=oss"
    body, failure = await send(CallbackSender(signer), [url], b"k=v", host="app.example")
    assert (body, failure) == (b'{"Status": "OK"}', None)
    [(target, headers, received)] = receiver.requests
    assert (target, received) == ("/cb%20x?from=oss", b"k=v")
    assert headers["host"] == "app.example"
    assert headers["content-type"] == FORM_TYPE
    assert headers["user-agent"] == "tidings-oss-callback"
    assert base64.b64decode(headers["x-oss-pub-key-url"]).decode() == KEY_URL
    assert app_server_verifies(signer.public_key_pem, headers["authorization"], target, received)


async def test_sender_fails_over_to_the_next_url(
    receiver: Receiver, signer: CallbackSigner
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/cb"
    body, failure = await send(CallbackSender(signer), [dead, f"{receiver.base}/second"])
    assert (body, failure) == (b'{"Status": "OK"}', None)
    assert [target for target, _, _ in receiver.requests] == ["/second"]


async def test_sender_failures(receiver: Receiver, signer: CallbackSigner) -> None:
    async def error(request: web.Request) -> web.StreamResponse:
        return web.json_response({"e": 1}, status=500)

    async def text(request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")

    async def big(request: web.Request) -> web.StreamResponse:
        return web.json_response({"pad": "x" * 200})

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.5)
        return web.json_response({})

    url = f"{receiver.base}/cb"
    receiver.answer = error
    assert await send(CallbackSender(signer), [url]) == (None, "Error status : 500.")
    receiver.answer = text
    assert await send(CallbackSender(signer), [url]) == (
        None,
        "Response body is not valid json format.",
    )
    receiver.answer = big
    _, failure = await send(CallbackSender(signer, max_response_bytes=100), [url])
    assert failure == "The callback response body exceeds 100 bytes."
    receiver.answer = slow
    _, failure = await send(CallbackSender(signer, timeout=0.2), [url])
    assert failure == "Error status : -1. No answer within 0.2 s."
    _, failure = await send(CallbackSender(signer), [f"http://127.0.0.1:{closed_port()}/"])
    assert failure is not None and failure.startswith("Error status : -1. Cannot reach")


async def test_sender_reports_every_url_that_failed(
    receiver: Receiver, signer: CallbackSigner
) -> None:
    async def error(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502)

    receiver.answer = error
    urls = [f"{receiver.base}/one", f"{receiver.base}/two"]
    _, failure = await send(CallbackSender(signer), urls)
    assert failure == f"{urls[0]}: Error status : 502. {urls[1]}: Error status : 502."


async def test_sender_obeys_the_network_policy(receiver: Receiver, signer: CallbackSigner) -> None:
    sender = CallbackSender(signer, denied_networks=("127.0.0.0/8",))
    _, failure = await send(sender, [f"{receiver.base}/cb"])
    assert failure == (
        "Error status : -1. callbacks to 127.0.0.1 are not allowed by the administrator."
    )
    named = f"http://localhost:{receiver.base.rsplit(':', 1)[1]}/cb"
    denied = ("127.0.0.0/8", "::1/128")
    _, failure = await send(CallbackSender(signer, denied_networks=denied), [named])
    assert failure is not None and "not allowed by the administrator" in failure
    assert receiver.requests == []
