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
        # Waiters in arrival order (a dict keeps it), so the longest-waiting wakes first.
        self._waiters: defaultdict[int, dict[asyncio.Future[None], None]] = defaultdict(dict)
        self.closed = False

    def subscribe(self, queue_id: int) -> asyncio.Future[None]:
        """A future that completes at the next `notify(queue_id)`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_result(None)
        else:
            self._waiters[queue_id][future] = None
        return future

    def unsubscribe(self, queue_id: int, future: asyncio.Future[None]) -> None:
        """Forget a waiter (after it woke or timed out)."""
        waiters = self._waiters.get(queue_id)
        if waiters is not None:
            waiters.pop(future, None)
            if not waiters:
                del self._waiters[queue_id]

    def notify(self, queue_id: int, count: int | None = None) -> None:
        """Wake receivers waiting on `queue_id`: `count` of them (as many as messages
        arrived), or all. Waking more than there are messages only makes the others run
        an empty receive through the store's writer; a woken receiver always goes on to
        receive, so nothing is left unclaimed while others sleep."""
        waiters = self._waiters.get(queue_id)
        if not waiters:
            return
        if count is None or count >= len(waiters):
            woken = list(waiters)
            del self._waiters[queue_id]
        else:
            woken = list(waiters)[:count]
            for future in woken:
                del waiters[future]
        for future in woken:
            if not future.done():
                future.set_result(None)

    def close(self) -> None:
        """Wake everybody and answer future waits at once (server shutdown)."""
        self.closed = True
        for queue_id in list(self._waiters):
            self.notify(queue_id)
