"""`tidings serve`."""

from __future__ import annotations

from pathlib import Path

import click

from tidings.cli.common import data_dir_option, settings_from
from tidings.server import run


@click.command()
@data_dir_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--oss-port", type=int, help="OSS listener port (default 9100, 0 = any free).")
@click.option("--mns-port", type=int, help="MNS listener port (default 9101, 0 = any free).")
@click.option("--console-port", type=int, help="Console port (default 9102, 0 = any free).")
@click.option(
    "--clock-speed",
    type=float,
    help="Run server timers (visibility, delay, retention) N times faster. Tests only.",
)
@click.option(
    "--synchronous",
    type=click.Choice(["FULL", "NORMAL"], case_sensitive=False),
    help="FULL (default): every acknowledged write is fsynced. NORMAL: faster, may lose"
    " the last writes on power loss (not on a process crash).",
)
def serve(
    data_dir: Path | None,
    config_file: Path | None,
    host: str | None,
    oss_port: int | None,
    mns_port: int | None,
    console_port: int | None,
    clock_speed: float | None,
    synchronous: str | None,
) -> None:
    """Run every listener on the embedded store until SIGTERM or Ctrl-C."""
    settings = settings_from(
        data_dir,
        config_file,
        host=host,
        oss_port=oss_port,
        mns_port=mns_port,
        console_port=console_port,
        clock_speed=clock_speed,
        synchronous=synchronous.upper() if synchronous else None,
    )
    run(settings)
