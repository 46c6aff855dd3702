"""Wake long polls when a queue may have something for them.

A receive that finds nothing subscribes *before* it looks, so a message committed
between the look and the wait still wakes it. Waiting costs nothing until a send (or a
timer computed from the next visibility time) fires.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Notifier:
    """Per-queue wake-ups for long-polling receivers."""

    def __init__(self) -> None:
        self._waiters: defaultdict[int, set[asyncio.Future[None]]] = defaultdict(set)
        self.closed = False

    def subscribe(self, queue_id: int) -> asyncio.Future[None]:
        """A future that completes at the next `notify(queue_id)`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_result(None)
        else:
            self._waiters[queue_id].add(future)
        return future

    def unsubscribe(self, queue_id: int, future: asyncio.Future[None]) -> None:
        """Forget a waiter (after it woke or timed out)."""
        waiters = self._waiters.get(queue_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[queue_id]

    def notify(self, queue_id: int) -> None:
        """Wake every receiver waiting on `queue_id`."""
        for future in self._waiters.pop(queue_id, ()):
            if not future.done():
                future.set_result(None)

    def close(self) -> None:
        """Wake everybody and answer future waits at once (server shutdown)."""
        self.closed = True
        for queue_id in list(self._waiters):
            self.notify(queue_id)
