"""The delivery engine: takes deliveries from the outbox to their endpoints, with retries.

Fresh deliveries arrive in memory from the publish that created them (already leased
to this process in the same transaction). Retries, replays and anything a restart
released come from the store through a scheduler loop that sleeps until the next one
is due. Every attempt is recorded before its delivery moves on, so the ledger is
complete and a crash repeats at most the attempts in flight.

Deliveries with an ordering key (an object's events) go to each subscription one at a
time, in publish order. The store enforces it: a publish leaves a delivery whose key
has an earlier pending delivery unleased (so it never reaches this engine's memory),
and the claim skips it until that one is done. The engine wakes the scheduler when an
ordered delivery is done, and, as a guard, hands back (rather than starts) a delivery
whose subscription and key are already being attempted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any

from tidings.clock import Clock
from tidings.delivery.notification import render_delivery
from tidings.delivery.retry import retry_delay_ms
from tidings.delivery.targets import Outcome, Target
from tidings.models import AttemptResult, Delivery, QueueHandoff
from tidings.services.endpoints import QUEUE, parse_endpoint
from tidings.services.queues import QueueService
from tidings.store.base import Store

log = logging.getLogger(__name__)

CLAIM_BATCH = 256
MAX_IN_FLIGHT = 4096
# Another process (the CLI's replay) may schedule deliveries; look at least this often.
IDLE_RECHECK_SECONDS = 1.0
STOP_GRACE_SECONDS = 5.0
# A due time already reached still yields to the loop briefly instead of spinning.
MIN_SLEEP_SECONDS = 0.001


class DeliveryEngine:
    """Runs every attempt of every delivery of one store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        queues: QueueService,
        account_id: str,
        targets: dict[str, Target],
        rng: random.Random | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.store = store
        self.clock = clock
        self.queues = queues
        self.account_id = account_id
        self.targets = targets
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue_batch: list[Delivery] = []
        self._runner: asyncio.Task[None] | None = None
        self._full = False
        # (subscription id, ordering key) of the ordered deliveries being attempted here.
        self._busy_keys: set[tuple[int, str]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Release leases left by a previous process and start scheduling."""
        released = await self.store.release_leases(self.clock.now_ms())
        if released:
            log.info("resuming %d deliveries that were in flight at the last stop", released)
        self._runner = asyncio.create_task(self._schedule())

    async def stop(self) -> None:
        """Stop scheduling; give attempts in flight a moment to finish and record."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS)
        for task in self._tasks:
            task.cancel()

    def submit(self, deliveries: list[Delivery]) -> None:
        """Start deliveries now (they are leased to this engine).

        Past `max_in_flight`, the leases go back to the store instead, and the scheduler
        claims them as capacity frees: a dead endpoint under sustained publishing cannot
        make memory grow without bound. An ordered delivery whose subscription and key
        are already being attempted here goes back too: the store's claim holds it until
        its predecessor is done, so it can neither overtake it nor sit in memory while
        that one waits for a retry.
        """
        room = max(0, self.max_in_flight - len(self._tasks) - len(self._queue_batch))
        back: list[Delivery] = []
        for delivery in deliveries:
            busy = _busy_key(delivery)
            if room == 0 or (busy is not None and busy in self._busy_keys):
                back.append(delivery)
                continue
            if busy is not None:
                self._busy_keys.add(busy)
            room -= 1
            self._start(delivery)
        if back:
            self._track(self._hand_back(back))

    async def _hand_back(self, deliveries: list[Delivery]) -> None:
        try:
            await self.store.release_deliveries([d.id for d in deliveries])
        except Exception:
            log.exception("could not hand %d deliveries back to the store", len(deliveries))
            return
        if any(d.message.ordering_key is not None for d in deliveries):
            # Their predecessor may have finished before this release committed, and
            # then its wake-up found nothing to claim: look again.
            self._wake.set()

    def _done(self, delivery: Delivery, final: bool) -> None:
        """Forget an ordered delivery's attempt; after its last one, let its successor go."""
        busy = _busy_key(delivery)
        if busy is None:
            return
        self._busy_keys.discard(busy)
        if final:
            # The next delivery of the key waits unleased in the store for this one.
            self._wake.set()

    @property
    def in_flight(self) -> int:
        """Attempts under way (pushes, queue batches, hand-backs)."""
        return len(self._tasks)

    def wake(self) -> None:
        """Look for due deliveries now (after a replay)."""
        self._wake.set()

    # -- scheduling -----------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            self._wake.clear()
            try:
                timeout = await self._claim_and_plan()
            except Exception:
                log.exception("delivery scheduling failed; retrying")
                timeout = IDLE_RECHECK_SECONDS
            if timeout > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
                # that lands just as the wake-up fires, and `stop` then waits forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()

    async def _claim_and_plan(self) -> float:
        """Start what is due and room allows; return how long to sleep before looking again."""
        room = self.max_in_flight - len(self._tasks) - len(self._queue_batch)
        if room <= 0:
            # Full: the next finishing attempt wakes us (see `_finished`).
            self._full = True
            return IDLE_RECHECK_SECONDS
        claimed = await self.store.claim_due(self.clock.now_ms(), min(room, CLAIM_BATCH))
        self.submit(claimed)
        if len(claimed) == min(room, CLAIM_BATCH):
            return 0.0  # there may be more due right now
        due = await self.store.next_due_ms()
        if due is None:
            return IDLE_RECHECK_SECONDS
        until_due = self.clock.real_seconds(due - self.clock.now_ms())
        return max(MIN_SLEEP_SECONDS, min(IDLE_RECHECK_SECONDS, until_due))

    def _start(self, delivery: Delivery) -> None:
        kind = parse_endpoint(delivery.subscription.spec.endpoint).kind
        if kind == QUEUE:
            if not self._queue_batch:
                self._track(self._flush_queue_batch())
            self._queue_batch.append(delivery)
            return
        target = self.targets.get(kind)
        self._track(self._push(delivery, target))

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._full:
            self._full = False
            self._wake.set()

    # -- attempts -------------------------------------------------------------------------

    def _result(
        self, delivery: Delivery, outcome: Outcome, at_ms: int, latency_ms: int
    ) -> AttemptResult:
        next_attempt_ms = None
        if not outcome.delivered:
            delay = retry_delay_ms(
                delivery.subscription.spec.notify_strategy, delivery.attempts, self.rng
            )
            if delay is not None and at_ms + delay < delivery.message.expire_ms:
                next_attempt_ms = at_ms + delay
        return AttemptResult(
            delivery_id=delivery.id,
            attempt=delivery.attempts + 1,
            at_ms=at_ms,
            latency_ms=latency_ms,
            delivered=outcome.delivered,
            status=outcome.status,
            error=outcome.error,
            next_attempt_ms=next_attempt_ms,
        )

    async def _push(self, delivery: Delivery, target: Target | None) -> None:
        at_ms = self.clock.now_ms()
        started = time.monotonic()
        if target is None:
            kind = parse_endpoint(delivery.subscription.spec.endpoint).kind
            outcome = Outcome(False, None, f"no {kind} delivery is configured")
        else:
            try:
                outcome = await target.deliver(delivery)
            except Exception as exc:  # a bug of ours must not stall the engine
                log.exception("delivery %d failed unexpectedly", delivery.id)
                outcome = Outcome(False, None, f"internal error: {type(exc).__name__}")
        latency_ms = int((time.monotonic() - started) * 1000)
        result = self._result(delivery, outcome, at_ms, latency_ms)
        try:
            await self._record([result])
        finally:
            # Delivered or given up: the next of its key may go. (If the record failed,
            # the delivery stays leased and pending, so the store still holds the next.)
            self._done(delivery, final=result.next_attempt_ms is None)

    async def _record(self, results: list[AttemptResult]) -> None:
        try:
            await self.store.record_attempts(results)
        except Exception:
            # The deliveries stay leased; the next start makes them due again.
            log.exception("could not record %d delivery attempts", len(results))
            return
        if any(r.next_attempt_ms is not None for r in results):
            self._wake.set()

    async def _flush_queue_batch(self) -> None:
        """Deliver every queue-bound delivery gathered this loop tick in one transaction."""
        await asyncio.sleep(0)
        batch, self._queue_batch = self._queue_batch, []
        try:
            await self._deliver_to_queues(batch)
        finally:
            for delivery in batch:
                # Counted as final even when a vanished queue scheduled a retry: the
                # wake-up is then merely spare (the claim still holds the successors).
                self._done(delivery, final=True)

    async def _deliver_to_queues(self, batch: list[Delivery]) -> None:
        handoffs: list[QueueHandoff] = []
        failures: list[AttemptResult] = []
        for delivery in batch:
            at_ms = self.clock.now_ms()
            name = parse_endpoint(delivery.subscription.spec.endpoint).target
            missing = self._result(
                delivery, Outcome(False, None, f"queue {name} does not exist"), at_ms, 0
            )
            queue = await self.queues.find(name)
            if queue is None:
                failures.append(missing)
                continue
            body, _ = render_delivery(delivery, self.account_id)
            handoffs.append(
                QueueHandoff(
                    delivered=self._result(delivery, Outcome(True), at_ms, 0),
                    missing=missing,
                    queue_id=queue.id,
                    message=self.queues.notification_message(queue, body.decode("utf-8"), at_ms),
                )
            )
        if failures:
            await self._record(failures)
        if handoffs:
            try:
                filled = await self.store.hand_off_to_queues(handoffs)
            except Exception:
                log.exception("could not hand %d deliveries to queues", len(handoffs))
                return
            for queue_id in filled:
                self.queues.notifier.notify(queue_id)
            if len(filled) < len({h.queue_id for h in handoffs}):
                self._wake.set()  # a queue was gone: its retry is due later


def _busy_key(delivery: Delivery) -> tuple[int, str] | None:
    """What an ordered delivery holds while attempted: its subscription and key."""
    key = delivery.message.ordering_key
    return None if key is None else (delivery.subscription.id, key)
