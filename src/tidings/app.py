"""Wires the store, the services and the listeners' ASGI apps together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from tidings.api.http import Receive, Response, Scope, Send, lifespan, send_response
from tidings.api.mns.app import MnsApp
from tidings.auth.keys import KeyRing
from tidings.clock import ScaledClock
from tidings.config import Settings
from tidings.services.queues import QueueService
from tidings.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

EXPIRY_SWEEP_SECONDS = 5.0


async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A listener that so far only answers `GET /health` (OSS and console, until built)."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await send_response(send, Response(200, b"ok", [("content-type", "text/plain")]))
    else:
        await send_response(send, Response(404, b"not found", [("content-type", "text/plain")]))


class Tidings:
    """One running instance: store, services, background tasks and ASGI apps."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = ScaledClock(settings.clock_speed)
        self.store = SqliteStore(settings.database_path, synchronous=settings.synchronous)
        self.queues = QueueService(
            self.store, self.clock, region=settings.region, account_id=settings.account_id
        )
        self.mns_app = MnsApp(self.queues, KeyRing(settings.keys()))
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, background: bool = True) -> None:
        """Open the store and, for a server, start the background tasks."""
        await self.store.open()
        if background:
            sweep = EXPIRY_SWEEP_SECONDS / self.settings.clock_speed
            self._tasks.append(asyncio.create_task(self.queues.run_expiry(sweep)))

    def stop_waiting(self) -> None:
        """Answer every long poll now (first step of a graceful shutdown)."""
        self.queues.notifier.close()

    async def stop(self) -> None:
        """Stop background tasks and flush the store."""
        self.stop_waiting()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.store.close()


@contextlib.asynccontextmanager
async def running(settings: Settings, background: bool = False) -> AsyncIterator[Tidings]:
    """A started instance for the CLI or tests; stopped on exit."""
    instance = Tidings(settings)
    await instance.start(background=background)
    try:
        yield instance
    finally:
        await instance.stop()
