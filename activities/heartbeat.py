"""Heartbeats while an activity awaits slow I/O.

Temporal notices a dead worker only through missed heartbeats, and delivers a
cancellation only in a heartbeat's answer. Awaiting through `heartbeating` gives
both: a crash is seen within the heartbeat timeout instead of the start-to-close
timeout, and a cancel reaches the await, which cancels the I/O under it (an HTTP
request is aborted, not left to commit later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")

# Well inside every heartbeat timeout in keel/graphs/policies.py.
HEARTBEAT_EVERY_SECONDS = 1.0


async def heartbeating(work: Awaitable[T], every: float | None = HEARTBEAT_EVERY_SECONDS) -> T:
    """Await `work`, heartbeating meanwhile; outside an activity, just await it.

    `every=None` sends none: the bench's side-by-side run that prices heartbeats.
    """
    if every is None or not activity.in_activity():
        return await work
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        # Cancelled (the activity was) or failed: the I/O under it stops here.
        task.cancel()
