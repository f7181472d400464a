"""Tools' circuit breakers, asked without a round trip on the common path.

Each breaker is an entity workflow (workflows/circuit_breaker.py), and asking it is an
update: a workflow task on some worker, about 10 ms on a busy 2-core machine, twice a
call (acquire, then record). A tool call itself may take 3 ms, so the breaker would be
most of its cost, and its updates would queue beside the calling run's own tasks.
This worker keeps what each tool's breaker last said:

- A breaker seen closed less than `CLOSED_FRESH_SECONDS` ago is not asked again: in
  the closed state acquiring changes nothing, so the answer is the one it would give.
  An opening by another worker is seen here within that time (as a call already in
  flight when a breaker opens goes on); an opening caused here is seen at once,
  because a failure is always recorded and awaited.
- A success while closed cannot move the breaker, so the call does not wait for it:
  successes are told together, as one update with their count, at most every
  `FLUSH_SECONDS`, and before any failure, so the window holds them in order. One
  that the worker stops before telling shortens the window by a call, as an
  unreachable breaker does.
- Open or half-open, every call asks and every outcome is awaited, so cool-downs and
  probes are exactly the breaker's.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from activities.llm.breakers import Breakers
from keel.rules.breaker import BreakerState, Permission

log = structlog.get_logger()

CLOSED_FRESH_SECONDS = 1.0
FLUSH_SECONDS = 0.25


class ToolBreakers:
    """`Breakers` for tool calls, with this worker's view of each breaker."""

    def __init__(
        self,
        breakers: Breakers,
        fresh_seconds: float = CLOSED_FRESH_SECONDS,
        flush_seconds: float = FLUSH_SECONDS,
        *,
        exact: bool = False,
    ) -> None:
        """`exact`: ask on every call and await every outcome (the bench's comparison)."""
        self._breakers = breakers
        self._fresh = 0.0 if exact else fresh_seconds
        self._flush_seconds = flush_seconds
        self._exact = exact
        # name -> (state, when it was last heard, monotonic seconds)
        self._seen: dict[str, tuple[str, float]] = {}
        self._successes: dict[str, int] = {}
        self._telling: dict[str, asyncio.Task[None]] = {}

    def _closed(self, name: str) -> bool:
        state, at = self._seen.get(name, ("", -self._fresh))
        return state == "closed" and time.monotonic() - at < self._fresh

    def _heard(self, name: str, state: BreakerState | None) -> None:
        if state is None:
            self._seen.pop(name, None)
        else:
            self._seen[name] = (state.state, time.monotonic())

    async def acquire(self, name: str) -> Permission:
        if self._closed(name):
            return Permission(allowed=True, state="closed")
        permission = await self._breakers.acquire(name)
        if permission.reason != "breaker unreachable":
            self._seen[name] = (permission.state, time.monotonic())
        return permission

    async def record(self, name: str, failed: bool, before: str) -> BreakerState | None:
        if failed or before != "closed" or self._exact:
            await self._tell_successes(name)
            state = await self._breakers.record(name, failed, before)
            self._heard(name, state)
            return state
        self._successes[name] = self._successes.get(name, 0) + 1
        if name not in self._telling:
            self._telling[name] = asyncio.create_task(self._tell_later(name))
        return None

    async def _tell_later(self, name: str) -> None:
        try:
            while self._successes.get(name):
                await asyncio.sleep(self._flush_seconds)
                await self._tell_successes(name)
        finally:
            self._telling.pop(name, None)

    async def _tell_successes(self, name: str) -> None:
        """The successes not yet told, as one update; never a call's failure."""
        count = self._successes.pop(name, 0)
        if not count:
            return
        try:
            state = await self._breakers.record(name, False, "closed", count=count)
        except Exception as error:
            log.warning("breaker.unrecorded", breaker=name, successes=count, error=str(error))
            return
        self._heard(name, state)

    async def drain(self) -> None:
        """Tells every success still waiting (tests, and a worker's shutdown)."""
        await asyncio.gather(*self._telling.values(), return_exceptions=True)
