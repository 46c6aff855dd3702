"""The delivery ledger: what was attempted, what failed, and replaying it."""

from __future__ import annotations

from collections.abc import Callable

from tidings.clock import Clock
from tidings.errors import ServiceError, invalid_argument
from tidings.models import AttemptRecord, DeliveryFilter, DeliveryRecord
from tidings.store.base import Store

STATES = frozenset({"pending", "delivered", "failed"})
MAX_LIST = 1000


class LedgerService:
    """Reads the ledger and schedules replays (the engine is woken through `on_replay`)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.on_replay: Callable[[], None] = lambda: None

    async def find(self, selection: DeliveryFilter, limit: int = 100) -> list[DeliveryRecord]:
        """Deliveries matching `selection`, newest first."""
        if selection.state is not None and selection.state not in STATES:
            raise invalid_argument(f"state must be one of {', '.join(sorted(STATES))}.")
        if not 1 <= limit <= MAX_LIST:
            raise invalid_argument(f"limit must be between 1 and {MAX_LIST}.")
        return await self.store.list_deliveries(selection, limit)

    async def show(self, delivery_id: int) -> tuple[DeliveryRecord, list[AttemptRecord]]:
        """One delivery and every attempt made for it."""
        found = await self.store.get_delivery(delivery_id)
        if found is None:
            raise ServiceError("DeliveryNotExist", f"There is no delivery {delivery_id}.")
        return found

    async def replay(self, selection: DeliveryFilter) -> int:
        """Deliver again what `selection` matches; returns how many deliveries were scheduled.

        A replay must be narrowed (message id, subscription, topic or time range) so that a
        typo cannot resend everything.
        """
        if not any(
            (
                selection.message_id,
                selection.subscription_name,
                selection.topic_name,
                selection.since_ms,
                selection.until_ms,
            )
        ):
            raise invalid_argument(
                "Say what to replay: a message id, a topic, a subscription or a time range."
            )
        count = await self.store.replay(selection, self.clock.now_ms())
        if count:
            self.on_replay()
        return count
