"""Options and helpers shared by the CLI's commands."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tidings.config import Settings, load_settings
from tidings.errors import ServiceError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def data_dir_option(func: F) -> F:
    """`--data-dir` and `--config`, shared by every command that opens the store."""
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML config file (default: DATA_DIR/tidings.toml when present).",
    )(func)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="TIDINGS_DATA_DIR",
        help="Where the store lives (default: ./data).",
    )(func)


def settings_from(data_dir: Path | None, config_file: Path | None, **flags: Any) -> Settings:
    """Settings for a command from its common options."""
    return load_settings(config_file, data_dir=data_dir, **flags)


def run_async(coro: Awaitable[T]) -> T:
    """Run a coroutine; a `ServiceError` becomes a one-line message and exit status 1."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except ServiceError as error:
        click.echo(f"error: {error.code}: {error.message}", err=True)
        sys.exit(1)
