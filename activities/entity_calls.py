"""Updates to an entity workflow that many workers call at once, tried until answered.

The server takes at most `history.maxInFlightUpdates` updates in flight on one workflow
(10 by default, on the dev server and on a cluster) and refuses the next with
RESOURCE_EXHAUSTED; an update caught by the entity's continue-as-new is aborted
(UNAVAILABLE); one whose workflow task waits on a worker still starting, or gone, times
out. None of these says the entity is wrong, only busy or away: the caller, an activity
that heartbeats meanwhile and stops when cancelled, tries again after a jittered pause,
up to its deadline. The updates are idempotent by the call's id, so an update that was
applied but whose answer was lost is answered the same the second time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")

log = structlog.get_logger()

BUSY = frozenset(
    {RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}
)
FIRST_PAUSE_SECONDS = 0.02
MAX_PAUSE_SECONDS = 1.0


async def until_answered(
    update: Callable[[], Awaitable[T]], what: str, deadline_seconds: float | None = None
) -> T:
    """`update()`, tried again while the entity is busy or away; None: no deadline."""
    deadline = None if deadline_seconds is None else time.monotonic() + deadline_seconds
    pause = FIRST_PAUSE_SECONDS
    while True:
        try:
            return await update()
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            log.warning("entity.slow", entity=what)
        except RPCError as error:
            if error.status not in BUSY:
                raise
        if deadline is not None and time.monotonic() + pause > deadline:
            raise TimeoutError(f"{what} did not answer within {deadline_seconds:g} s")
        await asyncio.sleep(random.uniform(pause / 2, pause))
        pause = min(pause * 2, MAX_PAUSE_SECONDS)
