"""A provider's rate limit, held by every worker together: book a time, wait, send.

Each call books a time to be sent at in its model's ledger (an entity workflow, see
keel/rules/rate_limit.py) and sleeps until then, so the provider never sees more than the
contract allows and answers no burst of 429s. The wait happens inside the activity's
heartbeats (activities/heartbeat.py): a cancel ends it at once and gives the booking
back. A 429 closes the ledger for its Retry-After, which every worker's next booking
honours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.entity_calls import until_answered
from activities.llm.gates import GatedCall
from keel.payloads.errors import PROVIDER_RATE_LIMITED
from keel.payloads.llm import Usage
from keel.rules.rate_limit import (
    BACK_OFF_UPDATE,
    BOOK_UPDATE,
    RATE_LIMITER_WORKFLOW,
    SETTLE_UPDATE,
    BackOff,
    Booking,
    LimiterStart,
    RateLimit,
    Settlement,
    Slot,
    rate_limiter_id,
)

log = structlog.get_logger()

LIMITER_RPC_TIMEOUT = timedelta(seconds=10)
# How long a settlement or a back-off is tried before it is given up (the call is made).
TELL_DEADLINE_SECONDS = 30.0
# A 429 that names no Retry-After still closes the ledger this long.
DEFAULT_BACK_OFF_SECONDS = 1.0


class RateLimits:
    """The gate of every limited model: its ledger's entity workflow on `task_queue`."""

    def __init__(
        self, scope: str, task_queue: str, limits: Callable[[], dict[str, RateLimit]]
    ) -> None:
        self._scope = scope
        self._task_queue = task_queue
        self._limits = limits

    async def admit(self, call: GatedCall) -> GatedCall:
        limit = self._limits().get(call.label)
        if limit is not None:
            await self._wait(call, await self._book(call, limit))
        return call

    async def _wait(self, call: GatedCall, slot: Slot) -> None:
        """Until the booked time; cancelled while waiting, the slot goes back for the calls
        behind it."""
        if slot.wait_seconds <= 0:
            return
        activity.metric_meter().create_histogram_float(
            "keel_rate_limit_wait", "seconds a call waited for its rate-limit slot", "s"
        ).record(slot.wait_seconds, {"model": call.label})
        try:
            await asyncio.sleep(slot.wait_seconds)
        except asyncio.CancelledError:
            await self._update(call.label, SETTLE_UPDATE, Settlement(id=call.call_id, sent=False))
            raise

    async def settle(
        self, call: GatedCall, usage: Usage | None, error: ApplicationError | None
    ) -> None:
        if call.label not in self._limits():
            return
        if error is not None and error.type == PROVIDER_RATE_LIMITED:
            delay = error.next_retry_delay
            seconds = delay.total_seconds() if delay else DEFAULT_BACK_OFF_SECONDS
            log.warning("rate_limit.back_off", model=call.label, seconds=seconds)
            await self._update(call.label, BACK_OFF_UPDATE, BackOff(seconds=seconds))
        if usage is not None:
            await self._update(
                call.label, SETTLE_UPDATE, Settlement(id=call.call_id, tokens=usage.tokens)
            )

    async def _book(self, call: GatedCall, limit: RateLimit) -> Slot:
        """A time to send at, or the ledger's refusal (retried after the window). A ledger
        that cannot be reached holds the call back (it waits, heartbeating) rather than
        letting it go out uncounted."""
        booking = Booking(id=call.call_id, tokens=call.tokens, limit=limit)
        slot: Slot = await until_answered(
            lambda: activity.client().execute_update_with_start_workflow(
                BOOK_UPDATE,
                booking,
                start_workflow_operation=self._start(call.label, limit),
                rpc_timeout=LIMITER_RPC_TIMEOUT,
                result_type=Slot,
            ),
            f"rate limit of {call.label}",
        )
        if not slot.granted:
            raise ApplicationError(
                f"rate limit of {call.label}: {slot.reason}",
                type=PROVIDER_RATE_LIMITED,
                next_retry_delay=timedelta(seconds=limit.window_seconds),
            )
        return slot

    def _start(self, label: str, limit: RateLimit) -> WithStartWorkflowOperation[None, None]:
        """The ledger's start, should it not run yet: one per attempt (it cannot be reused).

        Called by its recorded names (keel/rules/rate_limit.py): activities import no workflow.
        """
        return WithStartWorkflowOperation(
            RATE_LIMITER_WORKFLOW,
            LimiterStart(label=label, limit=limit),
            id=rate_limiter_id(self._scope, label),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    async def _update(self, label: str, update: str, argument: object) -> None:
        """Tell the ledger; a ledger that cannot be told in time costs only precision."""
        handle = activity.client().get_workflow_handle(rate_limiter_id(self._scope, label))
        try:
            await until_answered(
                lambda: handle.execute_update(update, argument, rpc_timeout=LIMITER_RPC_TIMEOUT),
                f"rate limit of {label}",
                TELL_DEADLINE_SECONDS,
            )
        except (RPCError, TimeoutError) as error:
            log.warning("rate_limit.untold", model=label, update=update, error=str(error))
