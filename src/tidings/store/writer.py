"""One writer connection with group commit for an SQLite database.

Every write is a function `op(connection, *args)`. Callers from asyncio tasks submit ops;
the writer takes every op that is waiting, runs each inside its own SAVEPOINT (so one
failing op rolls back alone), and commits them all in a single transaction: one fsync
covers the whole group. A caller's future resolves only after that commit, so an
acknowledged write is on disk.

Where the work happens: a group made only of `bounded` ops (a few statements over a
bounded number of rows: one message, a batch of 16, one object row) runs its statements
on the event loop. Any other group runs wholly on the writer thread, so a long op never
stalls the loop. Why not always the thread: every SQLite call releases the GIL, and a
thread that has to win it back from a busy event loop after each statement spends much
of its time waiting; on the loop the same statements re-take a GIL nobody else wants.

The COMMIT of such a group, which waits for the disk, runs on the loop too while commits
are quick, and on the writer thread while they are slow. Handing a commit to the thread
costs two hand-offs, each a thread waiting for the GIL or a wake-up of the loop, and on
a disk that syncs in a fraction of a millisecond those cost more than the sync: on two
cores, committing on the loop answered a single publisher 1.5-1.7x as fast. A disk that
takes milliseconds to sync would stall the loop instead, so the writer keeps a moving
average of its commits and moves them to the thread above `INLINE_COMMIT_LIMIT_MS`
(back below half of it), where the next group gathers while one commits.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Upper bound on ops per transaction: keeps a single commit's latency bounded under
# extreme load while still sharing one fsync between many requests.
MAX_GROUP = 512

# Commits run on the event loop while their moving average (weight `COMMIT_AVERAGE_WEIGHT`
# per commit) stays under this, and on the writer thread above it until it falls under
# half of it. A local SSD commits a small group in well under a millisecond.
INLINE_COMMIT_LIMIT_MS = 4.0
COMMIT_AVERAGE_WEIGHT = 0.1

# How long a group waits for another process (a CLI command on the same data directory)
# to release the database's write lock; only ever waited for on the writer thread.
LOCK_WAIT_SECONDS = 10.0
LOCK_RETRY_SECONDS = 0.002

_BOUNDED = "_tidings_bounded_write"

# The work ops of the running group left for its end: per finishing function, its items.
_group_end: contextvars.ContextVar[dict[Callable[..., None], list[Any]] | None] = (
    contextvars.ContextVar("tidings_group_end", default=None)
)

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]
_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]
_Result = tuple[bool, list[_Outcome]]  # (committed, what each caller hears)


def bounded(op: F) -> F:
    """Mark a write op as cheap enough to run on the event loop (see the module doc)."""
    setattr(op, _BOUNDED, True)
    return op


def is_bounded(op: Callable[..., Any]) -> bool:
    """Whether `op` was marked with `bounded`."""
    return getattr(op, _BOUNDED, False) is True


def at_group_end(finish: Callable[[sqlite3.Connection, list[T]], None], item: T) -> None:
    """From inside an op: leave `item` to `finish(connection, items)`, which runs once
    after the group's last op and before its COMMIT, with every item given to it by the
    group's ops, in order.

    What an op that fails leaves is dropped with the rest of its work. A failing
    `finish` fails the whole group: every caller of the group hears the error.
    """
    batches = _group_end.get()
    if batches is None:
        raise RuntimeError("at_group_end is for ops the writer runs")
    batches.setdefault(finish, []).append(item)


def _is_locked(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _begin_patiently(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting (on the writer thread) for another process's write lock."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if not _is_locked(error) or time.monotonic() > deadline:
                raise
            time.sleep(LOCK_RETRY_SECONDS)


def _run_ops(conn: sqlite3.Connection, group: list[_Job]) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    batches: dict[Callable[..., None], list[Any]] = {}
    for op, args, future in group:
        left: dict[Callable[..., None], list[Any]] = {}  # what this op leaves to the end
        token = _group_end.set(left)
        conn.execute("SAVEPOINT op")
        try:
            result = op(conn, *args)
        except Exception as exc:  # the op's own failure: undo it alone, with what it left
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            outcomes.append((future, None, exc))
        else:
            conn.execute("RELEASE op")
            outcomes.append((future, result, None))
            for finish, items in left.items():
                batches.setdefault(finish, []).extend(items)
        finally:
            _group_end.reset(token)
    for finish, items in batches.items():
        finish(conn, items)
    return outcomes


def _failed(conn: sqlite3.Connection, group: list[_Job], exc: BaseException) -> _Result:
    # The transaction itself failed (disk full, I/O error, a lock never released):
    # nothing in the group is durable, so every caller hears about it.
    log.error("group commit failed: %s", exc)
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    return False, [(future, None, exc) for _, _, future in group]


def _commit(conn: sqlite3.Connection, group: list[_Job], outcomes: list[_Outcome]) -> _Result:
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        return _failed(conn, group, exc)
    return True, outcomes


def _run_group(conn: sqlite3.Connection, group: list[_Job]) -> _Result:
    """A whole group on the writer thread: begin, run the ops, commit."""
    try:
        _begin_patiently(conn)
        outcomes = _run_ops(conn, group)
    except Exception as exc:  # SAVEPOINT machinery or a group's end failed: all fail
        return _failed(conn, group, exc)
    return _commit(conn, group, outcomes)


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the caller was cancelled; the write happened regardless
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class GroupCommitWriter:
    """Serialises writes onto one connection and commits them in groups.

    Serves the event loop it was started on. At most one group is in progress at a
    time; ops that arrive meanwhile wait in `_pending` and form the next group.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str = "tidings-writer"):
        self._connect = connect
        self._name = name
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[_Job] = collections.deque()
        self._busy = False
        self._idle = asyncio.Event()
        self._commit_ms = 0.0  # moving average of commit durations
        self._commit_on_loop = True
        # Read by tests and metrics: how many transactions carried how many ops.
        self.commits = 0
        self.ops = 0

    def start(self) -> None:
        """Open the connection and serve the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        self._conn = self._connect()
        # Waiting for another process's lock happens on the writer thread (see
        # `_begin_patiently`); on the loop, BEGIN must fail at once rather than block.
        self._conn.execute("PRAGMA busy_timeout = 0")
        self._idle.set()

    async def run(self, op: Callable[..., T], *args: Any) -> T:
        """Run `op(connection, *args)` in the next group and wait for its commit."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise RuntimeError("the writer serves only the event loop that started it")
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((op, args, future))
        if not self._busy:
            # Scheduled rather than run now, so that the ops submitted in this loop
            # iteration share the group.
            self._busy = True
            self._idle.clear()
            loop.call_soon(self._next_group)
        return await future

    async def stop(self) -> None:
        """Commit what is queued, then close the connection."""
        if self._loop is None or self._thread is None or self._conn is None:
            return
        await self._idle.wait()
        await self._loop.run_in_executor(self._thread, self._conn.close)
        self._thread.shutdown()
        self._loop = self._thread = self._conn = None

    def _next_group(self) -> None:
        assert self._loop is not None and self._thread is not None and self._conn is not None
        if not self._pending:
            self._busy = False
            self._idle.set()
            return
        group = [self._pending.popleft() for _ in range(min(len(self._pending), MAX_GROUP))]
        done: asyncio.Future[_Result]
        conn = self._conn
        if all(is_bounded(op) for op, _, _ in group) and self._begin_at_once():
            try:
                outcomes = _run_ops(conn, group)
            except Exception as exc:  # the SAVEPOINT machinery or the group's end failed
                done = self._now(_failed, conn, group, exc)
            else:
                if self._commit_on_loop:
                    done = self._now(self._timed_commit, group, outcomes)
                else:
                    done = self._loop.run_in_executor(
                        self._thread, self._timed_commit, group, outcomes
                    )
        else:
            done = self._loop.run_in_executor(self._thread, _run_group, conn, group)
        # Called back on a later loop iteration even when done already: the ops that
        # tasks submit meanwhile join the next group.
        done.add_done_callback(functools.partial(self._group_done, group))

    def _now(self, work: Callable[..., _Result], *args: Any) -> asyncio.Future[_Result]:
        """`work(*args)` run here, as a finished future (like the thread's would be)."""
        assert self._loop is not None
        done: asyncio.Future[_Result] = self._loop.create_future()
        try:
            done.set_result(work(*args))
        except Exception as exc:  # e.g. a failing ROLLBACK: `_group_done` still answers
            done.set_exception(exc)
        return done

    def _timed_commit(self, group: list[_Job], outcomes: list[_Outcome]) -> _Result:
        """COMMIT (on the loop or the writer thread), and choose where the next one runs."""
        assert self._conn is not None
        started = time.perf_counter()
        result = _commit(self._conn, group, outcomes)
        took_ms = (time.perf_counter() - started) * 1000
        # Only one commit runs at a time, so this state has one writer at any moment.
        self._commit_ms += COMMIT_AVERAGE_WEIGHT * (took_ms - self._commit_ms)
        if self._commit_on_loop:
            self._commit_on_loop = self._commit_ms <= INLINE_COMMIT_LIMIT_MS
        else:
            self._commit_on_loop = self._commit_ms < INLINE_COMMIT_LIMIT_MS / 2
        return result

    @property
    def commits_on_loop(self) -> bool:
        """Whether the next quick group commits on the event loop (see the module doc)."""
        return self._commit_on_loop

    @property
    def commit_ms(self) -> float:
        """The moving average of commit durations, in milliseconds."""
        return self._commit_ms

    def _begin_at_once(self) -> bool:
        """BEGIN IMMEDIATE on the loop; False when that fails (the thread then waits)."""
        assert self._conn is not None
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:  # mostly another process's write lock
            return False
        return True

    def _group_done(self, group: list[_Job], done: asyncio.Future[_Result]) -> None:
        try:
            committed, outcomes = done.result()
        except Exception as exc:  # even the ROLLBACK failed: still answer every caller
            log.exception("writer failed")
            committed, outcomes = False, [(future, None, exc) for _, _, future in group]
        self.commits += committed
        self.ops += len(group)
        _settle(outcomes)
        self._next_group()
