"""The events of what the lifecycle scheduler does: transitions, expirations, aborted
uploads and finished restores (spec 12; event-sources.md 2.1).

The scheduler commits its changes in batches of its own; each change's event is stored
right after, in a transaction of its own. Unlike a request's event, it is therefore not
atomic with its change: a crash in between loses that event (the change stays). This
is documented as a deviation.
"""

from __future__ import annotations

import asyncio
import logging

from tidings.object_models import NULL_VERSION
from tidings.services.buckets import BucketService
from tidings.services.lifecycle import AppliedAction
from tidings.services.object_events import Facts, ObjectEvents, Origin, pending_events
from tidings.services.object_rules import new_request_id
from tidings.store.sqlite_object_store import SqliteObjectStore

log = logging.getLogger(__name__)

CHANGE_STORAGE_CLASS = "ObjectModified:ChangeStorageClass"
# The cloud does not document the name of a lifecycle deletion; this is the closest.
LIFECYCLE_DELETE = "ObjectRemoved:DeleteObject"
ABORT_UPLOAD = "ObjectRemoved:AbortMultipartUpload"
FINISH_RESTORE = "ObjectRestore:FinishRestore"
# Only the cold classes report a finished restore.
RESTORE_EVENT_CLASSES = ("ColdArchive", "DeepColdArchive")
# What events name as the principal and source of a change nobody requested.
LIFECYCLE_PRINCIPAL = "lifecycle"


def event_of(action: AppliedAction) -> tuple[str, Facts] | None:
    """The event name and facts of an action, or None when it reports nothing (a delete
    marker added or removed, a restored copy expiring, an Archive restore)."""
    if action.kind in ("transition", "transition_noncurrent"):
        return CHANGE_STORAGE_CLASS, Facts(action.key, action.size, 0, action.etag)
    # An expiration removes the object for good without versioning, and with versioning
    # suspended when the current version was the `null` one (the `null` marker takes
    # its place); otherwise it only puts a marker in front, which reports nothing.
    gone_for_good = action.marker_version_id is None or (
        action.marker_version_id == NULL_VERSION and action.version_id == NULL_VERSION
    )
    if action.kind == "expire_noncurrent" or (action.kind == "expire" and gone_for_good):
        return LIFECYCLE_DELETE, Facts(action.key, action.size, -action.size, action.etag)
    if action.kind == "abort_multipart":
        return ABORT_UPLOAD, Facts(action.key, 0, 0, "")
    if action.kind == "restore_done" and action.storage_class in RESTORE_EVENT_CLASSES:
        return FINISH_RESTORE, Facts(action.key, action.size, 0, action.etag)
    return None


class LifecycleEvents:
    """The scheduler's `on_action` callback: publishes each action's event."""

    def __init__(
        self, events: ObjectEvents, buckets: BucketService, store: SqliteObjectStore
    ) -> None:
        self.events = events
        self.buckets = buckets
        self.store = store
        self._running: set[asyncio.Task[None]] = set()

    def __call__(self, action: AppliedAction) -> None:
        found = event_of(action)
        if found is None:
            return
        task = asyncio.create_task(self._emit(action, *found))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _emit(self, action: AppliedAction, event_name: str, facts: Facts) -> None:
        try:
            bucket = await self.buckets.find(action.bucket)
            if bucket is None:
                return
            origin = Origin(new_request_id(), "", LIFECYCLE_PRINCIPAL)
            pending = await pending_events(
                self.events, bucket, action.key, event_name, origin, lambda _: facts
            )
            if pending is not None:
                await self.store.record_events(pending.outbox)
                pending.done()
        except Exception:
            log.exception(
                "the event of a lifecycle action on %s/%s failed", action.bucket, action.key
            )
