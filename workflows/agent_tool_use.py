"""One tool turn of an agent: route the proposal, wait for approval, call, observe.

The ToolRouter allows or refuses each proposal with a recorded reason; an open
breaker sends it to the next candidate. What the agent saw (observations), what it
was allowed (decisions) and how often it called each tool are kept here, and carried
across continue-as-new by the workflow.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from keel.payloads.agents import AgentCarry, AgentInput, AgentProgress, AgentTurn, Observation
    from keel.payloads.contracts import AgentSpec, ContractSnapshot
    from keel.payloads.errors import (
        ACCESS_DENIED,
        CIRCUIT_OPEN,
        PASSAGE_NOT_FOUND,
        TICKET_REJECTED,
        TOOL_ARGUMENTS_INVALID,
        TOOL_CALL_REJECTED,
        UNKNOWN_TOOL,
    )
    from keel.payloads.flags import Flag, Flags
    from keel.payloads.llm import Usage
    from keel.payloads.tool_specs import ToolSpec
    from keel.payloads.tools import ToolInvocation
    from keel.routing.tools import route_tool
    from workflows.agent_approvals import CallApprovals
    from workflows.agent_tool_calls import ToolCalls
    from workflows.live import LiveChannel
    from workflows.live_steps import tool_step
    from workflows.model_calls import ModelCaller
    from workflows.saga import UNDO_BEFORE_CALL

OBSERVATION_CHARS = 400
# An answer the agent can learn from (bad arguments, a refused namespace), not a crash.
TOOL_ANSWERS = frozenset(
    {
        TOOL_ARGUMENTS_INVALID,
        ACCESS_DENIED,
        UNKNOWN_TOOL,
        TICKET_REJECTED,
        PASSAGE_NOT_FOUND,
        TOOL_CALL_REJECTED,
    }
)


class ToolUse:
    """An agent's tool turns, and what they left: observations, decisions, call counts."""

    def __init__(
        self,
        request: AgentInput,
        carry: AgentCarry,
        progress: AgentProgress,
        flags: Flags,
        live: LiveChannel,
    ) -> None:
        self.observations = list(carry.observations)
        self.tool_calls = dict(carry.tool_calls)
        self.decisions = list(carry.decisions)
        self.calls = ToolCalls(carry, request.recorded, live)
        self.approvals = CallApprovals(carry.approvals, progress)
        self._request = request
        self._progress = progress
        self._flags = flags
        self._live = live
        self._open_breakers: set[str] = set()

    async def use(
        self,
        proposal: AgentTurn,
        spec: AgentSpec,
        contracts: ContractSnapshot,
        model: ModelCaller,
        turn: int,
    ) -> None:
        """Route, call, observe. An open breaker sends the router to the next candidate.

        Breakers are asked afresh each turn (an open one refuses at once, without
        touching the tool), so a tool whose breaker closes again is used again.
        """
        self._open_breakers.clear()
        for _ in range(len(spec.tools) + 1):
            decision = route_tool(
                proposal.tool,
                spec,
                contracts.tools,
                calls=self.tool_calls,
                cost_left_usd=model.cost_left(),
                open_breakers=self._open_breakers,
                turn=turn,
                clearance=self._request.clearance,
            )
            self.decisions.append(decision)
            if not decision.allowed or decision.tool is None:
                self._progress.refusals += 1
                workflow.logger.warning("tool refused: %s", decision.reason)
                self.observe(turn, proposal.tool, f"refused: {decision.reason}", refused=True)
                tool_step(self._live, proposal.tool, False, decision.reason)
                return
            if not await self._call(decision.tool, proposal, contracts, model, turn):
                return

    async def _call(
        self,
        tool: str,
        proposal: AgentTurn,
        contracts: ContractSnapshot,
        model: ModelCaller,
        turn: int,
    ) -> bool:
        """One allowed call; True when its breaker is open and the next candidate may serve."""
        call = ToolInvocation(
            tool=tool,
            arguments=proposal.arguments,
            idempotency_key=f"{workflow.info().workflow_id}:turn-{turn}:{tool}",
            namespaces=self._request.namespaces,
            clearance=self._request.clearance,
        )
        args = ", ".join(f"{k}={v}" for k, v in proposal.arguments.items())
        tool_step(self._live, tool, True, args)
        spec = contracts.tools[tool]
        if spec.approval and not await self._approved(call, spec, turn):
            return False
        undo_first = (
            spec.side_effect
            and spec.compensation is not None
            and workflow.patched(UNDO_BEFORE_CALL)
        )
        undo = None
        if undo_first:
            # Known before the call, by its key: a cancel or a crash while the call is
            # in flight undoes it if it landed and keeps it from landing if not.
            assert spec.compensation is not None
            undo = self.calls.remember_undo(spec.compensation, call, {"key": call.idempotency_key})
        try:
            result = await self.calls.send(call, f"{tool}({args}) turn {turn}", spec, undo, turn)
        except ActivityError as error:
            return self._failed(tool, error, contracts, model, turn)
        self._count(tool, contracts, model)
        if (
            not undo_first
            and spec.side_effect
            and spec.compensation
            and result.record_id is not None
        ):
            self.calls.remember_undo(spec.compensation, call, {"record_id": result.record_id})
        # The tool's own error (MCP isError) is an answer: the agent reads it and decides.
        text = f"the tool reported an error: {result.text}" if result.is_error else None
        self.observe(turn, tool, text or result.text, result.passage_ids)
        return False

    def _failed(
        self,
        tool: str,
        error: ActivityError,
        contracts: ContractSnapshot,
        model: ModelCaller,
        turn: int,
    ) -> bool:
        """Observes a failed call; True when its breaker is open and another tool may serve."""
        if is_cancelled_exception(error):
            raise error  # the run is cancelled: its side effects are undone, not observed
        cause = error.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        if kind == CIRCUIT_OPEN:
            self._open_breakers.add(tool)
            return True
        # A refusal, or a failure its retries could not fix: the agent sees it
        # and decides; the run goes on, flagged.
        self._count(tool, contracts, model)
        if kind not in TOOL_ANSWERS:
            self._flags.add(Flag.TOOL_FAILED)
            workflow.logger.warning("tool %s failed after retries: %s", tool, cause)
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        self.observe(turn, tool, f"error: {message}")
        return False

    async def _approved(self, call: ToolInvocation, spec: ToolSpec, turn: int) -> bool:
        """Waits for a person's decision on this exact call (workflows/agent_approvals.py)."""
        decided = await self.approvals.wait(call, spec, turn, self._live)
        if decided.decision == "reject":
            who = decided.by or "its deadline"
            text = f"refused: not approved by {who} ({decided.reason})"
            self.observe(turn, call.tool, text, refused=True)
            tool_step(self._live, call.tool, False, f"not approved by {who}")
        return decided.decision == "approve"

    def _count(self, tool: str, contracts: ContractSnapshot, model: ModelCaller) -> None:
        self.tool_calls[tool] = self.tool_calls.get(tool, 0) + 1
        cost = contracts.tools[tool].cost_usd
        if cost:
            model.spend(Usage(cost_usd=cost))

    def observe(
        self,
        turn: int,
        tool: str,
        text: str,
        passage_ids: list[str] | None = None,
        *,
        refused: bool = False,
    ) -> None:
        self.observations.append(
            Observation(
                turn=turn,
                tool=tool,
                text=text[:OBSERVATION_CHARS],
                passage_ids=passage_ids or [],
                refused=refused,
            )
        )
