"""drain_then_wait: the loop behind the outbox relay and the email sender."""

import asyncio
import logging

from shared.polling import drain_then_wait


async def test_a_wake_during_a_pass_brings_the_next_pass_at_once() -> None:
    """A commit signalled after a pass has read (and found nothing) must not wait for the poll."""
    wake = asyncio.Event()
    passes = 0
    second_pass = asyncio.Event()

    async def step() -> int:
        nonlocal passes
        passes += 1
        if passes == 1:
            wake.set()  # a commit lands while this pass runs, after its read
        else:
            second_pass.set()
        return 0

    loop = asyncio.create_task(
        drain_then_wait(step, wake, poll_seconds=60, log=logging.getLogger("test"), what="test loop")
    )
    try:
        await asyncio.wait_for(second_pass.wait(), timeout=5)
    finally:
        loop.cancel()
    assert passes == 2


async def test_a_cancel_in_the_same_turn_as_a_wake_stops_the_loop() -> None:
    """Shutdown right after a commit: the wake and the cancel arrive together, and the loop must
    end (a swallowed cancel left `OutboxRelay.stop()` waiting for ever)."""
    wake = asyncio.Event()
    waiting = asyncio.Event()

    async def step() -> int:
        waiting.set()
        return 0

    loop = asyncio.create_task(
        drain_then_wait(step, wake, poll_seconds=60, log=logging.getLogger("test"), what="test loop")
    )
    await waiting.wait()
    await asyncio.sleep(0)  # the loop is now waiting for the wake
    wake.set()
    loop.cancel()
    done, _ = await asyncio.wait({loop}, timeout=5)
    assert loop in done and loop.cancelled()
