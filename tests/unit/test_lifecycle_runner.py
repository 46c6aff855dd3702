"""The lifecycle scheduler (`tidings.services.lifecycle`) on a real store and blob store.

Passes are driven directly on a `ManualClock`: each test writes objects through the
services, moves time, runs a pass and checks what the store holds afterwards, which
actions were reported, and that a second pass at the same time changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tidings.blobs.local import LocalBlobStore
from tidings.clock import ManualClock, ScaledClock
from tidings.errors import ServiceError
from tidings.object_models import FROZEN, RESTORED, RESTORING, Bucket, ObjectVersion
from tidings.services.blob_gc import BlobCollector
from tidings.services.buckets import BucketService
from tidings.services.conditions import Conditions
from tidings.services.lifecycle import (
    AppliedAction,
    LifecycleRunner,
    abort_cutoff,
    scan_prefixes,
)
from tidings.services.lifecycle_rules import (
    Expiration,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentTransition,
    Timing,
    Transition,
    config_to_json,
    validate,
)
from tidings.services.multipart import MultipartService
from tidings.services.objects import ObjectAttrs, ObjectService
from tidings.store.sqlite import SqliteStore
from tidings.store.sqlite_lifecycle import EXPIRE, PlannedChange
from tidings.store.sqlite_object_store import SqliteObjectStore

DAY = 86_400_000
HOUR = 3_600_000


def rule(rule_id: str, prefix: str = "", **actions: Any) -> LifecycleRule:
    """An enabled rule with the given actions."""
    return LifecycleRule(id=rule_id, prefix=prefix, enabled=True, **actions)


def expire_after(days: int) -> Expiration:
    return Expiration(Timing(days=days))


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class Env:
    """Services on one store, a runner, and what the runner reported."""

    clock: ManualClock
    store: SqliteObjectStore
    blobs: LocalBlobStore
    collector: BlobCollector
    buckets: BucketService
    objects: ObjectService
    multipart: MultipartService
    actions: list[AppliedAction] = field(default_factory=list)

    def runner(self, **options: Any) -> LifecycleRunner:
        return LifecycleRunner(
            self.store, self.clock, self.collector, on_action=self.actions.append, **options
        )

    async def bucket(self, *rules: LifecycleRule, versioning: str = "") -> Bucket:
        name = f"b-{uuid.uuid4().hex[:12]}"
        bucket, _ = await self.buckets.create(name, "owner")
        if versioning:
            bucket = await self.buckets.set_versioning(name, versioning)
        if rules:
            config = LifecycleConfiguration(rules)
            validate(config, allow_same_action_overlap=True)  # as the header allows
            bucket = await self.buckets.set_lifecycle(name, config_to_json(config))
        return bucket

    async def put(self, bucket: Bucket, key: str, data: bytes = b"body", **attrs: Any) -> str:
        """Write an object through the blob store (a body of unknown length, as chunked
        uploads send it: small known-length bodies would live in the row instead, and
        these tests watch blobs being released); returns its version id."""
        outcome = await self.objects.put(
            bucket, key, chunks(data), expected_size=None, attrs=ObjectAttrs(**attrs)
        )
        return outcome.version.version_id

    async def get(self, bucket: Bucket, key: str, version_id: str | None = None) -> ObjectVersion:
        found = await self.store.get_version(bucket.id, key, version_id)
        assert found is not None
        return found

    async def versions(self, bucket: Bucket) -> list[tuple[str, bool, bool]]:
        """(key, is delete marker, is current) of every version, by key, newest first."""
        page = await self.store.list_versions(bucket.id, "", "", "", "", 1000)
        return [(v.key, v.is_delete_marker, v.is_current) for v in page.objects]

    async def blob_exists(self, blob_id: str | None) -> bool:
        assert blob_id is not None
        await self.collector.collect()
        return await self.blobs.exists(blob_id)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = SqliteStore(tmp_path / "tidings.db", synchronous="NORMAL")
    await db.open()
    blobs = LocalBlobStore(tmp_path / "blobs", fsync=False)
    await blobs.open()
    clock = ManualClock()
    store = SqliteObjectStore(db)
    collector = BlobCollector(store, blobs)
    yield Env(
        clock,
        store,
        blobs,
        collector,
        BucketService(store, clock),
        ObjectService(store, blobs, clock, collector),
        MultipartService(store, blobs, clock, collector),
    )
    await blobs.close()
    await db.close()


async def test_unversioned_expiration_deletes_on_the_day_and_releases_the_blob(env: Env) -> None:
    bucket = await env.bucket(rule("old-logs", "logs/", expiration=expire_after(1)))
    for key in ("logs/a", "logs/b", "other/c"):
        await env.put(bucket, key)
    blob_a = (await env.get(bucket, "logs/a")).blob_id
    runner = env.runner()
    env.clock.advance(DAY - 1)
    assert await runner.run_pass() == Counter()
    env.clock.advance(1)
    assert await runner.run_pass() == Counter(expire=2)
    assert await env.versions(bucket) == [("other/c", False, True)]
    assert not await env.blob_exists(blob_a)
    # The event of an expiration reports what was removed.
    assert env.actions[0].size == 4
    assert env.actions[0] == AppliedAction(
        "expire", bucket.name, "logs/a", "null", "old-logs", size=4, etag=env.actions[0].etag
    )
    assert await runner.run_pass() == Counter()


async def test_versioned_expiration_marker_then_noncurrent_expiry_then_marker_removal(
    env: Env,
) -> None:
    bucket = await env.bucket(
        rule("r1", expiration=expire_after(1), noncurrent_expiration_days=2),
        rule("r2", expiration=Expiration(None, expired_object_delete_marker=True)),
        versioning="Enabled",
    )
    v1 = await env.put(bucket, "k")
    blob = (await env.get(bucket, "k")).blob_id
    runner = env.runner()
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(expire=1)
    assert await env.versions(bucket) == [("k", True, True), ("k", False, False)]
    marker = (await env.get(bucket, "k")).version_id
    assert env.actions[-1].marker_version_id == marker
    assert env.actions[-1].version_id == v1
    assert await runner.run_pass() == Counter()  # a marker with a version left stays
    env.clock.advance(2 * DAY - 1)
    assert await runner.run_pass() == Counter()
    env.clock.advance(1)
    assert await runner.run_pass() == Counter(expire_noncurrent=1)
    assert not await env.blob_exists(blob)
    # The marker was read alongside the version, so it is only alone from the next pass.
    assert await runner.run_pass() == Counter(remove_delete_marker=1)
    assert env.actions[-1].rule_id == "r2"
    assert await env.versions(bucket) == []
    assert await runner.run_pass() == Counter()


async def test_suspended_expiration_replaces_the_null_version_with_a_null_marker(
    env: Env,
) -> None:
    bucket = await env.bucket(rule("r", expiration=expire_after(1)), versioning="Suspended")
    await env.put(bucket, "k")
    blob = (await env.get(bucket, "k")).blob_id
    env.clock.advance(DAY)
    assert await env.runner().run_pass() == Counter(expire=1)
    current = await env.get(bucket, "k")
    assert (current.is_delete_marker, current.version_id) == (True, "null")
    assert await env.versions(bucket) == [("k", True, True)]
    assert not await env.blob_exists(blob)


@pytest.mark.parametrize("versioning", ["", "Enabled"])
async def test_transitions_change_the_class_in_place(env: Env, versioning: str) -> None:
    steps = (Transition(Timing(days=1), "IA"), Transition(Timing(days=2), "Archive"))
    bucket = await env.bucket(rule("cool", transitions=steps), versioning=versioning)
    await env.put(bucket, "k", b"some bytes")
    before = await env.get(bucket, "k")
    runner = env.runner()
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(transition=1)
    after = await env.get(bucket, "k")
    assert (after.storage_class, after.transition_ms) == ("IA", env.clock.now_ms())
    unchanged = ("version_id", "etag", "crc64", "last_modified_ms", "blob_id", "size")
    assert all(getattr(after, name) == getattr(before, name) for name in unchanged)
    assert await runner.run_pass() == Counter()
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(transition=1)
    assert (await env.get(bucket, "k")).storage_class == "Archive"
    assert env.actions[-1].storage_class == "Archive"
    # Overdue for both steps: straight to the coldest, in one change.
    await env.put(bucket, "late", b"x")
    env.clock.advance(5 * DAY)
    assert await runner.run_pass() == Counter(transition=1)
    assert (await env.get(bucket, "late")).storage_class == "Archive"
    assert await env.blob_exists(before.blob_id)


async def test_noncurrent_transition_counts_from_when_the_version_was_replaced(
    env: Env,
) -> None:
    nc = (NoncurrentTransition(1, "IA"),)
    bucket = await env.bucket(rule("nc", noncurrent_transitions=nc), versioning="Enabled")
    old = await env.put(bucket, "k")
    env.clock.advance(2 * DAY)
    new = await env.put(bucket, "k")
    runner = env.runner()
    assert await runner.run_pass() == Counter()
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(transition_noncurrent=1)
    assert (await env.get(bucket, "k", old)).storage_class == "IA"
    assert (await env.get(bucket, "k", new)).storage_class == "Standard"


async def test_stale_multipart_uploads_are_aborted(env: Env) -> None:
    bucket = await env.bucket(rule("tmp", "tmp/", abort_multipart=Timing(days=1)))
    attrs = ObjectAttrs()
    with_part = await env.multipart.initiate(bucket, "tmp/x", attrs)
    part = await env.multipart.upload_part(
        bucket, "tmp/x", with_part.upload_id, 1, chunks(b"part"), expected_size=4, content_md5=None
    )
    await env.multipart.initiate(bucket, "tmp/y", attrs)
    other = await env.multipart.initiate(bucket, "other/w", attrs)
    env.clock.advance(DAY // 2)
    young = await env.multipart.initiate(bucket, "tmp/z", attrs)
    runner = env.runner()
    env.clock.advance(DAY // 2)
    assert await runner.run_pass() == Counter(abort_multipart=2)
    assert {a.key for a in env.actions} == {"tmp/x", "tmp/y"}
    assert env.actions[0].upload_id == with_part.upload_id
    assert not await env.blob_exists(part.blob_id)
    assert await env.store.get_upload(bucket.id, "other/w", other.upload_id) is not None
    assert await env.store.get_upload(bucket.id, "tmp/z", young.upload_id) is not None
    assert await runner.run_pass() == Counter()
    env.clock.advance(DAY // 2)
    assert await runner.run_pass() == Counter(abort_multipart=1)


async def test_disabled_rules_and_rules_not_yet_due_do_nothing(env: Env) -> None:
    every_action = LifecycleRule(
        id="off",
        prefix="",
        enabled=False,
        expiration=expire_after(2),
        transitions=(Transition(Timing(days=1), "IA"),),
        abort_multipart=Timing(days=1),
        noncurrent_expiration_days=1,
    )
    midnight = env.clock.now_ms() // DAY * DAY
    dated = rule("dated", "dated/", expiration=Expiration(Timing(created_before_ms=midnight)))
    bucket = await env.bucket(every_action, dated, versioning="Enabled")
    await env.put(bucket, "k")
    await env.put(bucket, "k")
    await env.put(bucket, "dated/k")  # written after the date: never concerned
    upload = await env.multipart.initiate(bucket, "u", ObjectAttrs())
    env.clock.advance(1000 * DAY)
    assert await env.runner().run_pass() == Counter()
    assert len(await env.versions(bucket)) == 3
    assert await env.store.get_upload(bucket.id, "u", upload.upload_id) is not None


async def test_batches_bound_every_read_and_write(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = await env.bucket(
        rule("r", expiration=expire_after(1), noncurrent_expiration_days=1),
        versioning="Enabled",
    )
    keys = [f"k{index:02}" for index in range(10)]
    for key in keys:
        await env.put(bucket, key)
    env.clock.advance(DAY)
    for key in keys:
        await env.put(bucket, key)  # 20 versions: 10 current, 10 non-current from now
    reads: list[int] = []
    writes: list[int] = []
    scan, apply = env.store.lifecycle_versions, env.store.apply_lifecycle

    async def counted_scan(*args: Any) -> Any:
        batch = await scan(*args)
        reads.append(len(batch))
        return batch

    async def counted_apply(bucket_id: int, changes: list[PlannedChange], now_ms: int) -> Any:
        writes.append(len(changes))
        return await apply(bucket_id, changes, now_ms)

    monkeypatch.setattr(env.store, "lifecycle_versions", counted_scan)
    monkeypatch.setattr(env.store, "apply_lifecycle", counted_apply)
    runner = env.runner(batch=3)
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(expire=10, expire_noncurrent=10)
    assert max(reads) == 3 and max(writes) <= 3 and len(writes) >= 7
    # Each version is read once; a marker this pass added is read too when its key is
    # still ahead of the scan, and left alone (it is not the only version of its key).
    assert 20 <= sum(reads) <= 30
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(expire_noncurrent=10)
    assert [is_marker for _, is_marker, _ in await env.versions(bucket)] == [True] * 10


async def test_a_version_changed_after_the_scan_is_left_for_the_next_pass(env: Env) -> None:
    bucket = await env.bucket(rule("r", expiration=expire_after(1)))
    await env.put(bucket, "k", b"old")
    env.clock.advance(DAY)
    [scanned] = await env.store.lifecycle_versions(bucket.id, "", ("", 0), 10)
    await env.put(bucket, "k", b"new")  # overwritten between the read and the batch
    change = PlannedChange(scanned, EXPIRE, "r")
    outcome = await env.store.apply_lifecycle(bucket.id, [change], env.clock.now_ms())
    assert outcome.applied == [] and outcome.released_blobs == []
    assert (await env.get(bucket, "k")).size == 3
    runner = env.runner()
    assert await runner.run_pass() == Counter()
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(expire=1)


async def test_restore_is_written_down_when_ready_and_frozen_after_its_days(env: Env) -> None:
    bucket = await env.bucket()  # restores finish whether or not a bucket has rules
    await env.put(bucket, "cold", storage_class="ColdArchive")
    status, _ = await env.objects.restore(await env.get(bucket, "cold"), 1, "Expedited")
    assert status == 202
    runner = env.runner()
    env.clock.advance(HOUR - 1)
    assert await runner.run_pass() == Counter()
    assert (await env.get(bucket, "cold")).restore.state == RESTORING
    env.clock.advance(1)
    assert await runner.run_pass() == Counter(restore_done=1)
    restored = await env.get(bucket, "cold")
    assert restored.restore.state == RESTORED
    assert restored.restore.expiry_ms == env.clock.now_ms() + DAY
    done = env.actions[-1]
    assert done == AppliedAction(
        "restore_done", bucket.name, "cold", "null", None, "ColdArchive", size=4, etag=done.etag
    )
    await env.objects.open(bucket, "cold", None, Conditions())
    assert await runner.run_pass() == Counter()
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(restore_expired=1)
    frozen = await env.get(bucket, "cold")
    assert frozen.restore.state == FROZEN and frozen.storage_class == "ColdArchive"
    with pytest.raises(ServiceError) as refused:
        await env.objects.open(bucket, "cold", None, Conditions())
    assert refused.value.code == "InvalidObjectState"


async def test_a_restore_finished_and_expired_between_passes_reports_both(env: Env) -> None:
    bucket = await env.bucket()
    await env.put(bucket, "a", storage_class="Archive")
    await env.objects.restore(await env.get(bucket, "a"), 1, None)
    env.clock.advance(2 * DAY)
    assert await env.runner().run_pass() == Counter(restore_done=1, restore_expired=1)
    assert (await env.get(bucket, "a")).restore.state == FROZEN


async def test_an_unreadable_configuration_or_failing_callback_spares_the_rest(env: Env) -> None:
    broken = await env.bucket()
    await env.buckets.set_lifecycle(broken.name, "not a configuration")
    await env.put(broken, "k")
    bucket = await env.bucket(rule("r", expiration=expire_after(1)))
    await env.put(bucket, "k1")
    await env.put(bucket, "k2")

    def fail(action: AppliedAction) -> None:
        raise RuntimeError("callback failure")

    runner = LifecycleRunner(env.store, env.clock, env.collector, on_action=fail)
    env.clock.advance(DAY)
    assert await runner.run_pass() == Counter(expire=2)
    assert await env.versions(broken) == [("k", False, True)]


async def test_run_loops_until_cancelled(env: Env) -> None:
    bucket = await env.bucket(rule("r", expiration=expire_after(1)))
    await env.put(bucket, "k")
    env.clock.advance(DAY)
    done = asyncio.Event()
    runner = LifecycleRunner(env.store, env.clock, env.collector, on_action=lambda _: done.set())
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await env.versions(bucket) == []


def test_interval_is_an_hour_of_server_time_with_a_floor() -> None:
    store: Any = None
    assert LifecycleRunner(store, ScaledClock(1), store).interval_seconds() == 3600
    assert LifecycleRunner(store, ScaledClock(100), store).interval_seconds() == 36
    assert LifecycleRunner(store, ScaledClock(86400), store).interval_seconds() == 0.2


def test_scan_prefixes_cover_each_acting_rule_once() -> None:
    config = LifecycleConfiguration(
        (
            rule("a", "logs/", expiration=expire_after(9)),
            rule("b", "logs/2024/", transitions=(Transition(Timing(days=1), "IA"),)),
            rule("c", "logs0", noncurrent_expiration_days=1),
            rule("d", "tmp/", abort_multipart=Timing(days=1)),  # uploads only
        )
    )
    assert scan_prefixes(config) == ["logs/", "logs0"]
    everything = LifecycleConfiguration((rule("e", "", expiration=expire_after(1)),))
    assert scan_prefixes(everything) == [""]


def test_abort_cutoff_is_the_latest_initiation_any_enabled_rule_reaches() -> None:
    now = 100 * DAY
    config = LifecycleConfiguration(
        (
            rule("a", "x/", abort_multipart=Timing(days=3)),
            rule("b", "y/", abort_multipart=Timing(created_before_ms=99 * DAY)),
            LifecycleRule("c", "z/", False, abort_multipart=Timing(days=1)),
        )
    )
    assert abort_cutoff(config, now, DAY) == 99 * DAY - 1
    only_days = LifecycleConfiguration(config.rules[:1])
    assert abort_cutoff(only_days, now, DAY) == 97 * DAY
    assert abort_cutoff(LifecycleConfiguration(config.rules[2:]), now, DAY) is None
