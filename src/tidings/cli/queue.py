"""`tidings queue ...`: queue administration on the same services the server uses.

The commands open the store in the data dir directly, so they work whether or not a
server is running on it (SQLite WAL lets both share the file). A long poll already
waiting inside a running server is woken by sends made through the server only; a
message sent here is seen by its next receive.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from tidings.app import running
from tidings.cli.common import data_dir_option, run_async, settings_from
from tidings.models import DeadLetterPolicy, Queue, QueueCounts, StoredMessage
from tidings.services.queues import SendRequest


def _time_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _attribute_options(func: Any) -> Any:
    for name, help_text in reversed(
        [
            ("--visibility-timeout", "Seconds a received message stays invisible (1-43200)."),
            ("--delay", "Default delay of new messages, seconds (0-604800)."),
            ("--max-message-size", "Largest body in bytes (1024-65536)."),
            ("--retention", "Seconds a message is kept (60-604800)."),
            ("--polling-wait", "Default long-poll wait, seconds (0-30)."),
            ("--max-receive-count", "Receives before a message moves to the dead-letter queue."),
        ]
    ):
        func = click.option(name, type=int, help=help_text)(func)
    func = click.option(
        "--dead-letter-queue", help="Queue that takes messages received --max-receive-count times."
    )(func)
    return func


def _changes(**values: int | None) -> dict[str, int]:
    names = {
        "visibility_timeout": "visibility_timeout",
        "delay": "delay_seconds",
        "max_message_size": "maximum_message_size",
        "retention": "message_retention_period",
        "polling_wait": "polling_wait_seconds",
    }
    return {names[k]: v for k, v in values.items() if k in names and v is not None}


def _policy(
    dead_letter_queue: str | None, max_receive_count: int | None
) -> DeadLetterPolicy | None:
    if dead_letter_queue is None:
        if max_receive_count is not None:
            raise click.UsageError("--max-receive-count needs --dead-letter-queue")
        return None
    return DeadLetterPolicy(dead_letter_queue, max_receive_count or 3)


def _decode(body: str, decode: bool) -> str:
    if not decode:
        return body
    try:
        return base64.b64decode(body, validate=True).decode("utf-8", errors="replace")
    except binascii.Error:
        return body


def _messages_table(
    messages: list[StoredMessage], handles: list[str] | None, decode: bool
) -> Table:
    table = Table(show_lines=False)
    for column in ("MessageId", "Body", "Priority", "Enqueued (UTC)", "Dequeues"):
        table.add_column(column)
    if handles is not None:
        table.add_column("ReceiptHandle")
    for index, m in enumerate(messages):
        row = [
            m.message_id,
            _decode(m.body, decode),
            str(m.priority),
            _time_ms(m.enqueue_ms),
            str(m.dequeue_count),
        ]
        if handles is not None:
            row.append(handles[index])
        table.add_row(*row)
    return table


def _stats_table(rows: list[tuple[Queue, QueueCounts]]) -> Table:
    table = Table()
    for column in ("Queue", "Active", "Inactive", "Delayed", "Visibility", "Retention", "DLQ"):
        table.add_column(column, justify="left" if column in ("Queue", "DLQ") else "right")
    for queue, counts in rows:
        dlq = queue.dead_letter
        table.add_row(
            queue.name,
            str(counts.active),
            str(counts.inactive),
            str(counts.delayed),
            f"{queue.attributes.visibility_timeout}s",
            f"{queue.attributes.message_retention_period}s",
            f"{dlq.target_queue} after {dlq.max_receive_count}" if dlq else "",
        )
    return table


@click.group()
def queue() -> None:
    """Create, inspect and use queues."""


@queue.command()
@data_dir_option
@click.argument("name")
@_attribute_options
def create(data_dir: Path | None, config_file: Path | None, name: str, **options: Any) -> None:
    """Create queue NAME (an identical existing queue is fine)."""
    policy = _policy(options.pop("dead_letter_queue"), options.pop("max_receive_count"))

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            _, created = await app.queues.create_queue(name, _changes(**options), policy)
            Console().print(f"queue {name} {'created' if created else 'already exists'}")

    run_async(go())


@queue.command("set")
@data_dir_option
@click.argument("name")
@_attribute_options
@click.option("--no-dead-letter", is_flag=True, help="Remove the dead-letter policy.")
def set_attributes(
    data_dir: Path | None, config_file: Path | None, name: str, no_dead_letter: bool, **options: Any
) -> None:
    """Change attributes or the dead-letter policy of queue NAME."""
    policy = _policy(options.pop("dead_letter_queue"), options.pop("max_receive_count"))

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            if no_dead_letter:
                await app.queues.set_queue_attributes(name, _changes(**options), None)
            elif policy is not None:
                await app.queues.set_queue_attributes(name, _changes(**options), policy)
            else:
                await app.queues.set_queue_attributes(name, _changes(**options))
            Console().print(f"queue {name} updated")

    run_async(go())


@queue.command("list")
@data_dir_option
@click.option("--prefix", default="", help="Only queues whose name starts with this.")
def list_queues(data_dir: Path | None, config_file: Path | None, prefix: str) -> None:
    """List queues with their message counts."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            rows: list[tuple[Queue, QueueCounts]] = []
            marker = None
            while True:
                page, marker = await app.queues.list_queues(prefix, marker)
                rows += [(q, await app.queues.counts(q)) for q in page]
                if marker is None:
                    break
            Console().print(_stats_table(rows))

    run_async(go())


@queue.command()
@data_dir_option
@click.argument("name", required=False)
def stats(data_dir: Path | None, config_file: Path | None, name: str | None) -> None:
    """Message counts and settings of queue NAME (or of every queue)."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            if name is None:
                queues, _ = await app.queues.list_queues()
            else:
                queues = [await app.queues.get_queue(name)]
            Console().print(_stats_table([(q, await app.queues.counts(q)) for q in queues]))

    run_async(go())


@queue.command()
@data_dir_option
@click.argument("name")
@click.argument("body")
@click.option("--delay", type=int, help="Delay in seconds.")
@click.option("--priority", type=int, help="1 (highest) to 16; default 8.")
@click.option(
    "--base64", "encode", is_flag=True, help="Base64-encode BODY, as the SDK does by default."
)
def send(
    data_dir: Path | None,
    config_file: Path | None,
    name: str,
    body: str,
    delay: int | None,
    priority: int | None,
    encode: bool,
) -> None:
    """Send BODY to queue NAME."""
    text = base64.b64encode(body.encode("utf-8")).decode("ascii") if encode else body

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            (outcome,) = await app.queues.send(name, [SendRequest(text, delay, priority)])
            if outcome.error is not None:
                raise outcome.error
            Console().print(f"sent {outcome.message_id} (MD5 {outcome.body_md5})")

    run_async(go())


@queue.command()
@data_dir_option
@click.argument("name")
@click.option("--count", default=1, show_default=True, help="Up to 16 messages.")
@click.option("--wait", type=int, default=0, show_default=True, help="Long-poll seconds (0-30).")
@click.option("--ack", is_flag=True, help="Delete the messages once received.")
@click.option("--decode", is_flag=True, help="Show Base64 bodies decoded.")
def receive(
    data_dir: Path | None,
    config_file: Path | None,
    name: str,
    count: int,
    wait: int,
    ack: bool,
    decode: bool,
) -> None:
    """Receive messages from queue NAME (they become invisible unless --ack deletes them)."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            received = await app.queues.receive(name, count, wait)
            handles = [r.receipt_handle for r in received]
            shown = None if ack else handles
            Console().print(_messages_table([r.message for r in received], shown, decode))
            if ack:
                await app.queues.delete(name, handles)
                Console().print(f"deleted {len(handles)} message(s)")

    run_async(go())


@queue.command()
@data_dir_option
@click.argument("name")
@click.option("--count", default=1, show_default=True, help="Up to 16 messages.")
@click.option("--decode", is_flag=True, help="Show Base64 bodies decoded.")
def peek(
    data_dir: Path | None, config_file: Path | None, name: str, count: int, decode: bool
) -> None:
    """Show visible messages of queue NAME without receiving them."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            Console().print(_messages_table(await app.queues.peek(name, count), None, decode))

    run_async(go())


@queue.command()
@data_dir_option
@click.argument("name")
def purge(data_dir: Path | None, config_file: Path | None, name: str) -> None:
    """Delete every message of queue NAME."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            Console().print(f"purged {await app.queues.purge(name)} message(s) from {name}")

    run_async(go())


@queue.command()
@data_dir_option
@click.argument("name")
def delete(data_dir: Path | None, config_file: Path | None, name: str) -> None:
    """Delete queue NAME and all its messages."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            deleted = await app.queues.delete_queue(name)
            Console().print(f"queue {name} {'deleted' if deleted else 'did not exist'}")

    run_async(go())
