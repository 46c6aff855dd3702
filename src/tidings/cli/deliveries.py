"""`tidings deliveries ...`: the delivery ledger and replays, on the same services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from tidings.app import running
from tidings.cli.common import data_dir_option, run_async, settings_from
from tidings.models import DeliveryFilter


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _parse_time(value: str | None) -> int | None:
    """Unix milliseconds, or an ISO-8601 time (UTC unless it says otherwise)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither Unix ms nor an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


F = TypeVar("F", bound=Callable[..., Any])


def _filter_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--message-id", help="Only this message."),
            click.option("--topic", help="Only this topic."),
            click.option("--subscription", help="Only this subscription."),
            click.option("--since", help="Created at or after (Unix ms or ISO-8601)."),
            click.option("--until", help="Created before (Unix ms or ISO-8601)."),
        ]
    ):
        func = option(func)
    return func


def _selection(
    message_id: str | None,
    topic: str | None,
    subscription: str | None,
    since: str | None,
    until: str | None,
    state: str | None = None,
) -> DeliveryFilter:
    return DeliveryFilter(
        message_id=message_id,
        topic_name=topic,
        subscription_name=subscription,
        state=state,
        since_ms=_parse_time(since),
        until_ms=_parse_time(until),
    )


@click.group()
def deliveries() -> None:
    """Inspect and replay deliveries of topic messages."""


@deliveries.command("list")
@data_dir_option
@_filter_options
@click.option("--state", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--limit", default=50, show_default=True)
def list_deliveries(
    data_dir: Path | None,
    config_file: Path | None,
    state: str | None,
    limit: int,
    **selected: str | None,
) -> None:
    """List deliveries, newest first."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            found = await app.ledger.find(_selection(**selected, state=state), limit)
        table = Table()
        for column in ("Id", "Created (UTC)", "Topic", "Subscription", "MessageId", "State",
                       "Attempts", "Last result"):  # fmt: skip
            table.add_column(column)
        for d in found:
            result = d.last_error or (str(d.last_status) if d.last_status else "")
            table.add_row(str(d.id), _time(d.created_ms), d.topic_name, d.subscription_name,
                          d.message_id, d.state, str(d.attempts), result)  # fmt: skip
        Console().print(table)

    run_async(go())


@deliveries.command()
@data_dir_option
@click.argument("delivery_id", type=int)
def show(data_dir: Path | None, config_file: Path | None, delivery_id: int) -> None:
    """Show one delivery and every attempt made for it."""

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            record, attempts = await app.ledger.show(delivery_id)
        console = Console()
        console.print(
            f"delivery {record.id}: {record.topic_name}/{record.subscription_name} ->"
            f" {record.endpoint}\nmessage {record.message_id}, {record.state},"
            f" {record.attempts} attempt(s)"
        )
        if record.state == "pending":
            console.print(f"next attempt at {_time(record.next_attempt_ms)} UTC")
        table = Table()
        for column in ("Attempt", "At (UTC)", "Status", "Error", "Latency"):
            table.add_column(column)
        for a in attempts:
            table.add_row(str(a.attempt), _time(a.at_ms), str(a.status or ""), a.error or "",
                          f"{a.latency_ms} ms")  # fmt: skip
        console.print(table)

    run_async(go())


@deliveries.command()
@data_dir_option
@_filter_options
def replay(data_dir: Path | None, config_file: Path | None, **selected: str | None) -> None:
    """Deliver matching messages again (by message id, topic, subscription or time range).

    A running server picks the replayed deliveries up within a second.
    """

    async def go() -> None:
        async with running(settings_from(data_dir, config_file)) as app:
            count = await app.ledger.replay(_selection(**selected))
        Console().print(f"scheduled {count} deliveries again")

    run_async(go())
