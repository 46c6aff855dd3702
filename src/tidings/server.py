"""`tidings serve`: every listener on one asyncio loop, with a graceful exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Generator

import uvicorn

from tidings.app import Tidings
from tidings.config import Settings

log = logging.getLogger(__name__)

BACKLOG = 2048


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (several share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _uvicorn(app: object) -> _Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        http="httptools",
        lifespan="off",
        access_log=False,
        server_header=False,
        # The client address is the socket peer: no forwarding headers are trusted.
        proxy_headers=False,
        log_config=None,
        log_level="warning",
        timeout_keep_alive=75,
    )
    return _Server(config)


def _reachable(host: str) -> str:
    """A host others can connect to when listening on every address."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight requests and flush the store."""
    instance = Tidings(settings)
    apps: list[tuple[str, int, object]] = [
        ("oss", settings.oss_port, instance.oss_app),
        ("mns", settings.mns_port, instance.mns_app),
        ("console", settings.console_port, instance.console_app),
    ]
    bound = [(name, _bind(settings.host, port), app) for name, port, app in apps]
    if not settings.public_mns_url:
        mns_socket = next(sock for name, sock, _ in bound if name == "mns")
        instance.public_mns_url = _url(_reachable(settings.host), mns_socket)
    await instance.start()
    servers = [_uvicorn(app) for _, _, app in bound]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, (_, sock, _) in zip(servers, bound, strict=True)
    ]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.01)
    for name, sock, _ in bound:
        print(f"{name} listening on {_url(settings.host, sock)}", flush=True)
    if settings.default_credentials:
        print(
            f"access key id: {settings.access_key_id}  secret: {settings.access_key_secret}"
            "  (defaults: set TIDINGS_ACCESS_KEY_ID / TIDINGS_ACCESS_KEY_SECRET)",
            flush=True,
        )
    done_task = asyncio.create_task(stopping.wait())
    await asyncio.wait([done_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down")
    instance.stop_waiting()
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    done_task.cancel()
    await instance.stop()
    print("tidings stopped", flush=True)


def run(settings: Settings) -> None:
    """Blocking entry point for the CLI."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
