"""The bench's client processes count frames into a `Tally` as they arrive; what `next` / `await`
reports must not depend on whether it asks before, during or after the fan-out."""

import asyncio
import time

from bench.watchers import Tally


async def test_asking_after_everyone_has_the_frame_answers_at_once_with_when_the_last_had_it():
    tally = Tally(3)
    for _ in range(3):
        tally.count(1)
    before = time.monotonic()
    for _ in range(2):
        tally.count(2)
    tally.count(2)
    reached, last = await tally.everyone(2, timeout=0.01)
    assert reached == 3 and before <= last <= time.monotonic()


async def test_asking_during_the_fan_out_waits_for_the_last_socket():
    tally = Tally(3)
    waiting = asyncio.ensure_future(tally.everyone(1, timeout=5))
    tally.count(1)
    tally.count(1)
    await asyncio.sleep(0)
    assert not waiting.done()
    tally.count(1)
    reached, last = await waiting
    assert reached == 3 and last == tally.completed_at[1]


async def test_a_socket_that_never_gets_the_frame_is_reported_after_the_timeout():
    tally = Tally(3)
    tally.count(1)
    tally.count(1)
    assert await tally.everyone(1, timeout=0.05) == (2, 0.0)
