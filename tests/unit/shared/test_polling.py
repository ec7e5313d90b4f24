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
