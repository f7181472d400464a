"""A person's say on the team's report: approve, reject, or notes for another round.

The coordinator's `decide` and `feedback` updates hand their payloads here; the
approval node waits on them, and no answer in time takes the contract's default.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.payloads.coordinator import CoordinatorInput, CoordinatorProgress, HumanFeedback
    from keel.payloads.flags import Flag, Flags
    from keel.payloads.tickets import ApprovalDecision


class TeamApproval:
    """The decision and notes that came in, and whether the run may take them now."""

    def __init__(self) -> None:
        self.decision: ApprovalDecision | None = None
        self.notes: list[HumanFeedback] = []

    def check_decision(self, progress: CoordinatorProgress) -> None:
        if progress.stage != "awaiting_approval":
            raise ValueError(f"not awaiting approval: the coordinator is {progress.stage}")

    def check_notes(self, progress: CoordinatorProgress, max_rounds: int) -> None:
        if progress.stage != "awaiting_approval" or self.notes:
            raise ValueError(f"not awaiting feedback: the coordinator is {progress.stage}")
        human = sum(1 for r in progress.rounds if r.trigger == "human")
        if human >= max_rounds:
            raise ValueError(f"feedback limit reached ({max_rounds} rounds)")

    async def wait(
        self, request: CoordinatorInput, progress: CoordinatorProgress, flags: Flags
    ) -> HumanFeedback | None:
        """A person's notes, or None once decided (in time, or by the default)."""
        self.decision = None
        try:
            await workflow.wait_condition(
                lambda: self.decision is not None or bool(self.notes),
                timeout=timedelta(seconds=request.approval_timeout_seconds),
                timeout_summary="approval deadline",
            )
        except TimeoutError:
            self.decision = ApprovalDecision(
                decision=request.approval_default, by="timeout", reason="no decision in time"
            )
            flags.add(Flag.APPROVAL_TIMED_OUT)
        if self.notes:
            return self.notes.pop(0)
        assert self.decision is not None
        progress.decision = self.decision.decision
        if self.decision.decision == "reject":
            flags.add(Flag.REJECTED)
        return None
