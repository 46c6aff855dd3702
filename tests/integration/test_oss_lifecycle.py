"""Lifecycle rules and restore completion on a real server's clock, seen through `oss2`.

Each test runs its own `tidings serve --clock-speed 86400`: a server day lasts one real
second and the scheduler runs every 0.2 s, so Days=1 rules act within about 1.2 s.
Every wait polls against a deadline; each check that an action did not come early
compares real elapsed time with the server time the action needs.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import oss2
import pytest
from oss2.exceptions import OssError
from oss2.models import (
    AbortMultipartUpload,
    BucketLifecycle,
    LifecycleExpiration,
    LifecycleRule,
    NoncurrentVersionExpiration,
    RestoreConfiguration,
    RestoreJobParameters,
    StorageTransition,
)

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

SPEED = 86_400  # server seconds per real second: a day per second
DAY_REAL = 86_400 / SPEED
DEADLINE = 10.0

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str) -> T:
    """Poll `check` until it returns something truthy; fail after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def fast_server(fresh_server: ServerProcess) -> ServerProcess:
    """A server of this test's own whose clock runs a day per second."""
    fresh_server.extra_args = ["--clock-speed", str(SPEED)]
    return fresh_server.start()


def new_bucket(server: ServerProcess) -> oss2.Bucket:
    """A fresh bucket on `server` (oss2, V1 signatures, CRC checks on)."""
    auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    bucket = oss2.Bucket(auth, server.oss_url, f"lc-{uuid.uuid4().hex[:12]}")
    bucket.create_bucket()
    return bucket


def stored_restore_state(server: ServerProcess, key: str) -> str:
    """The restore state the server has written down (reads compute theirs on the fly)."""
    with contextlib.closing(sqlite3.connect(server.data_dir / "tidings.db", timeout=5)) as conn:
        row = conn.execute(
            "SELECT restore_state FROM object_versions WHERE key = ? AND is_current = 1", (key,)
        ).fetchone()
    return str(row[0])


def test_expiration_transition_and_abort_act_after_a_server_day(
    fast_server: ServerProcess,
) -> None:
    bucket = new_bucket(fast_server)
    rules = [
        LifecycleRule("expire", "expire/", expiration=LifecycleExpiration(days=1)),
        LifecycleRule(
            "cool", "cool/", storage_transitions=[StorageTransition(days=1, storage_class="IA")]
        ),
        LifecycleRule("uploads", "mpu/", abort_multipart_upload=AbortMultipartUpload(days=1)),
    ]
    bucket.put_bucket_lifecycle(BucketLifecycle(rules))
    started = time.monotonic()
    for key in ("expire/a", "cool/b", "keep/c"):
        bucket.put_object(key, f"body of {key}".encode())
    upload_id = bucket.init_multipart_upload("mpu/x").upload_id
    bucket.upload_part("mpu/x", upload_id, 1, b"part")
    before = bucket.head_object("cool/b")
    assert before.headers["x-oss-storage-class"] == "Standard"

    wait_for(lambda: not bucket.object_exists("expire/a"), "expire/a to expire")
    assert time.monotonic() - started >= DAY_REAL

    def transitioned() -> oss2.models.HeadObjectResult | None:
        head = bucket.head_object("cool/b")
        return head if head.headers["x-oss-storage-class"] == "IA" else None

    after = wait_for(transitioned, "cool/b to move to IA")
    assert "x-oss-transition-time" in after.headers
    for name in ("ETag", "Last-Modified", "x-oss-hash-crc64ecma"):
        assert after.headers[name] == before.headers[name]
    assert bucket.get_object("cool/b").read() == b"body of cool/b"  # IA stays readable

    wait_for(lambda: not bucket.list_multipart_uploads().upload_list, "mpu/x to be aborted")
    with pytest.raises(OssError) as gone:
        bucket.list_parts("mpu/x", upload_id)
    assert gone.value.code == "NoSuchUpload"
    assert bucket.get_object("keep/c").read() == b"body of keep/c"


def test_versioned_bucket_marker_then_noncurrent_expiry_then_marker_removal(
    fast_server: ServerProcess,
) -> None:
    bucket = new_bucket(fast_server)
    bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    rules = [
        LifecycleRule(
            "expire",
            "",
            expiration=LifecycleExpiration(days=1),
            noncurrent_version_expiration=NoncurrentVersionExpiration(1),
        ),
        LifecycleRule("markers", "", expiration=LifecycleExpiration(expired_detete_marker=True)),
    ]
    bucket.put_bucket_lifecycle(BucketLifecycle(rules))
    version_id = bucket.put_object("k", b"v1").versionid

    def listing() -> tuple[list[str], list[str]]:
        result = bucket.list_object_versions()
        return [v.versionid for v in result.versions], [m.versionid for m in result.delete_marker]

    def marker_added() -> bool:
        versions, markers = listing()
        return versions == [version_id] and len(markers) == 1

    wait_for(marker_added, "a delete marker in front of k")
    assert not bucket.object_exists("k")
    # A day later the old version goes, and then the marker left on its own.
    wait_for(lambda: listing() == ([], []), "k to disappear entirely")


def test_cold_archive_restore_completes_on_the_server_clock_then_expires(
    fast_server: ServerProcess,
) -> None:
    bucket = new_bucket(fast_server)
    bucket.put_object("frozen", b"cold bytes", headers={"x-oss-storage-class": "ColdArchive"})
    with pytest.raises(OssError) as frozen:
        bucket.get_object("frozen")
    assert frozen.value.code == "InvalidObjectState"
    job = RestoreJobParameters(oss2.models.RESTORE_TIER_EXPEDITED)
    started = time.monotonic()
    result = bucket.restore_object("frozen", input=RestoreConfiguration(1, job))
    assert result.status == 202

    def readable() -> bytes | None:
        try:
            return bytes(bucket.get_object("frozen").read())
        except OssError as error:
            assert error.code == "InvalidObjectState"
            return None

    assert wait_for(readable, "the restore to complete") == b"cold bytes"
    assert time.monotonic() - started >= DAY_REAL / 24  # Expedited: one server hour
    restore = bucket.head_object("frozen").headers["x-oss-restore"]
    assert restore.startswith('ongoing-request="false", expiry-date=')
    wait_for(lambda: stored_restore_state(fast_server, "frozen") == "done", "restore written")

    wait_for(lambda: readable() is None, "the restored copy to expire")
    assert time.monotonic() - started >= DAY_REAL * 25 / 24
    wait_for(lambda: stored_restore_state(fast_server, "frozen") == "", "frozen written")
    head = bucket.head_object("frozen")
    assert head.headers["x-oss-storage-class"] == "ColdArchive"
    assert "x-oss-restore" not in head.headers


def test_lifecycle_actions_and_finished_restores_publish_their_events(
    fast_server: ServerProcess,
) -> None:
    """Transitions report ObjectModified:ChangeStorageClass, expirations
    ObjectRemoved:DeleteObject (with a negative deltaSize), aborted uploads
    ObjectRemoved:AbortMultipartUpload, and a finished ColdArchive restore
    ObjectRestore:FinishRestore — each through the rules like any object event."""
    from alibabacloud_mns_open20220119 import models
    from mns.account import Account
    from mns.queue import QueueMeta

    from tests.integration.control_plane_support import client_for

    bucket = new_bucket(fast_server)
    queue = Account(fast_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).get_queue("lc-events")
    queue.create(QueueMeta())
    client_for(fast_server).create_event_rule(
        models.CreateEventRuleRequest(
            product_name="oss",
            rule_name="lifecycle-events",
            event_types=[
                "ObjectModified:ChangeStorageClass",
                "ObjectRemovedGroup",
                "FinishRestore",
            ],
            match_rules=[[models.EventMatchRule(prefix=f"{bucket.bucket_name}/")]],
            endpoint=models.CreateEventRuleRequestEndpoint(
                endpoint_type="queue", endpoint_value="lc-events"
            ),
        )
    )
    rules = [
        LifecycleRule("expire", "expire/", expiration=LifecycleExpiration(days=1)),
        LifecycleRule(
            "cool", "cool/", storage_transitions=[StorageTransition(days=1, storage_class="IA")]
        ),
        LifecycleRule("uploads", "mpu/", abort_multipart_upload=AbortMultipartUpload(days=1)),
    ]
    bucket.put_bucket_lifecycle(BucketLifecycle(rules))
    bucket.put_object("expire/a", b"12345")
    bucket.put_object("cool/b", b"cool")
    bucket.init_multipart_upload("mpu/x")
    bucket.put_object("frozen", b"cold", headers={"x-oss-storage-class": "ColdArchive"})
    job = RestoreJobParameters(oss2.models.RESTORE_TIER_EXPEDITED)
    bucket.restore_object("frozen", input=RestoreConfiguration(1, job))

    # At this clock speed a received message is visible again within a millisecond, so
    # the whole queue is read in batches and events are told apart by name.
    seen: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + DEADLINE
    while len(seen) < 4 and time.monotonic() < deadline:
        try:
            messages = queue.batch_receive_message(16, wait_seconds=1)
        except Exception:
            continue
        for message in messages:
            record = json.loads(message.message_body)["events"][0]
            seen[record["eventName"]] = record
    assert set(seen) == {
        "ObjectModified:ChangeStorageClass",
        "ObjectRemoved:DeleteObject",
        "ObjectRemoved:AbortMultipartUpload",
        "ObjectRestore:FinishRestore",
    }
    removed = seen["ObjectRemoved:DeleteObject"]["oss"]
    assert isinstance(removed, dict)
    assert removed["object"]["key"] == "expire/a"
    assert removed["object"]["deltaSize"] == -5
    assert removed["ruleId"] == "lifecycle-events"
    changed = seen["ObjectModified:ChangeStorageClass"]["oss"]
    assert isinstance(changed, dict)
    assert changed["object"]["key"] == "cool/b"
