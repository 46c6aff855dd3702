"""The two notify strategies of MNS subscriptions (spec 12.3) as pure delay schedules.

The delivery loop asks `retry_delay_ms(strategy, retries_done)` after each failed
attempt and either waits that long or, on None, gives up (drop or dead-letter). Keeping
the schedule here, free of clocks and I/O, lets tests pin every one of its 176 steps.
"""

from __future__ import annotations

import random

BACKOFF_RETRY = "BACKOFF_RETRY"
EXPONENTIAL_DECAY_RETRY = "EXPONENTIAL_DECAY_RETRY"
STRATEGIES = frozenset({BACKOFF_RETRY, EXPONENTIAL_DECAY_RETRY})

# BACKOFF_RETRY: 3 retries, each after a uniform random 10–20 s (bounds inclusive).
BACKOFF_RETRIES = 3
BACKOFF_MIN_DELAY_MS = 10_000
BACKOFF_MAX_DELAY_MS = 20_000

# EXPONENTIAL_DECAY_RETRY: 1, 2, 4, …, 256 s (9 doublings), then 512 s for the
# remaining 167 retries: 176 retries, 511 s + 167 × 512 s ≈ 23.9 h, about the
# topic's one-day retention.
EXPONENTIAL_FIRST_DELAY_MS = 1_000
EXPONENTIAL_DOUBLING_RETRIES = 9
EXPONENTIAL_CAP_DELAY_MS = 512_000
EXPONENTIAL_RETRIES = 176

_RETRIES = {BACKOFF_RETRY: BACKOFF_RETRIES, EXPONENTIAL_DECAY_RETRY: EXPONENTIAL_RETRIES}
# Not a security boundary: jitter only spreads retries, so a plain PRNG is enough.
_DEFAULT_RNG = random.Random()


def _retries(strategy: str) -> int:
    try:
        return _RETRIES[strategy]
    except KeyError:
        raise ValueError(
            f"unknown notify strategy {strategy!r}; expected one of {sorted(STRATEGIES)}"
        ) from None


def max_retries(strategy: str) -> int:
    """How many retries `strategy` allows after the first attempt."""
    return _retries(strategy)


def max_attempts(strategy: str) -> int:
    """How many delivery attempts `strategy` allows in all: the first one plus retries."""
    return 1 + _retries(strategy)


def retry_delay_ms(
    strategy: str, retries_done: int, rng: random.Random | None = None
) -> int | None:
    """The wait in milliseconds before the next retry, or None when none is left.

    `retries_done` counts the retries already made: 0 means the first attempt has just
    failed. `rng` draws the BACKOFF_RETRY jitter (pass a seeded one for reproducible
    schedules); EXPONENTIAL_DECAY_RETRY never uses it. An unknown strategy or a
    negative count is a ValueError: both are caller bugs, not delivery outcomes.
    """
    retries = _retries(strategy)
    if retries_done < 0:
        raise ValueError(f"retries_done must be >= 0, not {retries_done}")
    if retries_done >= retries:
        return None
    if strategy == BACKOFF_RETRY:
        return (rng or _DEFAULT_RNG).randint(BACKOFF_MIN_DELAY_MS, BACKOFF_MAX_DELAY_MS)
    if retries_done < EXPONENTIAL_DOUBLING_RETRIES:
        return EXPONENTIAL_FIRST_DELAY_MS << retries_done
    return EXPONENTIAL_CAP_DELAY_MS
