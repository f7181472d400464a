"""Tool calls that wait for a person: bound to their exact arguments, decided once.

A tool whose contract says `approval = true` does not run until a person answers
`approve_call` for that call's number and argument digest (keel/payloads/approvals.py
holds the rules); no answer by the contract's deadline takes its default.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.payloads.agents import AgentProgress
    from keel.payloads.approvals import CallDecision, DecidedCall, PendingCall, call_digest, refusal
    from keel.payloads.tool_specs import ToolSpec
    from keel.payloads.tools import ToolInvocation
    from workflows.live import LiveChannel
    from workflows.search_attributes import RESEARCH_STATUS


class CallApprovals:
    """The call waiting now, the answer to it, and every call decided so far."""

    def __init__(self, decided: list[DecidedCall], progress: AgentProgress) -> None:
        self.decided = list(decided)
        self._progress = progress
        self._pending: PendingCall | None = None
        self._answer: CallDecision | None = None

    async def wait(
        self, call: ToolInvocation, spec: ToolSpec, turn: int, live: LiveChannel
    ) -> DecidedCall:
        """Waits for a person's decision on this exact call, or its deadline's default."""
        number = len(self.decided) + 1
        pending = PendingCall(
            call=number,
            tool=call.tool,
            arguments=dict(call.arguments),
            digest=call_digest(call.tool, call.arguments),
            turn=turn,
            deadline=workflow.now() + timedelta(seconds=spec.approval_timeout_seconds),
            default=spec.approval_default,
        )
        self._pending = self._progress.pending_approval = pending
        self._answer = None
        live.step(f"call {number} ({call.tool}) awaits approval: client.py approvals")
        workflow.upsert_search_attributes([RESEARCH_STATUS.value_set("awaiting_approval")])
        try:
            await workflow.wait_condition(
                lambda: self._answer is not None,
                timeout=timedelta(seconds=spec.approval_timeout_seconds),
                timeout_summary=f"approval of call {number} ({call.tool})",
            )
        except TimeoutError:
            self._answer = CallDecision(
                call=number, digest=pending.digest, decision=spec.approval_default,
                reason="no decision in time",
            )  # fmt: skip
        answer = self._answer
        assert answer is not None
        decided = DecidedCall(
            call=number, tool=call.tool, digest=pending.digest, decision=answer.decision,
            by=answer.by, reason=answer.reason,
        )  # fmt: skip
        self.decided.append(decided)
        self._progress.approvals = list(self.decided)
        self._pending = self._progress.pending_approval = None
        workflow.upsert_search_attributes([RESEARCH_STATUS.value_unset()])
        return decided

    def check(self, decision: CallDecision) -> None:
        """The `approve_call` validator: refused unless it answers the call waiting now."""
        reason = refusal(self._pending, self.decided, decision)
        if reason is not None:
            raise ValueError(reason)

    def answer(self, decision: CallDecision) -> PendingCall:
        assert self._pending is not None
        self._answer = decision
        return self._pending
