"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open embedded store in a fresh directory, closed afterwards."""
    opened = SqliteStore(tmp_path / "db.sqlite")
    await opened.open()
    yield opened
    await opened.close()
