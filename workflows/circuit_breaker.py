"""CircuitBreakerWorkflow: one long-lived entity per model, shared by every worker.

Why an entity workflow rather than per-process state or a shared database: every
worker of a deployment, on any machine, asks the same breaker; its state is
durable and survives worker and server restarts with no extra infrastructure;
and each decision reaches the calling workflow as a recorded activity result, so
replay stays deterministic. Updates are recorded in its history, so it continues
as new when the server suggests it.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.entity import carry_on

with workflow.unsafe.imports_passed_through():
    from keel.rules.breaker import (
        ACQUIRE_UPDATE,
        BREAKER_WORKFLOW,
        RECORD_UPDATE,
        STATE_QUERY,
        BreakerStart,
        BreakerState,
        CallOutcome,
        Permission,
        breaker_id,
    )

__all__ = ["CircuitBreakerWorkflow", "breaker_id"]


@workflow.defn(name=BREAKER_WORKFLOW)
class CircuitBreakerWorkflow:
    @workflow.init
    def __init__(self, start: BreakerStart) -> None:
        self._state = start.state or BreakerState(name=start.name, config=start.config)

    @workflow.update(name=ACQUIRE_UPDATE)
    def acquire(self) -> Permission:
        before = self._state.state
        permission = self._state.acquire(workflow.now())
        self._log_transition(before)
        return permission

    @workflow.update(name=RECORD_UPDATE)
    def record(self, outcome: CallOutcome) -> BreakerState:
        before = self._state.state
        for _ in range(outcome.count):
            self._state.record(outcome.failed, workflow.now())
        self._log_transition(before)
        return self._state

    @workflow.query(name=STATE_QUERY)
    def state(self) -> BreakerState:
        return self._state

    def _log_transition(self, before: str) -> None:
        if self._state.state != before:
            last = self._state.transitions[-1]
            workflow.logger.warning(
                "breaker %s: %s -> %s (%s)", self._state.name, before, last.to_state, last.reason
            )

    @workflow.run
    async def run(self, start: BreakerStart) -> None:
        await carry_on(
            lambda: BreakerStart(name=start.name, config=self._state.config, state=self._state)
        )
