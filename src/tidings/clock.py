"""The one clock behind every server timer.

Visibility timeouts, delays, retention and (later) retries and lifecycle rules all read
time from a `Clock`. `ScaledClock` runs N times faster than real time so a test can
watch a day of timers in seconds; `ManualClock` only moves when told to, for
property-based tests of the state machines. Signature clock-skew checks deliberately
use real wall time, never this clock.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Server time in Unix milliseconds, and a way to sleep in that time."""

    def now_ms(self) -> int:
        """Current server time, Unix milliseconds."""
        ...

    def real_seconds(self, server_ms: int) -> float:
        """How many real seconds a span of `server_ms` server milliseconds lasts."""
        ...


class ScaledClock:
    """Wall time, optionally running `speed` times faster from the moment it is created."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._origin_wall = time.time()
        self._origin_mono = time.monotonic()

    def now_ms(self) -> int:
        """Current server time, Unix milliseconds."""
        if self.speed == 1.0:
            return int(time.time() * 1000)
        elapsed = (time.monotonic() - self._origin_mono) * self.speed
        return int((self._origin_wall + elapsed) * 1000)

    def real_seconds(self, server_ms: int) -> float:
        """How many real seconds a span of `server_ms` server milliseconds lasts."""
        return max(0.0, server_ms / 1000 / self.speed)


class ManualClock:
    """A clock that stands still until `advance` is called (tests only)."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """Current server time, Unix milliseconds."""
        return self._now

    def advance(self, ms: int) -> None:
        """Move time forward by `ms` milliseconds."""
        self._now += ms

    def real_seconds(self, server_ms: int) -> float:
        """Manual time never passes by itself; waiters are woken explicitly."""
        return 0.0
