"""`tidings bucket ...`: bucket administration on the same services the server uses.

Like `tidings queue`, the commands open the data dir directly, whether or not a server
runs on it. Buckets belong to an account: the CLI acts as the root AccessKey's account
(`TIDINGS_ACCOUNT_ID`, or `account_id` in the config file), so a server with the same
settings lets that account's keys use what the CLI creates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tidings.app import running
from tidings.cli.common import data_dir_option, run_async, settings_from
from tidings.object_models import Bucket
from tidings.services.object_rules import BUCKET_ACLS, REDUNDANCY_TYPES, STORAGE_CLASSES

# ListBuckets pages through the store this many at a time.
PAGE = 1000


def time_text(ms: int) -> str:
    """A stored time (Unix ms) as UTC to the second, the way the CLI shows times."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def say(text: str, err: bool = False) -> None:
    """Print one line of plain text: no markup, no highlighting, never wrapped.

    Names and keys are data, so markup in them must not be interpreted, and a line
    that scripts may parse stays one line whatever the terminal's width.
    """
    Console(highlight=False, soft_wrap=True, stderr=err).print(Text(text))


def _buckets_table(rows: list[tuple[Bucket, dict[str, int]]]) -> Table:
    table = Table()
    table.add_column("Bucket", no_wrap=True)
    for column in ("Created (UTC)", "Class", "ACL", "Versioning"):
        table.add_column(column, no_wrap=True)
    # Counted like GetBucketStat: previous versions included, delete markers not.
    table.add_column("Objects", justify="right")
    table.add_column("Bytes", justify="right")
    for bucket, stats in rows:
        table.add_row(
            Text(bucket.name),
            time_text(bucket.created_ms),
            bucket.storage_class,
            bucket.acl,
            bucket.versioning or "-",
            str(stats.get("ObjectCount", 0)),
            str(stats.get("Storage", 0)),
        )
    return table


@click.group()
def bucket() -> None:
    """Create, list and delete buckets of the object store."""


@bucket.command()
@data_dir_option
@click.argument("name")
@click.option(
    "--acl",
    type=click.Choice(BUCKET_ACLS),
    help="Who else may read or write (default: private; an existing bucket keeps its own).",
)
@click.option(
    "--storage-class",
    type=click.Choice(STORAGE_CLASSES),
    help="Default storage class of new objects (default: Standard).",
)
@click.option(
    "--redundancy", type=click.Choice(REDUNDANCY_TYPES), help="Data redundancy (default: LRS)."
)
def create(
    data_dir: Path | None,
    config_file: Path | None,
    name: str,
    acl: str | None,
    storage_class: str | None,
    redundancy: str | None,
) -> None:
    """Create bucket NAME (an existing bucket of the same account is fine)."""
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            # PutBucket on an existing bucket sets its ACL; unless --acl asks for that,
            # keep what it has, so re-running a create never opens or closes a bucket.
            # Likewise an unspecified class or redundancy means "whatever it has".
            existing = await app.buckets.find(name)
            _, created = await app.buckets.create(
                name,
                settings.account_id,
                acl or (existing.acl if existing else "private"),
                storage_class or (existing.storage_class if existing else "Standard"),
                redundancy or (existing.redundancy if existing else "LRS"),
            )
        state = "created" if created else "already exists"
        say(f"bucket {name} {state}")

    run_async(go())


@bucket.command("list")
@data_dir_option
@click.option("--prefix", default="", help="Only buckets whose name starts with this.")
def list_buckets(data_dir: Path | None, config_file: Path | None, prefix: str) -> None:
    """List the account's buckets with their object counts and sizes."""
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        rows: list[tuple[Bucket, dict[str, int]]] = []
        async with running(settings) as app:
            marker = ""
            while True:
                page = await app.buckets.list(settings.account_id, prefix, marker, PAGE)
                rows += [(b, await app.buckets.stats(b)) for b in page]
                if len(page) < PAGE:
                    break
                marker = page[-1].name
        Console().print(_buckets_table(rows))

    run_async(go())


@bucket.command()
@data_dir_option
@click.argument("name")
def delete(data_dir: Path | None, config_file: Path | None, name: str) -> None:
    """Delete bucket NAME, which must be empty (no objects, versions or uploads)."""
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            await app.buckets.delete(name)
        say(f"bucket {name} deleted")

    run_async(go())
