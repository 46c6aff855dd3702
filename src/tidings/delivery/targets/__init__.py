"""Where deliveries go: one module per endpoint kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tidings.models import Delivery


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the endpoint did with one attempt."""

    delivered: bool
    status: int | None = None
    error: str | None = None


class Target(Protocol):
    """Sends one delivery attempt and says what happened; never raises for endpoint faults."""

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Attempt the delivery once."""
        ...

    async def close(self) -> None:
        """Release pooled connections."""
        ...
