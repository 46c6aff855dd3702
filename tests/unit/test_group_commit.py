"""The group-commit writer: shared transactions, isolated failures, durable results."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tidings.store.writer import GroupCommitWriter, at_group_end, bounded


def make_writer(path: Path) -> GroupCommitWriter:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL)")
        return conn

    writer = GroupCommitWriter(connect)
    writer.start()
    return writer


def insert(conn: sqlite3.Connection, value: int) -> int:
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    if value < 0:
        raise ValueError("negative")
    return value * 2


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        results = await asyncio.gather(*(writer.run(insert, i) for i in range(200)))
    finally:
        await writer.stop()
    assert results == [i * 2 for i in range(200)]
    assert writer.ops == 200
    assert writer.commits < 100, "concurrent writers should share transactions"
    assert count(tmp_path / "db") == 200


async def test_a_failing_op_rolls_back_alone(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        outcomes = await asyncio.gather(
            writer.run(insert, 1), writer.run(insert, -1), writer.run(insert, 2),
            return_exceptions=True,
        )  # fmt: skip
    finally:
        await writer.stop()
    assert outcomes[0] == 2 and outcomes[2] == 4
    assert isinstance(outcomes[1], ValueError)
    with sqlite3.connect(tmp_path / "db") as conn:
        assert sorted(r[0] for r in conn.execute("SELECT v FROM t")) == [1, 2]


async def test_a_result_means_committed(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        await writer.run(insert, 7)
        # A fresh connection sees it before the writer stops: it was committed.
        assert count(tmp_path / "db") == 1
    finally:
        await writer.stop()


async def test_stop_commits_what_is_queued(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    pending = [asyncio.ensure_future(writer.run(insert, i)) for i in range(50)]
    await asyncio.sleep(0)
    await writer.stop()
    await asyncio.gather(*pending)
    assert count(tmp_path / "db") == 50


async def test_ops_see_earlier_writes(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    value = 5
    try:
        await writer.run(insert, value)
        seen = await writer.run(lambda conn: conn.execute("SELECT v FROM t").fetchall())
    finally:
        await writer.stop()
    assert seen == [(value,)]


def where(conn: sqlite3.Connection) -> int:
    conn.execute("INSERT INTO t (v) VALUES (1)")
    return threading.get_ident()


@bounded
def where_bounded(conn: sqlite3.Connection) -> int:
    return where(conn)


@bounded
def insert_bounded(conn: sqlite3.Connection, value: int) -> int:
    return insert(conn, value)


async def test_bounded_ops_run_on_the_loop_and_others_on_the_writer_thread(
    tmp_path: Path,
) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        on_loop = await writer.run(where_bounded)
        elsewhere = await writer.run(where)
        # A group holding one unbounded op runs wholly on the thread.
        mixed = await asyncio.gather(writer.run(where_bounded), writer.run(where))
    finally:
        await writer.stop()
    assert on_loop == threading.get_ident()
    assert elsewhere != threading.get_ident()
    assert mixed[0] == mixed[1] == elsewhere
    assert count(tmp_path / "db") == 4


class CommitTimes(sqlite3.Connection):
    """A connection whose COMMIT takes `delay` seconds longer, noting which thread ran it."""

    delay = 0.0
    fail = False
    committed_on: list[int]

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self.committed_on.append(threading.get_ident())
            time.sleep(self.delay)
            if self.fail:
                raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


def make_timed_writer(path: Path) -> tuple[GroupCommitWriter, CommitTimes]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=CommitTimes)
    conn.committed_on = []
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # commit times are the test's `delay` alone
    conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
    writer = GroupCommitWriter(lambda: conn)
    writer.start()
    return writer, conn


async def test_quick_commits_run_on_the_loop_and_slow_ones_on_the_writer_thread(
    tmp_path: Path,
) -> None:
    writer, conn = make_timed_writer(tmp_path / "db")
    loop_thread = threading.get_ident()
    try:
        for value in range(5):
            await writer.run(insert_bounded, value)
        assert set(conn.committed_on) == {loop_thread} and writer.commits_on_loop
        # A disk that takes 10 ms per commit: the average passes the limit within a
        # few commits, and the following ones go to the writer thread.
        conn.delay = 0.010
        for value in range(10):
            await writer.run(insert_bounded, value)
        assert not writer.commits_on_loop
        conn.committed_on.clear()
        await writer.run(insert_bounded, 99)
        assert loop_thread not in conn.committed_on
        # Quick again: back on the loop once the average falls under half the limit.
        conn.delay = 0.0
        for value in range(100):
            if writer.commits_on_loop:
                break
            await writer.run(insert_bounded, value)
        assert writer.commits_on_loop
        conn.committed_on.clear()
        await writer.run(insert_bounded, 100)
        assert conn.committed_on == [loop_thread]
    finally:
        await writer.stop()


@pytest.mark.parametrize("on_loop", [True, False])
async def test_a_failed_commit_answers_every_caller_and_the_writer_goes_on(
    tmp_path: Path, on_loop: bool
) -> None:
    writer, conn = make_timed_writer(tmp_path / "db")
    try:
        if not on_loop:
            conn.delay = 0.010
            while writer.commits_on_loop:
                await writer.run(insert_bounded, 0)
            conn.delay = 0.0
        conn.fail = True
        outcomes = await asyncio.gather(
            writer.run(insert_bounded, 1), writer.run(insert_bounded, 2),
            return_exceptions=True,
        )  # fmt: skip
        assert [str(o) for o in outcomes] == ["disk I/O error"] * 2
        conn.fail = False
        assert await writer.run(insert_bounded, 3) == 6
    finally:
        await writer.stop()
    with sqlite3.connect(tmp_path / "db") as check:
        assert [r[0] for r in check.execute("SELECT v FROM t WHERE v > 0")] == [3]


async def test_another_process_lock_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    other = sqlite3.connect(tmp_path / "db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a CLI command writing to the same data directory
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, other.execute, "COMMIT")
    try:
        started = loop.time()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        assert await writer.run(insert_bounded, 3) == 6
        ticker.cancel()
    finally:
        await writer.stop()
        other.close()
    assert loop.time() - started >= 0.15
    assert ticks >= 5, "the loop kept running while the writer waited for the lock"
    assert count(tmp_path / "db") == 1


async def test_the_writer_serves_one_loop(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        with pytest.raises(RuntimeError):
            await asyncio.get_running_loop().run_in_executor(
                None, asyncio.run, writer.run(insert, 1)
            )
    finally:
        await writer.stop()


@bounded
def end_the_transaction(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")  # a broken op: the writer's RELEASE then has no savepoint


async def test_a_broken_group_answers_every_caller_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        outcomes = await asyncio.gather(
            writer.run(insert_bounded, 1), writer.run(end_the_transaction),
            return_exceptions=True,
        )  # fmt: skip
        assert all(isinstance(o, sqlite3.Error) for o in outcomes), outcomes
        assert await writer.run(insert_bounded, 2) == 4
    finally:
        await writer.stop()


def insert_all(conn: sqlite3.Connection, items: list[tuple[int, list[int]]]) -> None:
    """A group's end: one multi-row insert for every op's value; each op hears its row id."""
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(value,) for value, _ in items])
    last = conn.execute("SELECT MAX(rowid) FROM t").fetchone()[0]
    for n, (_, heard) in enumerate(items):
        heard.append(last - len(items) + 1 + n)


def insert_at_end(conn: sqlite3.Connection, value: int) -> list[int]:
    heard: list[int] = []
    at_group_end(insert_all, (value, heard))
    if value < 0:  # failing after leaving its row to the group's end
        raise ValueError("negative")
    return heard


def insert_all_or_fail(conn: sqlite3.Connection, items: list[int]) -> None:
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(value,) for value in items])
    if 13 in items:
        raise sqlite3.OperationalError("unlucky batch")


def insert_at_end_or_fail(conn: sqlite3.Connection, value: int) -> int:
    at_group_end(insert_all_or_fail, value)
    return value


@pytest.mark.parametrize("on_loop", [True, False])
async def test_ops_leave_work_for_the_end_of_their_group(tmp_path: Path, on_loop: bool) -> None:
    writer = make_writer(tmp_path / "db")
    op = bounded(insert_at_end) if on_loop else insert_at_end
    try:
        outcomes = await asyncio.gather(
            *(writer.run(op, value) for value in (5, -1, 6, 7)), return_exceptions=True
        )
    finally:
        await writer.stop()
    # One group, one batch in op order; the failing op left nothing behind.
    assert writer.commits == 1
    assert isinstance(outcomes[1], ValueError)
    with sqlite3.connect(tmp_path / "db") as conn:
        rows = dict(conn.execute("SELECT rowid, v FROM t"))
    assert [rows[heard[0]] for heard in (outcomes[0], outcomes[2], outcomes[3])] == [5, 6, 7]
    assert sorted(rows.values()) == [5, 6, 7]


async def test_a_failing_group_end_fails_the_whole_group(tmp_path: Path) -> None:
    writer = make_writer(tmp_path / "db")
    try:
        outcomes = await asyncio.gather(
            writer.run(bounded(insert), 1),
            writer.run(bounded(insert_at_end_or_fail), 13),
            return_exceptions=True,
        )
        # The writer goes on with the next group.
        assert await writer.run(bounded(insert_at_end_or_fail), 2) == 2
    finally:
        await writer.stop()
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes), outcomes
    with sqlite3.connect(tmp_path / "db") as conn:
        assert [r[0] for r in conn.execute("SELECT v FROM t")] == [2]


def test_group_end_work_needs_a_group() -> None:
    with pytest.raises(RuntimeError):
        at_group_end(insert_all, (1, []))
