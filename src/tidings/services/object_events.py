"""OSS object events: which rules an operation triggers, and the messages it publishes.

The event of a change is part of the change: `Emission.build` runs inside the object
store's transaction, after the change, and returns the topic messages to store with
it, so an event exists if and only if its change committed. What the event says that
only the transaction knows (the size before an overwrite, what a delete removed) comes
from the change's outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tidings.clock import Clock
from tidings.events.oss_event import OssEvent, message_body
from tidings.models import Outbox, Publication, Published
from tidings.object_models import (
    Bucket,
    DeleteOutcome,
    ObjectVersion,
    WriteOutcome,
)
from tidings.services.event_rules import EventRule, select_rules
from tidings.services.queues import QueueService
from tidings.services.rules import RuleService
from tidings.services.topic_outlets import TopicOutlet, TopicOutlets

OSS = "oss"
# The principal events name for an unsigned request.
ANONYMOUS_PRINCIPAL = "anonymous"


@dataclass(slots=True)
class Origin:
    """The request behind an operation, as its events report it.

    `notified` is set once an operation committed events for at least one rule: the
    response then carries `x-oss-event-status`.
    """

    request_id: str
    source_ip: str
    principal_id: str
    x_vars: dict[str, str] = field(default_factory=dict)
    notified: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """What one event says about the object."""

    key: str
    size: int
    delta_size: int
    etag: str
    position: int | None = None
    read_range: tuple[int, int] | None = None


def written(outcome: WriteOutcome) -> Facts:
    """An upload's facts: the new version and its size change over the one it replaced."""
    version, previous = outcome.version, outcome.previous
    before = previous.size if previous is not None and not previous.is_delete_marker else 0
    return Facts(version.key, version.size, version.size - before, version.etag)


def appended(position: int) -> Callable[[WriteOutcome], Facts]:
    """An append's facts: where it started and how much it added."""

    def facts(outcome: WriteOutcome) -> Facts:
        version = outcome.version
        return Facts(version.key, version.size, version.size - position, version.etag, position)

    return facts


def removed(outcome: DeleteOutcome) -> Facts | None:
    """A delete's facts, or None when nothing was removed for good: a key that did not
    exist, or a versioned delete that only put a marker in front of the current version
    (event-sources 2.2). On a suspended bucket the marker replaces the `null` version,
    which is removed: that reports an event."""
    gone = outcome.removed
    if gone is None or gone.is_delete_marker or not outcome.permanent:
        return None
    return Facts(gone.key, gone.size, -gone.size, gone.etag)


def read(version: ObjectVersion, start: int, end: int) -> Facts:
    """A download's facts: the range it read."""
    return Facts(version.key, version.size, 0, version.etag, read_range=(start, end))


@dataclass(frozen=True, slots=True)
class Emission:
    """The events of one operation on one key, prepared before its transaction."""

    targets: list[tuple[EventRule, TopicOutlet]]
    bucket: Bucket
    event_name: str
    origin: Origin
    events: ObjectEvents

    def build(self, facts: Facts | None) -> list[Publication]:
        """The publications for these facts (none when the operation reports nothing)."""
        if facts is None:
            return []
        events = self.events
        now_ms = events.clock.now_ms()
        publications = []
        for rule, outlet in self.targets:
            event = OssEvent(
                event_name=self.event_name,
                event_time_ms=now_ms,
                region=events.region,
                owner=self.bucket.owner,
                bucket=self.bucket.name,
                key=facts.key,
                size=facts.size,
                delta_size=facts.delta_size,
                etag=facts.etag,
                rule_id=rule.name,
                source_ip=self.origin.source_ip,
                request_id=self.origin.request_id,
                principal_id=self.origin.principal_id,
                position=facts.position,
                read_range=facts.read_range,
                x_vars=self.origin.x_vars,
            )
            publications.append(
                outlet.publication(
                    message_body(event),
                    now_ms,
                    events.account_id,
                    events.queues,
                    ordering_key=f"{self.bucket.name}/{facts.key}",
                )
            )
        return publications

    def committed(self, published: list[Published]) -> None:
        """After the commit: start deliveries; mark the request as having notified."""
        if published:
            self.origin.notified = True
        self.events.outlets.after_commit(published)


class ObjectEvents:
    """Finds the rules an object operation triggers and prepares their emissions."""

    def __init__(
        self,
        rules: RuleService,
        outlets: TopicOutlets,
        queues: QueueService,
        clock: Clock,
        region: str,
        account_id: str,
    ) -> None:
        self.rules = rules
        self.outlets = outlets
        self.queues = queues
        self.clock = clock
        self.region = region
        self.account_id = account_id

    async def prepare(
        self, bucket: Bucket, key: str, event_name: str, origin: Origin | None
    ) -> Emission | None:
        """The emission of `event_name` on `bucket/key`, or None when no rule wants it."""
        if origin is None:
            return None
        rules = select_rules(await self.rules.rules(OSS), OSS, event_name, f"{bucket.name}/{key}")
        targets = []
        for rule in rules:
            outlet = await self.outlets.outlet(rule.topic_name)
            if outlet is not None:  # a deleted user topic loses the event, as in the cloud
                targets.append((rule, outlet))
        if not targets:
            return None
        return Emission(targets, bucket, event_name, origin, self)


@dataclass(slots=True)
class PendingEvents:
    """An emission bound to one store call: pass `outbox` to the store, then `done()`."""

    emission: Emission
    outbox: Outbox

    def done(self) -> None:
        """After the store call returned: the events committed with the change."""
        self.emission.committed(self.outbox.published)


async def pending_events(
    events: ObjectEvents | None,
    bucket: Bucket,
    key: str,
    event_name: str,
    origin: Origin | None,
    facts: Callable[[Any], Facts | None],
) -> PendingEvents | None:
    """The events an operation will store with its change, or None when none are due."""
    if events is None:
        return None
    emission = await events.prepare(bucket, key, event_name, origin)
    if emission is None:
        return None
    return PendingEvents(emission, Outbox(lambda result: emission.build(facts(result))))
