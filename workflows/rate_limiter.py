"""RateLimiterWorkflow: one long-lived entity per provider model, shared by every worker.

The same pattern as the circuit breaker (workflows/circuit_breaker.py): every worker of
a deployment, on any host, books its calls in one ledger, which is durable and needs
no other infrastructure. Temporal's own task-queue rate limit
(`max_task_queue_activities_per_second`) is enforced by the server across workers too,
but counts activity starts on a whole queue, per second, and no tokens: it cannot hold
one model to its own requests and tokens a minute (docs/llm-gateway.md). Updates are
recorded in the history, so it continues as new when the server suggests it.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.entity import carry_on

with workflow.unsafe.imports_passed_through():
    from keel.rules.rate_limit import (
        BACK_OFF_UPDATE,
        BOOK_UPDATE,
        LEDGER_QUERY,
        RATE_LIMITER_WORKFLOW,
        SETTLE_UPDATE,
        BackOff,
        Booking,
        Ledger,
        LimiterStart,
        Settlement,
        Slot,
    )


@workflow.defn(name=RATE_LIMITER_WORKFLOW)
class RateLimiterWorkflow:
    @workflow.init
    def __init__(self, start: LimiterStart) -> None:
        self._ledger = start.ledger or Ledger(limit=start.limit)

    @workflow.update(name=BOOK_UPDATE)
    def book(self, booking: Booking) -> Slot:
        return self._ledger.book(booking, workflow.now())

    @workflow.update(name=SETTLE_UPDATE)
    def settle(self, settlement: Settlement) -> None:
        self._ledger.settle(settlement)

    @workflow.update(name=BACK_OFF_UPDATE)
    def back_off(self, back_off: BackOff) -> None:
        self._ledger.back_off(back_off.seconds, workflow.now())
        workflow.logger.warning("rate limit %s: closed for %.1f s", self._label, back_off.seconds)

    @workflow.query(name=LEDGER_QUERY)
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def _label(self) -> str:
        return workflow.info().workflow_id

    @workflow.run
    async def run(self, start: LimiterStart) -> None:
        await carry_on(
            lambda: LimiterStart(label=start.label, limit=self._ledger.limit, ledger=self._ledger)
        )
