"""Deleting blobs that committed changes released, and orphans a crash left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tidings.blobs.base import BlobStore
from tidings.store.sqlite_object_store import SqliteObjectStore

log = logging.getLogger(__name__)

# How many released blobs one pass deletes, and how often a pass runs anyway (the
# rows in blob_garbage survive a crash, so a pass after restart finishes the job).
BATCH = 500
SWEEP_SECONDS = 5.0


class BlobCollector:
    """Deletes released blobs in the background, in batches."""

    def __init__(self, store: SqliteObjectStore, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def released(self, blob_ids: list[str]) -> None:
        """Blobs a committed change no longer references (their rows are in the store)."""
        if blob_ids:
            self._wake.set()

    async def start(self) -> None:
        """Remove orphans left by a crash, then start collecting."""
        await self.sweep_orphans()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop collecting (pending rows stay for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep_orphans(self) -> int:
        """Delete blobs no row references: written, then never committed, before a crash.

        Runs before the server accepts requests, so no write is in flight.
        """
        referenced = await self.store.referenced_blobs()
        removed = 0
        async for blob_id in self.blobs.ids():
            if blob_id not in referenced:
                await self.blobs.delete(blob_id)
                removed += 1
        if removed:
            log.info("removed %d unreferenced blobs", removed)
        await self.collect()
        return removed

    async def collect(self) -> int:
        """One pass: delete released blobs and forget them; returns how many."""
        total = 0
        while True:
            blob_ids = await self.store.take_garbage(BATCH)
            if not blob_ids:
                return total
            for blob_id in blob_ids:
                await self.blobs.delete(blob_id)
            await self.store.forget_garbage(blob_ids)
            total += len(blob_ids)
            if len(blob_ids) < BATCH:
                return total

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
            self._wake.clear()
            try:
                await self.collect()
            except Exception:
                log.exception("blob collection failed")
