"""The lifecycle scheduler: bucket lifecycle rules and restore completion, on the server clock.

Every `interval_ms` of server time (default one hour; never more often than every
`MIN_REAL_SECONDS` = 0.2 s of real time, which is what `--clock-speed 86400` gets), a pass:

1. writes down restores that became ready (ongoing -> done) and restored copies that
   expired (done -> frozen), which reads already compute on the fly;
2. for each bucket with a lifecycle configuration, scans the versions under the rules'
   prefixes in batches of `batch` rows, asks `lifecycle_rules.due_action` about each,
   and applies the batch's actions in one store transaction;
3. scans the bucket's multipart uploads oldest first, up to the latest initiation time
   any abort rule could reach, and aborts the ones `abort_due` names, a batch per
   transaction.

Decisions are pure (`lifecycle_rules`, `restore`); this module only reads, decides and
hands batches to the store. A row changed between the read and its batch is skipped
and judged again next pass. Each action made is reported to the optional `on_action`
callback (for event notifications) after its transaction committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tidings.clock import Clock
from tidings.object_models import FROZEN, RESTORED, Bucket, ObjectVersion, Upload
from tidings.services.blob_gc import BlobCollector
from tidings.services.lifecycle_rules import (
    ActionKind,
    LifecycleConfiguration,
    LifecycleRule,
    VersionFacts,
    abort_due,
    config_from_json,
    due_action,
)
from tidings.services.object_rules import new_version_id
from tidings.services.restore import DAY_MS, HOUR_MS, settled_restore
from tidings.store.sqlite_lifecycle import (
    EXPIRE,
    PlannedChange,
    RestorePhase,
    ScannedVersion,
)
from tidings.store.sqlite_object_store import SqliteObjectStore

log = logging.getLogger(__name__)

# Rows read (and at most actions written) per store call: bounds memory and the time a
# batch holds the writer, whatever the bucket size.
BATCH = 500
# Never spin faster than this in real time, however fast the server clock runs.
MIN_REAL_SECONDS = 0.2
BUCKETS_PER_READ = 100

AppliedKind = ActionKind | Literal["abort_multipart", "restore_done", "restore_expired"]


@dataclass(frozen=True, slots=True)
class AppliedAction:
    """One change the scheduler made, as the future event notifications need it.

    `kind` is a `lifecycle_rules.ActionKind`, `abort_multipart`, `restore_done` (a
    restore finished: ObjectRestore:FinishRestore for cold classes) or `restore_expired`
    (a restored copy went back to frozen). `version_id` is the version acted on (None
    for an upload), `storage_class` the new class of a transition or the class of a
    restored object, `marker_version_id` the delete marker an expiration added.
    """

    kind: AppliedKind
    bucket: str
    key: str
    version_id: str | None
    rule_id: str | None
    storage_class: str | None = None
    upload_id: str | None = None
    marker_version_id: str | None = None
    # The acted-on version's size and ETag, for the event that reports the action.
    size: int = 0
    etag: str = ""


OnAction = Callable[[AppliedAction], None]


def version_facts(scanned: ScannedVersion) -> VersionFacts:
    """What `due_action` needs to know about a scanned version.

    Access times are not tracked, so IsAccessTime rules count from the last
    modification (the time of the last write is the latest access we know of).
    """
    version = scanned.version
    return VersionFacts(
        key=version.key,
        size=version.size,
        tags=version.tags,
        storage_class=version.storage_class,
        last_modified_ms=version.last_modified_ms,
        last_access_ms=None,
        is_current=version.is_current,
        is_delete_marker=version.is_delete_marker,
        noncurrent_since_ms=version.noncurrent_since_ms,
        only_version_left=scanned.only_version_left,
    )


def _acts_on_versions(rule: LifecycleRule) -> bool:
    return rule.enabled and (
        rule.expiration is not None
        or bool(rule.transitions)
        or rule.noncurrent_expiration_days is not None
        or bool(rule.noncurrent_transitions)
    )


def scan_prefixes(config: LifecycleConfiguration) -> list[str]:
    """The fewest key prefixes covering every enabled rule that acts on versions.

    Sorted, a prefix comes right before the strings that extend it, so dropping each
    one the previous kept prefix covers leaves disjoint ranges ("" covers everything).
    """
    kept: list[str] = []
    for prefix in sorted({rule.prefix for rule in config.rules if _acts_on_versions(rule)}):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept


def abort_cutoff(config: LifecycleConfiguration, now_ms: int, day_ms: int) -> int | None:
    """The latest initiation time an enabled abort rule could reach now; None if none.

    Only a bound for the scan (`abort_due` decides): uploads started later are not read.
    """
    cutoffs: list[int] = []
    for rule in config.rules:
        timing = rule.abort_multipart
        if timing is None or not rule.enabled:
            continue
        if timing.days is not None:
            cutoffs.append(now_ms - timing.days * day_ms)
        elif timing.created_before_ms is not None:
            cutoffs.append(timing.created_before_ms - 1)
    return max(cutoffs, default=None)


class LifecycleRunner:
    """Runs lifecycle rules and restore completion periodically on the server clock."""

    def __init__(
        self,
        store: SqliteObjectStore,
        clock: Clock,
        collector: BlobCollector,
        *,
        interval_ms: int = HOUR_MS,
        day_ms: int = DAY_MS,
        batch: int = BATCH,
        on_action: OnAction | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.collector = collector
        self.interval_ms = interval_ms
        # The length of a lifecycle "day"; restore lifetimes use restore.DAY_MS.
        self.day_ms = day_ms
        self.batch = batch
        self.on_action = on_action
        self._broken: set[tuple[int, str]] = set()  # configurations already logged

    def interval_seconds(self) -> float:
        """Real seconds between passes: `interval_ms` of server time, at least 0.2 s."""
        return max(MIN_REAL_SECONDS, self.clock.real_seconds(self.interval_ms))

    async def run(self) -> None:
        """Run a pass now and then every interval, until cancelled."""
        while True:
            try:
                await self.run_pass()
            except Exception:
                log.exception("lifecycle pass failed")
            await asyncio.sleep(self.interval_seconds())

    async def run_pass(self) -> Counter[str]:
        """One pass over restores, then every bucket's rules; counts actions by kind."""
        counts: Counter[str] = Counter()
        for phase in ("ongoing", "done"):
            await self._settle_restores(phase, counts)
        after_id = 0
        while True:
            buckets = await self.store.lifecycle_buckets(after_id, BUCKETS_PER_READ)
            for bucket in buckets:
                try:
                    await self._bucket(bucket, counts)
                except Exception:
                    # One bucket's failure (say, a disk error) must not starve the others.
                    log.exception("lifecycle of bucket %s failed", bucket.name)
            if len(buckets) < BUCKETS_PER_READ:
                return counts
            after_id = buckets[-1].id

    def _report(self, action: AppliedAction, counts: Counter[str]) -> None:
        counts[action.kind] += 1
        if self.on_action is None:
            return
        try:
            self.on_action(action)
        except Exception:
            log.exception("lifecycle action callback failed")

    def _config(self, bucket: Bucket) -> LifecycleConfiguration | None:
        if bucket.lifecycle is None:
            return None
        try:
            return config_from_json(bucket.lifecycle)
        except ValueError:
            # Logged once per stored text, not every pass.
            if (bucket.id, bucket.lifecycle) not in self._broken:
                self._broken.add((bucket.id, bucket.lifecycle))
                log.error("bucket %s has an unreadable lifecycle configuration", bucket.name)
            return None

    async def _bucket(self, bucket: Bucket, counts: Counter[str]) -> None:
        config = self._config(bucket)
        if config is None:
            return
        for prefix in scan_prefixes(config):
            await self._versions(bucket, config, prefix, counts)
        await self._uploads(bucket, config, counts)

    def _plan(
        self, config: LifecycleConfiguration, batch: list[ScannedVersion], now_ms: int
    ) -> dict[int, tuple[PlannedChange, ActionKind]]:
        """The batch's due actions by version seq."""
        planned: dict[int, tuple[PlannedChange, ActionKind]] = {}
        for scanned in batch:
            action = due_action(config, version_facts(scanned), now_ms, self.day_ms)
            if action is None:
                continue
            marker_id = new_version_id(now_ms) if action.kind == EXPIRE else ""
            change = PlannedChange(
                scanned, action.kind, action.rule_id, action.storage_class, marker_id
            )
            planned[scanned.version.seq] = (change, action.kind)
        return planned

    async def _versions(
        self, bucket: Bucket, config: LifecycleConfiguration, prefix: str, counts: Counter[str]
    ) -> None:
        after = (prefix, 0)
        while True:
            batch = await self.store.lifecycle_versions(bucket.id, prefix, after, self.batch)
            now_ms = self.clock.now_ms()
            planned = self._plan(config, batch, now_ms)
            if planned:
                changes = [change for change, _ in planned.values()]
                outcome = await self.store.apply_lifecycle(bucket.id, changes, now_ms)
                self.collector.released(outcome.released_blobs)
                for applied in outcome.applied:
                    change, version = applied.change, applied.change.seen.version
                    marker = applied.marker.version_id if applied.marker else None
                    action = AppliedAction(
                        planned[version.seq][1],
                        bucket.name,
                        version.key,
                        version.version_id,
                        change.rule_id,
                        storage_class=change.storage_class,
                        marker_version_id=marker,
                        size=version.size,
                        etag=version.etag,
                    )
                    self._report(action, counts)
            if len(batch) < self.batch:
                return
            last = batch[-1].version
            after = (last.key, last.seq)

    async def _uploads(
        self, bucket: Bucket, config: LifecycleConfiguration, counts: Counter[str]
    ) -> None:
        now_ms = self.clock.now_ms()
        cutoff = abort_cutoff(config, now_ms, self.day_ms)
        if cutoff is None:
            return
        after = (-(2**63), 0)
        while True:
            batch = await self.store.lifecycle_uploads(bucket.id, cutoff, after, self.batch)
            due: dict[str, tuple[Upload, str]] = {}
            for upload in batch:
                rule_id = abort_due(config, upload.key, upload.initiated_ms, now_ms, self.day_ms)
                if rule_id is not None:
                    due[upload.upload_id] = (upload, rule_id)
            if due:
                uploads = [upload for upload, _ in due.values()]
                aborted, released = await self.store.abort_uploads(bucket.id, uploads)
                self.collector.released(released)
                for upload in aborted:
                    rule_id = due[upload.upload_id][1]
                    action = AppliedAction(
                        "abort_multipart",
                        bucket.name,
                        upload.key,
                        None,
                        rule_id,
                        upload_id=upload.upload_id,
                    )
                    self._report(action, counts)
            if len(batch) < self.batch:
                return
            after = (batch[-1].initiated_ms, batch[-1].id)

    async def _settle_restores(self, phase: RestorePhase, counts: Counter[str]) -> None:
        now_ms = self.clock.now_ms()
        after = (-(2**63), 0)
        while True:
            batch = await self.store.restores_due(phase, now_ms, after, self.batch)
            names = {version.seq: name for name, version in batch}
            changes = [
                (version, columns)
                for _, version in batch
                if (columns := settled_restore(version, now_ms)) is not None
            ]
            if changes:
                for before, after_version in await self.store.settle_restores(changes):
                    self._report_restore(names[before.seq], before, after_version, counts)
            if len(batch) < self.batch:
                return
            last = batch[-1][1]
            time = last.restore.ready_ms if phase == "ongoing" else last.restore.expiry_ms
            after = (time or 0, last.seq)

    def _report_restore(
        self, bucket: str, before: ObjectVersion, after: ObjectVersion, counts: Counter[str]
    ) -> None:
        kinds: list[AppliedKind] = []
        if before.restore.state != RESTORED:
            # ongoing -> done, or straight to frozen when a pass came after the expiry
            kinds.append("restore_done")
        if after.restore.state == FROZEN:
            kinds.append("restore_expired")
        for kind in kinds:
            action = AppliedAction(
                kind,
                bucket,
                before.key,
                before.version_id,
                None,
                before.storage_class,
                size=before.size,
                etag=before.etag,
            )
            self._report(action, counts)
