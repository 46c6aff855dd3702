"""The `tidings` command line."""

from __future__ import annotations

import click

from tidings import __version__
from tidings.cli.bucket import bucket
from tidings.cli.deliveries import deliveries
from tidings.cli.emit import emit
from tidings.cli.object import object_group
from tidings.cli.queue import queue
from tidings.cli.rule import rule
from tidings.cli.serve import serve


@click.group()
@click.version_option(__version__, prog_name="tidings")
def cli() -> None:
    """Tidings: self-hosted MNS/SMQ-compatible queues and OSS-compatible storage events."""


cli.add_command(serve)
cli.add_command(queue)
cli.add_command(deliveries)
cli.add_command(bucket)
cli.add_command(object_group)
cli.add_command(emit)
cli.add_command(rule)


def main() -> None:
    """Console-script entry point."""
    cli()
