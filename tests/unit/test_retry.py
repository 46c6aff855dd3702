"""The notify strategies' retry schedules (spec 12.3).

The exponential schedule is written out from the spec's words (1, 2, 4 … 256 s, then
512 s up to 176 retries) rather than from the module's constants, so a wrong constant
shows up as a wrong schedule.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.delivery.retry import (
    BACKOFF_MAX_DELAY_MS,
    BACKOFF_MIN_DELAY_MS,
    BACKOFF_RETRIES,
    BACKOFF_RETRY,
    EXPONENTIAL_DECAY_RETRY,
    EXPONENTIAL_RETRIES,
    STRATEGIES,
    max_attempts,
    max_retries,
    retry_delay_ms,
)

SPEC_EXPONENTIAL_SECONDS = [1, 2, 4, 8, 16, 32, 64, 128, 256] + [512] * 167


def test_constants_match_the_spec() -> None:
    assert BACKOFF_RETRY == "BACKOFF_RETRY"
    assert EXPONENTIAL_DECAY_RETRY == "EXPONENTIAL_DECAY_RETRY"
    assert frozenset({"BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"}) == STRATEGIES
    assert (BACKOFF_RETRIES, BACKOFF_MIN_DELAY_MS, BACKOFF_MAX_DELAY_MS) == (3, 10_000, 20_000)
    assert EXPONENTIAL_RETRIES == 176


def test_exponential_schedule_is_exact() -> None:
    schedule = [retry_delay_ms(EXPONENTIAL_DECAY_RETRY, n) for n in range(176)]
    assert schedule == [s * 1000 for s in SPEC_EXPONENTIAL_SECONDS]
    assert len(schedule) == 176


def test_exponential_schedule_spans_about_a_day() -> None:
    total_ms = sum(retry_delay_ms(EXPONENTIAL_DECAY_RETRY, n) or 0 for n in range(176))
    assert total_ms == (511 + 167 * 512) * 1000 == 86_015_000
    assert 23.8 < total_ms / 3_600_000 < 24.0  # ≈ 23.9 h


@pytest.mark.parametrize("retries_done", [176, 177, 500, 10**9])
def test_exponential_gives_up_after_the_last_retry(retries_done: int) -> None:
    assert retry_delay_ms(EXPONENTIAL_DECAY_RETRY, retries_done) is None


def test_exponential_ignores_the_rng() -> None:
    class Exploding(random.Random):
        def randint(self, a: int, b: int) -> int:
            raise AssertionError("EXPONENTIAL_DECAY_RETRY must not draw jitter")

    assert retry_delay_ms(EXPONENTIAL_DECAY_RETRY, 3, Exploding()) == 8000


def test_backoff_gives_three_retries_within_bounds() -> None:
    rng = random.Random(1234)
    delays = [retry_delay_ms(BACKOFF_RETRY, n, rng) for n in range(3)]
    assert all(d is not None and 10_000 <= d <= 20_000 for d in delays)
    assert retry_delay_ms(BACKOFF_RETRY, 3, rng) is None
    assert retry_delay_ms(BACKOFF_RETRY, 4, rng) is None


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [retry_delay_ms(BACKOFF_RETRY, n, random.Random(7)) for n in range(3)]
    second = [retry_delay_ms(BACKOFF_RETRY, n, random.Random(7)) for n in range(3)]
    assert first == second


def test_backoff_covers_the_whole_range_inclusive() -> None:
    class Edges(random.Random):
        def __init__(self, pick_low: bool) -> None:
            super().__init__(0)
            self.pick_low = pick_low

        def randint(self, a: int, b: int) -> int:
            return a if self.pick_low else b

    assert retry_delay_ms(BACKOFF_RETRY, 0, Edges(True)) == 10_000
    assert retry_delay_ms(BACKOFF_RETRY, 0, Edges(False)) == 20_000


def test_backoff_spreads_over_the_range() -> None:
    rng = random.Random(42)
    delays = [retry_delay_ms(BACKOFF_RETRY, 0, rng) or 0 for _ in range(5000)]
    assert min(delays) < 10_500 and max(delays) > 19_500
    assert 14_500 < sum(delays) / len(delays) < 15_500  # uniform: mean 15 s


def test_backoff_without_rng_uses_a_default() -> None:
    delay = retry_delay_ms(BACKOFF_RETRY, 0)
    assert delay is not None and 10_000 <= delay <= 20_000


def test_max_attempts_and_retries() -> None:
    assert max_attempts(BACKOFF_RETRY) == 4
    assert max_attempts(EXPONENTIAL_DECAY_RETRY) == 177
    assert max_retries(BACKOFF_RETRY) == 3
    assert max_retries(EXPONENTIAL_DECAY_RETRY) == 176


@pytest.mark.parametrize("strategy", ["", "backoff_retry", "LINEAR_RETRY", "BACKOFF_RETRY "])
def test_unknown_strategy_is_refused(strategy: str) -> None:
    with pytest.raises(ValueError, match="unknown notify strategy"):
        retry_delay_ms(strategy, 0)
    with pytest.raises(ValueError, match="unknown notify strategy"):
        max_attempts(strategy)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_negative_retries_done_is_refused(strategy: str) -> None:
    with pytest.raises(ValueError, match="retries_done"):
        retry_delay_ms(strategy, -1)


@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    retries_done=st.integers(min_value=0, max_value=10**6),
    seed=st.integers(),
)
def test_delays_are_within_bounds_for_any_retry_count(
    strategy: str, retries_done: int, seed: int
) -> None:
    delay = retry_delay_ms(strategy, retries_done, random.Random(seed))
    if retries_done >= max_retries(strategy):
        assert delay is None
        return
    assert delay is not None
    if strategy == BACKOFF_RETRY:
        assert 10_000 <= delay <= 20_000
    else:
        assert 1_000 <= delay <= 512_000
        assert delay == 1000 * SPEC_EXPONENTIAL_SECONDS[retries_done]


@given(retries_done=st.integers(min_value=0, max_value=174))
def test_exponential_delays_never_shrink(retries_done: int) -> None:
    this = retry_delay_ms(EXPONENTIAL_DECAY_RETRY, retries_done)
    following = retry_delay_ms(EXPONENTIAL_DECAY_RETRY, retries_done + 1)
    assert this is not None and following is not None and following >= this
