"""Background loops that run until their task is cancelled. A failed pass is logged and
retried, never ends the loop: only cancellation (shutdown) does."""

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def drain_then_wait(
    step: Callable[[], Awaitable[int]],
    wake: asyncio.Event,
    *,
    poll_seconds: float,
    log: logging.Logger,
    what: str,
    error_pause_seconds: float = 1,
) -> None:
    """Run `step` again at once while it finds work (it returns how much it did); when it finds
    none, wait for `wake` (set on a local commit) or `poll_seconds`, whichever comes first.
    `wake` is cleared before each pass, so a commit signalled while a pass runs (after its read)
    brings the next pass at once instead of after `poll_seconds`.
    After a failure, log it and pause `error_pause_seconds` before the next pass."""
    while True:
        wake.clear()
        try:
            done = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
            done = 0
            await asyncio.sleep(error_pause_seconds)
        if done:
            continue
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that comes in
        # the same loop turn as the wake (it returns the wake), and the loop then never stops.
        try:
            async with asyncio.timeout(poll_seconds):
                await wake.wait()
        except TimeoutError:
            pass


async def every(
    seconds: float,
    step: Callable[[], Awaitable[object]],
    *,
    log: logging.Logger,
    failure: str,
    run_at_start: bool = True,
) -> None:
    """Run `step` every `seconds` (the first pass at once, or after `seconds` unless
    `run_at_start`). A failed pass is logged with `failure`; the next comes as scheduled."""
    if not run_at_start:
        await asyncio.sleep(seconds)
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failure)
        await asyncio.sleep(seconds)
