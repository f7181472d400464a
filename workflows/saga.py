"""Saga bookkeeping for workflows: every side effect registers how to undo it.

Compensations run in reverse order, each an activity retried until it succeeds
and sent with its own idempotency key, so an unwind interrupted by a crash or a
second cancellation resumes without undoing anything twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from graphs.policies import COMPENSATION_RETRY
    from models.tickets import CompensationEntry, UndoRecord

Undo = Callable[[Any, Any], Awaitable[Any]]


@dataclass
class _Registered:
    entry: CompensationEntry
    undo: Undo
    call: BaseModel


class Saga:
    def __init__(self, start_to_close: timedelta) -> None:
        self._start_to_close = start_to_close
        self._registered: list[_Registered] = []

    @property
    def log(self) -> list[CompensationEntry]:
        """What is registered and how far the unwind got, for the progress query."""
        return [r.entry for r in self._registered]

    def register(
        self,
        step: str,
        undo: Undo,
        call: BaseModel,
        *,
        action: str | None = None,
        record_id: int | None = None,
    ) -> None:
        """Register how to undo `step`: the activity `undo` called with `call`."""
        if record_id is None:
            record_id = call.record_id if isinstance(call, UndoRecord) else 0
        entry = CompensationEntry(step=step, action=action or undo.__name__, record_id=record_id)
        self._registered.append(_Registered(entry, undo, call))

    async def compensate(self) -> None:
        """Undo in reverse order; a cancellation arriving meanwhile does not stop it."""
        unwind = asyncio.ensure_future(self._unwind())
        while True:
            try:
                await asyncio.shield(unwind)
                return
            except asyncio.CancelledError:
                if unwind.done():
                    raise
                workflow.logger.info("cancellation during compensation: finishing the unwind")

    async def _unwind(self) -> None:
        for registered in reversed(self._registered):
            entry = registered.entry
            if entry.status == "done":
                continue
            entry.status = "running"
            await workflow.execute_activity_method(
                registered.undo,
                registered.call,
                start_to_close_timeout=self._start_to_close,
                retry_policy=COMPENSATION_RETRY,
                summary=f"compensate {entry.step}: {entry.action} {entry.record_id}",
            )
            entry.status = "done"
