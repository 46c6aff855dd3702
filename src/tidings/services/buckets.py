"""Buckets: create, list, delete, ACL, versioning, lifecycle and tags."""

from __future__ import annotations

import json
import time

from tidings.clock import Clock
from tidings.errors import ServiceError
from tidings.object_models import VERSIONING_ENABLED, VERSIONING_SUSPENDED, Bucket
from tidings.services.object_rules import (
    BUCKET_ACLS,
    REDUNDANCY_TYPES,
    STORAGE_CLASSES,
    check_bucket_name,
    check_choice,
)
from tidings.store.sqlite_object_store import SqliteObjectStore

MAX_BUCKETS = 100
# Bucket settings are cached this long per process; a change made through this process
# is seen at once, one made by another process within this time.
CACHE_SECONDS = 1.0


class BucketService:
    """The bucket operations of the OSS API, independent of HTTP."""

    def __init__(self, store: SqliteObjectStore, clock: Clock, max_buckets: int = MAX_BUCKETS):
        self.store = store
        self.clock = clock
        self.max_buckets = max_buckets
        self._cache: dict[str, tuple[float, Bucket]] = {}

    async def create(
        self,
        name: str,
        owner: str,
        acl: str = "private",
        storage_class: str = "Standard",
        redundancy: str = "LRS",
    ) -> tuple[Bucket, bool]:
        """PutBucket: create, or update the ACL of the owner's existing bucket."""
        check_bucket_name(name)
        check_choice(acl, BUCKET_ACLS, "x-oss-acl")
        check_choice(storage_class, STORAGE_CLASSES, "StorageClass")
        check_choice(redundancy, REDUNDANCY_TYPES, "DataRedundancyType")
        bucket, created = await self.store.create_bucket(
            name, owner, acl, storage_class, redundancy, self.clock.now_ms(), self.max_buckets
        )
        self._remember(bucket)
        return bucket, created

    async def find(self, name: str) -> Bucket | None:
        """The bucket called `name`, or None (cached briefly)."""
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        bucket = await self.store.get_bucket(name)
        if bucket is None:
            self._cache.pop(name, None)
        else:
            self._remember(bucket)
        return bucket

    async def get(self, name: str) -> Bucket:
        """The bucket called `name`, or NoSuchBucket."""
        bucket = await self.find(name)
        if bucket is None:
            raise ServiceError(
                "NoSuchBucket", "The specified bucket does not exist.", {"BucketName": name}
            )
        return bucket

    def _remember(self, bucket: Bucket) -> None:
        self._cache[bucket.name] = (time.monotonic(), bucket)

    async def list(self, owner: str, prefix: str, marker: str, limit: int) -> list[Bucket]:
        """ListBuckets: the owner's buckets after `marker`, by name."""
        return await self.store.list_buckets(owner, prefix, marker, limit)

    async def delete(self, name: str) -> None:
        """DeleteBucket: only an empty bucket."""
        self._cache.pop(name, None)
        await self.store.delete_bucket(name)
        self._cache.pop(name, None)

    async def set_acl(self, name: str, acl: str) -> Bucket:
        """PutBucketAcl."""
        check_choice(acl, BUCKET_ACLS, "x-oss-acl")
        return await self._update(name, "acl", acl)

    async def set_versioning(self, name: str, status: str) -> Bucket:
        """PutBucketVersioning: Enabled or Suspended (never back to never-enabled)."""
        check_choice(status, (VERSIONING_ENABLED, VERSIONING_SUSPENDED), "Status")
        return await self._update(name, "versioning", status)

    async def set_lifecycle(self, name: str, config_json: str | None) -> Bucket:
        """Store (or with None remove) the lifecycle configuration, already validated."""
        return await self._update(name, "lifecycle", config_json)

    async def set_tags(self, name: str, tags: dict[str, str] | None) -> Bucket:
        """Replace (or with None remove) the bucket's tags."""
        return await self._update(name, "tags", json.dumps(tags) if tags else None)

    async def stats(self, bucket: Bucket) -> dict[str, int]:
        """GetBucketStat's counters."""
        return await self.store.bucket_stats(bucket.id)

    async def _update(self, name: str, column: str, value: str | None) -> Bucket:
        bucket = await self.store.update_bucket(name, column, value)
        self._remember(bucket)
        return bucket
