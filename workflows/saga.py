"""Saga bookkeeping for workflows: every side effect registers how to undo it.

Compensations run in reverse order, each an activity retried until it succeeds
and sent with its own idempotency key, so an unwind interrupted by a crash or a
second cancellation resumes without undoing anything twice. An undo that fails
for good does not stop the unwind: every other step is still undone, and the
failures are reported together at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from keel.graphs.policies import COMPENSATION_RETRY, HEARTBEAT_TIMEOUT
    from keel.payloads.errors import COMPENSATION_FAILED
    from keel.payloads.tickets import CompensationEntry, UndoRecord

# Runs recorded before this patch registered an undo after its step returned.
UNDO_BEFORE_CALL = "undo-before-call"
# Unwinds recorded before this patch stopped at the first undo that failed for good.
UNWIND_PAST_FAILURES = "unwind-past-failures"

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
    ) -> CompensationEntry:
        """Register how to undo `step`: the activity `undo` called with `call`.

        Returns the log entry, so a step registered before it runs can fill in the
        record it made once it has.
        """
        if record_id is None:
            record_id = call.record_id if isinstance(call, UndoRecord) else 0
        entry = CompensationEntry(step=step, action=action or undo.__name__, record_id=record_id)
        self._registered.append(_Registered(entry, undo, call))
        return entry

    def settle(self, action: str, key: str) -> None:
        """An undo already run outside the unwind (an operator's `reconcile ... undo`)."""
        for registered in self._registered:
            if (
                registered.entry.action == action
                and getattr(registered.call, "idempotency_key", None) == key
            ):
                registered.entry.status = "done"

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
            if entry.status in ("done", "failed"):
                continue
            entry.status = "running"
            try:
                await workflow.execute_activity_method(
                    registered.undo,
                    registered.call,
                    start_to_close_timeout=self._start_to_close,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=COMPENSATION_RETRY,
                    summary=f"compensate {entry.step}: {entry.action} {entry.record_id}",
                )
            except ActivityError as error:
                if is_cancelled_exception(error) or not workflow.patched(UNWIND_PAST_FAILURES):
                    raise
                entry.status = "failed"
                entry.error = str(error.cause or error)[:300]
                workflow.logger.warning("compensation of %s failed: %s", entry.step, entry.error)
                continue
            entry.status = "done"
        failed = [e for e in self._registered if e.entry.status == "failed"]
        if failed:
            raise ApplicationError(
                "compensation failed for "
                + "; ".join(f"{r.entry.step}: {r.entry.error}" for r in failed),
                type=COMPENSATION_FAILED,
                non_retryable=True,
            )
