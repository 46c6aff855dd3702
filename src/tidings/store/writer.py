"""One writer thread with group commit for an SQLite database.

Every write is a function `op(connection, *args)`. Callers from any number of asyncio
tasks submit ops; the writer thread takes every op that is waiting, runs each inside its
own SAVEPOINT (so one failing op rolls back alone), and commits them all in a single
transaction: one fsync covers the whole group. A caller's future resolves only after
that commit, so an acknowledged write is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Upper bound on ops per transaction: keeps a single commit's latency bounded under
# extreme load while still sharing one fsync between many requests.
MAX_GROUP = 512

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]
_STOP = object()


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the caller was cancelled; the write happened regardless
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class GroupCommitWriter:
    """Serialises writes onto one connection and commits them in groups."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str = "tidings-writer"):
        self._connect = connect
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        # Read by tests and metrics: how many transactions carried how many ops.
        self.commits = 0
        self.ops = 0

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()
        self._started = True

    async def run(self, op: Callable[..., T], *args: Any) -> T:
        """Run `op(connection, *args)` in the next group and wait for its commit."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((op, args, future))
        return await future

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._started:
            self._jobs.put(_STOP)
            self._thread.join()
            self._started = False

    def _take_group(self, first: Any) -> tuple[list[_Job], bool]:
        group: list[_Job] = [first]
        while len(group) < MAX_GROUP:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return group, True
            group.append(job)
        return group, False

    def _run(self) -> None:
        conn = self._connect()
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is _STOP:
                    break
                group, stopping = self._take_group(first)
                self._commit_group(conn, group)
        finally:
            conn.close()

    def _commit_group(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, args, future in group:
                conn.execute("SAVEPOINT op")
                try:
                    result = op(conn, *args)
                except Exception as exc:  # the op's own failure: undo it alone
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((future, None, exc))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((future, result, None))
            conn.execute("COMMIT")
            self.commits += 1
            self.ops += len(group)
        except sqlite3.Error as exc:
            # The commit itself failed (disk full, I/O error): nothing in the group is
            # durable, so every caller hears about it.
            log.error("group commit failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(future, None, exc) for _, _, future in group]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, settled in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, settled)
