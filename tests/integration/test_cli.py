"""`tidings queue ...` on a real data directory, through the same services as the server."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tidings.cli import cli


def run(data: Path, *args: str, ok: bool = True) -> str:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [*args, "--data-dir", str(data)])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_queue_lifecycle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert "created" in run(data, "queue", "create", "orders", "--visibility-timeout", "60")
    assert "already exists" in run(data, "queue", "create", "orders", "--visibility-timeout", "60")
    run(data, "queue", "send", "orders", "order 42 shipped", "--base64")
    run(data, "queue", "send", "orders", "urgent", "--priority", "1")
    stats = run(data, "queue", "stats", "orders")
    assert "orders" in stats and "60s" in stats
    peeked = run(data, "queue", "peek", "orders", "--count", "2", "--decode")
    assert peeked.index("urgent") < peeked.index("order 42 shipped")
    received = run(data, "queue", "receive", "orders", "--count", "2", "--ack", "--decode")
    assert "order 42 shipped" in received and "deleted 2 message(s)" in received
    run(data, "queue", "send", "orders", "to purge")
    assert "purged 1 message(s)" in run(data, "queue", "purge", "orders")
    assert "orders" in run(data, "queue", "list")
    assert "deleted" in run(data, "queue", "delete", "orders")


def test_dead_letter_policy_is_set_and_cleared(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "queue", "create", "dead")
    run(data, "queue", "create", "work")
    run(data, "queue", "set", "work", "--dead-letter-queue", "dead", "--max-receive-count", "4")
    assert "dead after 4" in run(data, "queue", "stats", "work")
    run(data, "queue", "set", "work", "--no-dead-letter")
    assert "dead after" not in run(data, "queue", "stats", "work")


def test_errors_are_one_line_with_the_service_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = run(data, "queue", "send", "missing", "hello", ok=False)
    assert "QueueNotExist" in out
    out = run(data, "queue", "create", "bad_name", ok=False)
    assert "InvalidQueueName" in out
    run(data, "queue", "create", "q")
    assert "MessageNotExist" in run(data, "queue", "receive", "q", ok=False)
    assert "InvalidArgument" in run(data, "queue", "create", "q2", "--retention", "10", ok=False)
