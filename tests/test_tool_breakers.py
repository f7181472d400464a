"""A tool's breaker as this worker sees it: asked while it may refuse, not while closed."""

from __future__ import annotations

import asyncio
import time

from activities.llm.breakers import Breakers
from activities.tools.tool_breakers import ToolBreakers
from keel.rules.breaker import BreakerConfig, BreakerState, BreakerStateName, Permission


class FakeBreakers(Breakers):
    """The entity's answers without Temporal: a state the test sets, a slow record."""

    def __init__(self, state: BreakerStateName = "closed", record_seconds: float = 0.0) -> None:
        super().__init__("scope", "queue", BreakerConfig())
        self.state: BreakerStateName = state
        self.record_seconds = record_seconds
        self.acquired = 0
        self.records: list[bool] = []
        self.updates = 0

    async def acquire(self, name: str) -> Permission:
        self.acquired += 1
        return Permission(allowed=self.state != "open", state=self.state)

    async def record(
        self, name: str, failed: bool, before: str, count: int = 1
    ) -> BreakerState | None:
        await asyncio.sleep(self.record_seconds)
        self.records.extend([failed] * count)
        self.updates += 1
        return BreakerState(name=name, state=self.state)


async def test_a_closed_breaker_is_asked_once_while_its_answer_is_fresh() -> None:
    fake = FakeBreakers()
    breakers = ToolBreakers(fake, fresh_seconds=0.2)
    answers = [await breakers.acquire("tool:t") for _ in range(5)]
    assert [a.allowed for a in answers] == [True] * 5
    assert fake.acquired == 1
    await asyncio.sleep(0.25)
    await breakers.acquire("tool:t")
    assert fake.acquired == 2  # no longer fresh: asked again


async def test_successes_while_closed_are_told_together_without_waiting() -> None:
    fake = FakeBreakers(record_seconds=0.3)
    breakers = ToolBreakers(fake, flush_seconds=0.05)
    began = time.monotonic()
    for _ in range(3):
        permission = await breakers.acquire("tool:t")
        await breakers.record("tool:t", False, permission.state)
    assert time.monotonic() - began < 0.1
    assert fake.records == []
    await breakers.drain()
    # They reached the breaker's window all the same, in one update.
    assert (fake.records, fake.updates) == ([False] * 3, 1)


async def test_a_failure_goes_after_the_successes_before_it() -> None:
    fake = FakeBreakers()
    breakers = ToolBreakers(fake, flush_seconds=60)
    await breakers.record("tool:t", False, "closed")
    await breakers.record("tool:t", True, "closed")
    assert fake.records == [False, True]


async def test_a_failure_is_awaited_and_an_opening_is_seen_at_once() -> None:
    fake = FakeBreakers(record_seconds=0.05)
    breakers = ToolBreakers(fake, fresh_seconds=60)
    await breakers.acquire("tool:t")
    fake.state = "open"  # this failure opens it
    await breakers.record("tool:t", True, "closed")
    assert fake.records == [True]
    refused = await breakers.acquire("tool:t")
    assert not refused.allowed
    assert fake.acquired == 2


async def test_an_open_or_half_open_breaker_is_asked_every_call() -> None:
    fake = FakeBreakers(state="half_open")
    breakers = ToolBreakers(fake, fresh_seconds=60)
    for _ in range(3):
        permission = await breakers.acquire("tool:t")
        await breakers.record("tool:t", False, permission.state)
    assert fake.acquired == 3
    assert fake.records == [False] * 3  # each probe's outcome awaited, none left behind
