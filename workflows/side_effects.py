"""At-most-once side effects in a workflow: recorded before sent, never sent twice.

A side-effect tool without an idempotency key is sent on one attempt
(AT_MOST_ONCE_RETRY). The call is recorded in the run's state before its activity
is scheduled, so a replay after a crash knows it was sent. When the attempt's
outcome is lost (the worker was killed mid-call, the call timed out, the tool broke
in a way that says nothing about whether it acted), the run waits in
`needs_reconciliation` - a search attribute, the progress query, the Web UI's
current details - until an operator answers with `client.py reconcile`. Failures
raised before the tool is reached (bad arguments, an open breaker) are not
ambiguous: the agent reads them as it reads any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.tools.activities import ToolActivities
    from keel.graphs.policies import COMPENSATION_RETRY, HEARTBEAT_TIMEOUT, TOOL_TIMEOUT
    from keel.payloads.errors import (
        ACCESS_DENIED,
        CIRCUIT_OPEN,
        PYTHON_TOOL_UNAVAILABLE,
        TOOL_ARGUMENTS_INVALID,
        TOOL_CALL_REJECTED,
        TOOL_RESULT_INVALID,
        TOOL_RESULT_TOO_LARGE,
        UNKNOWN_TOOL,
    )
    from keel.payloads.side_effects import (
        Reconciliation,
        Resolution,
        SideEffectCall,
        reconcile_refusal,
    )
    from keel.payloads.tools import ToolInvocation, ToolOutcome
    from workflows.live import LiveChannel
    from workflows.saga import Saga
    from workflows.search_attributes import RESEARCH_STATUS

# Runs recorded before this patch sent every side effect with the tools' retries.
AT_MOST_ONCE_PATCH = "side-effects-at-most-once"
NEEDS_RECONCILIATION: Final[Literal["needs_reconciliation"]] = "needs_reconciliation"
# Raised before the tool acted (refused, or the server turned the call down): not sent.
NOT_SENT = frozenset(
    {
        UNKNOWN_TOOL,
        ACCESS_DENIED,
        TOOL_ARGUMENTS_INVALID,
        CIRCUIT_OPEN,
        PYTHON_TOOL_UNAVAILABLE,
        TOOL_CALL_REJECTED,
    }
)
# The tool answered, with a result keel refuses: it acted.
ANSWERED = frozenset({TOOL_RESULT_INVALID, TOOL_RESULT_TOO_LARGE})

Send = Callable[[], Awaitable[ToolOutcome]]


class SideEffects:
    """The run's at-most-once calls; construct it in `@workflow.init` (carried calls)."""

    def __init__(
        self,
        carried: list[SideEffectCall],
        live: LiveChannel,
        saga: Saga,
        compensations: list[ToolInvocation],
    ) -> None:
        """`saga` and `compensations` are the run's: an undo at the operator's word is
        taken off both, so neither the unwind nor the next run undoes it again."""
        self.calls = list(carried)
        self._live = live
        self._saga = saga
        self._compensations = compensations
        self._answer: Reconciliation | None = None

    @property
    def waiting(self) -> SideEffectCall | None:
        """The call waiting for an operator now, if any."""
        return next((c for c in self.calls if c.status == NEEDS_RECONCILIATION), None)

    async def send(
        self, call: ToolInvocation, turn: int, send: Send, undo: ToolInvocation, summary: str
    ) -> ToolOutcome:
        """Send `call` once; after an ambiguous outcome, do what the operator says."""
        record = SideEffectCall(
            call=len(self.calls) + 1,
            tool=call.tool,
            arguments=dict(call.arguments),
            key=call.idempotency_key,
            turn=turn,
        )
        self.calls.append(record)
        while True:
            try:
                result = await send()
            except ActivityError as error:
                kind = _kind(error)
                if is_cancelled_exception(error) or kind in NOT_SENT or kind in ANSWERED:
                    # Cancelled: the saga's unwind undoes it. Refused: it never left.
                    record.status = "done" if kind in ANSWERED else "failed"
                    record.error = _reason(error)
                    raise
                record.error = _reason(error)
                resolution = await self._reconcile(record)
            else:
                record.status = "done"
                return result
            if resolution == "done":
                record.status = "done"
                return ToolOutcome(
                    tool=call.tool, text=f"call {record.call}: its outcome was lost; {_by(record)}"
                    " confirmed it took effect",
                )  # fmt: skip
            if resolution == "undo":
                await self._undo(undo, summary)
                record.status = "undone"
                return ToolOutcome(
                    tool=call.tool, is_error=True,
                    text=f"call {record.call}: outcome lost; undone at {_by(record)}'s word",
                )  # fmt: skip
            record.attempts += 1
            record.status = "in_flight"
            self._live.step(f"call {record.call} ({call.tool}) sent again at {_by(record)}'s word")

    async def _undo(self, undo: ToolInvocation, summary: str) -> None:
        """The call's compensation, now, retried until it is done (as in the unwind)."""
        await workflow.execute_activity_method(
            ToolActivities.call, undo, start_to_close_timeout=TOOL_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT, retry_policy=COMPENSATION_RETRY,
            summary=f"undo {summary}"[:200],
        )  # fmt: skip
        self._saga.settle(undo.tool, undo.idempotency_key)
        self._compensations.remove(undo)

    async def _reconcile(self, record: SideEffectCall) -> Resolution:
        """Waits, without a deadline, for `client.py reconcile` on this call."""
        record.status = NEEDS_RECONCILIATION
        self._answer = None
        run = workflow.info().workflow_id
        command = f"client.py reconcile {run} --call {record.call} done|retry|undo"
        self._live.step(f"call {record.call} ({record.tool}) outcome unknown: {command}")
        workflow.upsert_search_attributes([RESEARCH_STATUS.value_set(NEEDS_RECONCILIATION)])
        workflow.set_current_details(
            f"**needs reconciliation**: call {record.call} `{record.tool}`"
            f" (turn {record.turn}, key `{record.key}`) may or may not have taken effect"
            f" ({record.error[:200]}).\n\nResolve with `{command}`"
        )
        workflow.logger.warning("call %d (%s) needs reconciliation", record.call, record.tool)
        await workflow.wait_condition(lambda: self._answer is not None)
        answer = self._answer
        assert answer is not None
        record.resolutions.append(answer.resolution)
        record.by = answer.by
        workflow.upsert_search_attributes([RESEARCH_STATUS.value_unset()])
        workflow.set_current_details("")
        return answer.resolution

    def check(self, decision: Reconciliation) -> None:
        """The update's validator: a refused reconciliation is one line, nothing changes."""
        reason = reconcile_refusal(self.calls, decision)
        if reason is not None:
            raise ValueError(reason)

    def resolve(self, decision: Reconciliation) -> SideEffectCall:
        """The update's handler: the waiting call takes the operator's word."""
        waiting = self.waiting
        assert waiting is not None
        assert waiting.call == decision.call
        self._answer = decision
        return waiting.model_copy()


def _kind(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def _reason(error: ActivityError) -> str:
    cause = error.cause
    return f"{type(cause).__name__}: {cause}"[:300] if cause else str(error)[:300]


def _by(record: SideEffectCall) -> str:
    return record.by or "an operator"
