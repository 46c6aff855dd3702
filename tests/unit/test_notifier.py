"""Long-poll wake-ups: as many receivers as messages arrived, longest-waiting first."""

from __future__ import annotations

import asyncio

from tidings.services.notifier import Notifier


async def test_notify_wakes_as_many_waiters_as_messages_oldest_first() -> None:
    notifier = Notifier()
    waiters = [notifier.subscribe(7) for _ in range(4)]
    notifier.notify(7, 1)
    assert [w.done() for w in waiters] == [True, False, False, False]
    notifier.notify(7, 2)
    assert [w.done() for w in waiters] == [True, True, True, False]
    notifier.notify(7)  # no count: everybody
    assert all(w.done() for w in waiters)
    notifier.notify(7, 3)  # nobody waiting: nothing to do


async def test_unsubscribed_waiters_are_skipped_and_other_queues_untouched() -> None:
    notifier = Notifier()
    first, second = notifier.subscribe(1), notifier.subscribe(1)
    other = notifier.subscribe(2)
    notifier.unsubscribe(1, first)
    notifier.notify(1, 1)
    assert not first.done() and second.done() and not other.done()


async def test_close_wakes_everybody_and_answers_later_waits_at_once() -> None:
    notifier = Notifier()
    waiting = notifier.subscribe(3)
    notifier.close()
    assert waiting.done()
    assert notifier.subscribe(3).done()
    await asyncio.sleep(0)
