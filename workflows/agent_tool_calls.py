"""How an agent's allowed tool calls are sent, and how its side effects are undone.

Each call is an activity (or a forked run's recorded outcome); a side effect without an
idempotency key is sent at most once (workflows/side_effects.py); each side effect's
undo is registered with the saga and carried across continue-as-new.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.tools.activities import ToolActivities
    from keel.graphs.policies import AT_MOST_ONCE_RETRY, HEARTBEAT_TIMEOUT, TOOL_RETRY, TOOL_TIMEOUT
    from keel.payloads.agents import AgentCarry
    from keel.payloads.recorded import RecordedCall
    from keel.payloads.tool_specs import ToolSpec
    from keel.payloads.tools import ToolInvocation, ToolOutcome
    from workflows.live import LiveChannel
    from workflows.recorded import Recorded
    from workflows.saga import Saga
    from workflows.side_effects import AT_MOST_ONCE_PATCH, SideEffects


class ToolCalls:
    """The saga of an agent's side effects, their undos, and the calls at most once."""

    def __init__(self, carry: AgentCarry, recorded: list[RecordedCall], live: LiveChannel) -> None:
        self.saga = Saga(TOOL_TIMEOUT)
        self.compensations = list(carry.compensations)
        self.recorded = Recorded(recorded)
        self.effects = SideEffects(carry.side_effects, live, self.saga, self.compensations)
        for undo in self.compensations:
            self._register_undo(undo)

    async def send(
        self,
        call: ToolInvocation,
        summary: str,
        spec: ToolSpec,
        undo: ToolInvocation | None,
        turn: int,
    ) -> ToolOutcome:
        """A side effect without a key gets one attempt, and a lost outcome waits for an
        operator (workflows/side_effects.py); any other call is retried as tools are."""
        summary = summary[:200]
        if undo is not None and spec.at_most_once and workflow.patched(AT_MOST_ONCE_PATCH):

            def send() -> Awaitable[ToolOutcome]:
                return self._call(call, summary, spec.timeout_seconds, AT_MOST_ONCE_RETRY)

            return await self.effects.send(call, turn, send, undo, summary)
        return await self._call(call, summary, spec.timeout_seconds)

    async def _call(
        self,
        call: ToolInvocation,
        summary: str,
        timeout_seconds: float,
        retry: RetryPolicy = TOOL_RETRY,
    ) -> ToolOutcome:
        def send() -> Awaitable[ToolOutcome]:
            return workflow.execute_activity_method(
                ToolActivities.call,
                call,
                # The contract's limit per attempt (20 s unless it says otherwise).
                start_to_close_timeout=timedelta(seconds=timeout_seconds),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=retry,
                summary=summary,
            )

        return await self.recorded.or_run("call_tool", summary, ToolOutcome, send)

    def remember_undo(
        self, compensation: str, call: ToolInvocation, arguments: dict[str, Any]
    ) -> ToolInvocation:
        """Register the call's undo now (under the call's key plus `:undo`) and carry it
        across continue-as-new."""
        undo = ToolInvocation(
            tool=compensation, arguments=arguments, idempotency_key=f"{call.idempotency_key}:undo"
        )
        self.compensations.append(undo)
        self._register_undo(undo)
        return undo

    def _register_undo(self, undo: ToolInvocation) -> None:
        record_id = undo.integer("record_id")
        target = undo.arguments.get("key")
        self.saga.register(
            f"{undo.tool} {target or record_id}",
            ToolActivities.call,
            undo,
            action=undo.tool,
            record_id=record_id,
        )
