"""AgentWorkflow: one agent from contracts/agents.toml, in a tool-calling loop.

Each turn the model proposes a tool call; the ToolRouter allows it or refuses it
with a recorded reason; an allowed call runs as an activity and its short
observation feeds the next turn. Side effects register their compensation and
are undone in reverse if the agent fails or is cancelled. Long conversations
continue as new before the history nears Temporal's limits; passages travel by
id, so the history holds references rather than documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.tools.activities import ToolActivities
    from keel.graphs.policies import (
        AT_MOST_ONCE_RETRY,
        HEARTBEAT_TIMEOUT,
        LLM_RETRY,
        LLM_TIMEOUT,
        TOOL_RETRY,
        TOOL_TIMEOUT,
    )
    from keel.payloads.agents import (
        FINISH,
        AgentCarry,
        AgentInput,
        AgentMessage,
        AgentProgress,
        AgentResult,
        AgentTurn,
        MessageOutcome,
        Observation,
    )
    from keel.payloads.approvals import CallDecision, DecidedCall, PendingCall, call_digest, refusal
    from keel.payloads.contracts import AgentSpec, ContractSnapshot, ToolSpec
    from keel.payloads.errors import (
        ACCESS_DENIED,
        CIRCUIT_OPEN,
        PASSAGE_NOT_FOUND,
        TICKET_REJECTED,
        TOOL_ARGUMENTS_INVALID,
        TOOL_CALL_REJECTED,
        UNKNOWN_AGENT,
        UNKNOWN_TOOL,
    )
    from keel.payloads.flags import Flag
    from keel.payloads.llm import Usage
    from keel.payloads.outputs import OUTPUT_MODELS
    from keel.payloads.side_effects import Reconciliation, SideEffectCall
    from keel.payloads.tools import ToolInvocation, ToolOutcome
    from keel.routing.tools import route_tool
    from workflows.agent_messages import (
        JOINED_PATCH,
        LEGACY,
        MESSAGES_PATCH,
        Inbox,
        step_line,
    )
    from workflows.contract_snapshot import load_contracts
    from workflows.live import LiveChannel
    from workflows.live_steps import tool_step
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.recorded import Recorded, outcome
    from workflows.saga import UNDO_BEFORE_CALL, Saga
    from workflows.search_attributes import RESEARCH_STATUS
    from workflows.side_effects import AT_MOST_ONCE_PATCH, SideEffects

M = TypeVar("M", bound=BaseModel)

OBSERVATION_CHARS = 400
PROMPT_OBSERVATIONS = 6
CARRIED_OBSERVATIONS = 20
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


@workflow.defn(name="AgentWorkflow")
class AgentWorkflow:
    @workflow.init
    def __init__(self, request: AgentInput) -> None:
        carry = request.carry
        self._input = request
        self._carry = carry
        self._turns = carry.turns
        self._observations = list(carry.observations)
        self._tool_calls = dict(carry.tool_calls)
        self._decisions = list(carry.decisions)
        self._compensations = list(carry.compensations)
        self._open_breakers: set[str] = set()
        self._flags: list[str] = list(carry.flags)
        self._progress = AgentProgress(agent=request.agent, turn=carry.turns, runs=carry.runs)
        self._model: ModelCaller | None = None
        self._saga = Saga(TOOL_TIMEOUT)
        self._live = LiveChannel(carry.live)
        self._recorded = Recorded(request.recorded)
        # Calls that waited for a person: the one waiting now, its answer, and the decided.
        self._pending: PendingCall | None = None
        self._answer: CallDecision | None = None
        self._approvals = list(carry.approvals)
        # Messages sent while the run works (workflows/agent_messages.py).
        self._inbox = Inbox(carry)
        self._task = carry.task or request.task
        self._turn_base = carry.turn_base
        self._spec: AgentSpec | None = None
        self._legacy = False
        self._current: asyncio.Future[BaseModel | None] | None = None
        # The request's answer once given, and the message answered after it now.
        self._answer_so_far: dict[str, Any] | None = None
        self._following: list[str] = []
        # Interrupting messages merged into the first request, answered with it.
        self._joined: list[str] = []
        # send_message handlers still waiting for the run to read its contract.
        self._sending = 0
        # At-most-once calls, recorded before sent (workflows/side_effects.py).
        self._effects = SideEffects(carry.side_effects, self._live, self._saga, self._compensations)
        for undo in self._compensations:
            self._register_undo(undo)

    @workflow.query(name="progress")
    def progress(self) -> AgentProgress:
        self._progress.turn = self._turns
        self._progress.tool_calls = dict(self._tool_calls)
        self._progress.usage = self._usage()
        self._progress.side_effects = list(self._effects.calls)
        self._progress.needs_reconciliation = self._effects.waiting
        return self._progress

    @workflow.run
    async def run(self, request: AgentInput) -> AgentResult:
        try:
            result = await self._run(request)
        except (Exception, asyncio.CancelledError) as error:
            self._progress.status = "cancelled" if is_cancelled_exception(error) else "failed"
            if self._compensations:
                self._live.step(f"compensating {len(self._compensations)} side effect(s)")
                await self._saga.compensate()
            self._live.release()
            raise
        self._progress.status = "done"
        await self._live.close()
        return result

    async def _run(self, request: AgentInput) -> AgentResult:
        contracts = await load_contracts(self._recorded)
        spec = contracts.agents.get(request.agent)
        if spec is None:
            raise ApplicationError(
                f"no agent {request.agent!r} in agents.toml", type=UNKNOWN_AGENT, non_retryable=True
            )
        chain = request.models or spec.chain
        self._model = ModelCaller(
            chain[0],
            request.llm_task_queue,
            request.max_reasks,
            request.budget.for_child(self._carry.usage),
            chain[1:],
            call_offset=request.round - 1,
            live=self._live,
            stream_tokens=request.stream_tokens,
            recorded=self._recorded,
        )
        max_turns = request.max_turns or spec.max_turns
        if spec.seed_tool and self._carry.runs == 1 and self._turns == 0:
            # Turn 0, no model: the task itself as the query, through the router as usual.
            seed = AgentTurn(
                thought="search the task first",
                tool=spec.seed_tool,
                arguments={"query": request.task[:120]},
            )
            await self._use_tool(seed, spec, contracts)
        if workflow.patched(MESSAGES_PATCH):
            self._spec = spec
            return self._result(spec, await self._converse(spec, contracts, max_turns))
        self._legacy = True
        return self._result(spec, await self._respond(spec, contracts, max_turns))

    async def _respond(
        self, spec: AgentSpec, contracts: ContractSnapshot, max_turns: int
    ) -> BaseModel | None:
        """One request (`self._task`) answered: the tool loop, then the final answer."""
        request = self._input
        while spec.tools and self._turns < self._turn_base + max_turns:
            if self._turns > self._carry.turns and self._history_is_long():
                await self._live.close()
                # Pinned to its build while it runs; the next run starts on the current one.
                workflow.continue_as_new(
                    self._continued(request),
                    initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
                )
            self._turns += 1
            # Any tool of the contract, so a grammar keeps a small model to real names; the
            # ToolRouter then decides which of them this role may use.
            known = {"AgentTurn.tool": [*contracts.tools, FINISH]}
            proposal = await self._ask(spec.turn_prompt or "", AgentTurn, spec, contracts, known)
            if proposal is None:
                if "budget_exhausted" not in self._flags:
                    self._flag("turn_schema_failure")
                break
            if proposal.tool == FINISH:
                break
            await self._use_tool(proposal, spec, contracts)
        else:
            if spec.tools:
                self._flag("max_turns_reached")
        return await self._ask(
            spec.final_prompt, OUTPUT_MODELS[spec.output_schema], spec, contracts, request.choices
        )

    def _result(self, spec: AgentSpec, output: BaseModel | dict[str, Any] | None) -> AgentResult:
        assert self._model is not None
        request = self._input
        return AgentResult(
            agent=request.agent,
            role=spec.role,
            output_schema=spec.output_schema,
            output=output if isinstance(output, dict) else self._checked(output),
            turns=self._turns,
            runs=self._carry.runs,
            observations=self._observations,
            decisions=self._decisions,
            usage=self._usage(),
            fallbacks=[*self._carry.fallbacks, *self._model.fallbacks],
            prompts={**self._carry.prompts, **self._model.prompts},
            flags=self._flags,
            approvals=self._approvals,
            messages=self._inbox.outcomes(),
            side_effects=self._effects.calls,
        )

    # --- messages ----------------------------------------------------------------------

    async def _converse(
        self, spec: AgentSpec, contracts: ContractSnapshot, max_turns: int
    ) -> dict[str, Any] | None:
        """The request, then each queued message in order; done when none is left.

        The run does not end while a message waits: it stops taking new ones
        (the validator refuses), lets accepted updates finish, and looks again.
        """
        if self._carry.answered:
            answer = self._carry.answer
        else:
            # A continued run goes on with the messages the request took in before it.
            self._joined = list(self._carry.joined)
            first = await self._interruptible(spec, contracts, max_turns, self._joined)
            self._joined = []
            answer = self._checked(first)
        self._answer_so_far = answer
        while True:
            queued = self._inbox.next_message()
            if queued is None:
                self._inbox.closing = True
                # Only the message handlers: a watcher's poll of the live channel stays
                # open until the channel closes, so waiting for every handler would hang.
                await workflow.wait_condition(lambda: self._sending == 0)
                if not self._inbox.waiting():
                    return answer
                self._inbox.closing = False
                continue
            self._task = queued.text
            self._turn_base = self._turns
            self._live.step(f"answering message {queued.id}")
            self._following = [queued.id]
            followed = await self._interruptible(spec, contracts, max_turns, self._following)
            self._following = []
            self._inbox.answered([queued.id], self._checked(followed))

    async def _interruptible(
        self, spec: AgentSpec, contracts: ContractSnapshot, max_turns: int, ids: list[str]
    ) -> BaseModel | None:
        """One request; an interrupting message cancels its model and tool calls and
        starts it again with the message added. `ids` get the answer."""
        while True:
            self._current = asyncio.ensure_future(self._respond(spec, contracts, max_turns))
            try:
                output = await self._current
            except (Exception, asyncio.CancelledError) as error:
                interrupts = self._inbox.take_interrupts() if is_cancelled_exception(error) else []
                if not interrupts:
                    raise
                self._task += "".join(f"\n\nNew message: {m.text}" for m in interrupts)
                self._turn_base = self._turns
                ids.extend(m.id for m in interrupts)
                self._flag("interrupted")
                self._live.step(f"restarting with message {interrupts[-1].id}")
                continue
            finally:
                self._current = None
            if ids:
                self._inbox.answered(ids, self._checked(output) if output else None)
            return output

    @workflow.update(name="send_message")
    async def send_message(self, message: AgentMessage) -> MessageOutcome:
        """A message to the running agent; its contract's `on_message` decides."""
        self._sending += 1
        try:
            await workflow.wait_condition(lambda: self._spec is not None or self._legacy)
        finally:
            self._sending -= 1
        if self._spec is None:
            raise ApplicationError(LEGACY, type="MessageRefused", non_retryable=True)
        outcome, new = self._inbox.receive(message, self._spec.on_message, self._input.agent)
        if new:
            self._live.step(step_line(outcome))
            # A call waiting for reconciliation is not abandoned: the message is answered next.
            waiting = self._effects.waiting is not None
            if (
                outcome.status == "interrupted"
                and self._current
                and not self._current.done()
                and not waiting
            ):
                self._current.cancel()
        return outcome

    @send_message.validator
    def _validate_message(self, message: AgentMessage) -> None:
        self._inbox.check(message)

    # --- the loop ----------------------------------------------------------------------

    async def _use_tool(
        self, proposal: AgentTurn, spec: AgentSpec, contracts: ContractSnapshot
    ) -> None:
        """Route, call, observe. An open breaker sends the router to the next candidate.

        Breakers are asked afresh each turn (an open one refuses at once, without
        touching the tool), so a tool whose breaker closes again is used again.
        """
        assert self._model is not None
        self._open_breakers.clear()
        for _ in range(len(spec.tools) + 1):
            decision = route_tool(
                proposal.tool,
                spec,
                contracts.tools,
                calls=self._tool_calls,
                cost_left_usd=self._model.cost_left(),
                open_breakers=self._open_breakers,
                turn=self._turns,
                clearance=self._input.clearance,
            )
            self._decisions.append(decision)
            if not decision.allowed or decision.tool is None:
                self._progress.refusals += 1
                workflow.logger.warning("tool refused: %s", decision.reason)
                self._observe(proposal.tool, f"refused: {decision.reason}", refused=True)
                tool_step(self._live, proposal.tool, False, decision.reason)
                return
            tool = decision.tool
            call = ToolInvocation(
                tool=tool,
                arguments=proposal.arguments,
                idempotency_key=f"{workflow.info().workflow_id}:turn-{self._turns}:{tool}",
                namespaces=self._input.namespaces,
                clearance=self._input.clearance,
            )
            args = ", ".join(f"{k}={v}" for k, v in proposal.arguments.items())
            tool_step(self._live, tool, True, args)
            tool_spec = contracts.tools[tool]
            if tool_spec.approval and not await self._approved(call, tool_spec):
                return
            undo_first = (
                tool_spec.side_effect
                and tool_spec.compensation is not None
                and workflow.patched(UNDO_BEFORE_CALL)
            )
            undo = None
            if undo_first:
                # Known before the call, by its key: a cancel or a crash while the call is
                # in flight undoes it if it landed and keeps it from landing if not.
                assert tool_spec.compensation is not None
                undo = self._remember_undo(
                    tool_spec.compensation, call, {"key": call.idempotency_key}
                )
            try:
                result = await self._send(
                    call, f"{tool}({args}) turn {self._turns}", tool_spec, undo
                )
            except ActivityError as error:
                if self._tool_failed(tool, error, contracts):
                    continue
                return
            self._count(tool, contracts)
            if (
                not undo_first
                and tool_spec.side_effect
                and tool_spec.compensation
                and result.record_id is not None
            ):
                self._remember_undo(tool_spec.compensation, call, {"record_id": result.record_id})
            # The tool's own error (MCP isError) is an answer: the agent reads it and decides.
            text = f"the tool reported an error: {result.text}" if result.is_error else None
            self._observe(tool, text or result.text, result.passage_ids)
            return

    def _tool_failed(self, tool: str, error: ActivityError, contracts: ContractSnapshot) -> bool:
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
        self._count(tool, contracts)
        if kind not in TOOL_ANSWERS:
            self._flag("tool_failed")
            workflow.logger.warning("tool %s failed after retries: %s", tool, cause)
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        self._observe(tool, f"error: {message}")
        return False

    # --- approvals ---------------------------------------------------------------------

    async def _approved(self, call: ToolInvocation, spec: ToolSpec) -> bool:
        """Waits for a person's decision on this exact call (keel/payloads/approvals.py)."""
        number = len(self._approvals) + 1
        pending = PendingCall(
            call=number,
            tool=call.tool,
            arguments=dict(call.arguments),
            digest=call_digest(call.tool, call.arguments),
            turn=self._turns,
            deadline=workflow.now() + timedelta(seconds=spec.approval_timeout_seconds),
            default=spec.approval_default,
        )
        self._pending = self._progress.pending_approval = pending
        self._answer = None
        self._live.step(f"call {number} ({call.tool}) awaits approval: client.py approvals")
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
        self._approvals.append(decided)
        self._progress.approvals = list(self._approvals)
        self._pending = self._progress.pending_approval = None
        workflow.upsert_search_attributes([RESEARCH_STATUS.value_unset()])
        if decided.decision == "reject":
            who = decided.by or "its deadline"
            self._observe(
                call.tool, f"refused: not approved by {who} ({decided.reason})", refused=True
            )
            tool_step(self._live, call.tool, False, f"not approved by {who}")
        return decided.decision == "approve"

    @workflow.update(name="approve_call")
    def approve_call(self, decision: CallDecision) -> PendingCall:
        """A person's decision on the call waiting now; the validator holds the rules."""
        assert self._pending is not None
        self._answer = decision
        return self._pending

    @approve_call.validator
    def _validate_call_decision(self, decision: CallDecision) -> None:
        reason = refusal(self._pending, self._approvals, decision)
        if reason is not None:
            raise ValueError(reason)

    async def _call_tool(
        self,
        call: ToolInvocation,
        summary: str,
        timeout_seconds: float,
        retry: RetryPolicy = TOOL_RETRY,
    ) -> ToolOutcome:
        recorded = self._recorded.take("call_tool", summary)
        if recorded is not None:
            return outcome(recorded, ToolOutcome)
        return await workflow.execute_activity_method(
            ToolActivities.call,
            call,
            # The contract's limit per attempt (20 s unless it says otherwise).
            start_to_close_timeout=timedelta(seconds=timeout_seconds),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry,
            summary=summary,
        )

    async def _send(
        self, call: ToolInvocation, summary: str, spec: ToolSpec, undo: ToolInvocation | None
    ) -> ToolOutcome:
        """A side effect without a key gets one attempt, and a lost outcome waits for an
        operator (workflows/side_effects.py); any other call is retried as tools are."""
        summary = summary[:200]
        if undo is not None and spec.at_most_once and workflow.patched(AT_MOST_ONCE_PATCH):

            def send() -> Awaitable[ToolOutcome]:
                return self._call_tool(call, summary, spec.timeout_seconds, AT_MOST_ONCE_RETRY)

            return await self._effects.send(call, self._turns, send, undo, summary)
        return await self._call_tool(call, summary, spec.timeout_seconds)

    @workflow.update(name="reconcile_call")
    def reconcile_call(self, decision: Reconciliation) -> SideEffectCall:
        """An operator's word on a call whose outcome was lost (`client.py reconcile`)."""
        return self._effects.resolve(decision)

    @reconcile_call.validator
    def _validate_reconciliation(self, decision: Reconciliation) -> None:
        self._effects.check(decision)

    def _count(self, tool: str, contracts: ContractSnapshot) -> None:
        assert self._model is not None
        self._tool_calls[tool] = self._tool_calls.get(tool, 0) + 1
        cost = contracts.tools[tool].cost_usd
        if cost:
            self._model.spend(Usage(cost_usd=cost))

    def _remember_undo(
        self, compensation: str, call: ToolInvocation, arguments: dict[str, Any]
    ) -> ToolInvocation:
        """Register the call's undo now (under the call's key plus `:undo`) and carry it
        across continue-as-new."""
        undo = ToolInvocation(
            tool=compensation, arguments=arguments, idempotency_key=f"{call.idempotency_key}:undo"
        )
        self._compensations.append(undo)
        self._register_undo(undo)
        return undo

    def _register_undo(self, undo: ToolInvocation) -> None:
        record_id = undo.integer("record_id")
        target = undo.arguments.get("key")
        self._saga.register(
            f"{undo.tool} {target or record_id}",
            ToolActivities.call,
            undo,
            action=undo.tool,
            record_id=record_id,
        )

    def _observe(
        self, tool: str, text: str, passage_ids: list[str] | None = None, *, refused: bool = False
    ) -> None:
        self._observations.append(
            Observation(
                turn=self._turns,
                tool=tool,
                text=text[:OBSERVATION_CHARS],
                passage_ids=passage_ids or [],
                refused=refused,
            )
        )

    async def _ask(
        self,
        prompt: str,
        output: type[M],
        spec: AgentSpec,
        contracts: ContractSnapshot,
        choices: dict[str, list[str]],
    ) -> M | None:
        assert self._model is not None
        request = self._input
        variables = {
            "task": self._task,
            "context": request.context or "(none)",
            "feedback": f"\nFeedback on the last version: {request.feedback}\n"
            if request.feedback
            else "",
            "tools": "\n".join(
                f"- {name}: {contracts.tools[name].description}"
                f" Call with: {_arguments_example(contracts.tools[name].arguments)}"
                for name in spec.tools
            )
            or "(none)",
            "observations": self._rendered_observations(),
            "passages": "(no passages)",
            **request.variables,
        }
        try:
            return await self._model.ask(
                prompt,
                output,
                variables,
                max_tokens=spec.max_tokens,
                start_to_close=LLM_TIMEOUT,
                retry=LLM_RETRY,
                passage_ids=request.passage_ids,
                choices=choices,
            )
        except BudgetExhausted as spent:
            # Not a failure: the agent stops where its share ran out, and says so.
            workflow.logger.info("budget exhausted at %s: %s", prompt, spent)
            self._flag("budget_exhausted")
            if spent.tenant:
                self._flag(Flag.TENANT_BUDGET_EXHAUSTED.value)
            return None

    def _rendered_observations(self) -> str:
        recent = self._observations[-PROMPT_OBSERVATIONS:]
        if not recent:
            return "(nothing yet)"
        return "\n".join(f"[turn {o.turn}] {o.tool}: {o.text}" for o in recent)

    def _checked(self, output: BaseModel | None) -> dict[str, Any] | None:
        """Passage ids the agent never saw are dropped: a model cannot cite its way past search."""
        if output is None:
            self._flag("no_valid_output")
            return None
        data = output.model_dump(mode="json")
        if isinstance(data.get("passage_ids"), list):
            seen = {pid for o in self._observations for pid in o.passage_ids}
            kept = [pid for pid in data["passage_ids"] if pid in seen]
            if len(kept) < len(data["passage_ids"]):
                self._flag("unseen_passages_dropped")
            data["passage_ids"] = kept
        return data

    # --- continue-as-new ---------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.history_event_limit
            or info.get_current_history_size() >= self._input.history_bytes_limit
        )

    def _continued(self, request: AgentInput) -> AgentInput:
        assert self._model is not None
        carry = AgentCarry(
            turns=self._turns,
            observations=self._observations[-CARRIED_OBSERVATIONS:],
            tool_calls=self._tool_calls,
            decisions=self._decisions[-CARRIED_OBSERVATIONS:],
            usage=self._usage(),
            runs=self._carry.runs + 1,
            compensations=self._compensations,
            prompts={**self._carry.prompts, **self._model.prompts},
            fallbacks=[*self._carry.fallbacks, *self._model.fallbacks],
            live=self._live.state(),
            approvals=self._approvals,
            messages=self._inbox.outcomes(),
            # The messages being answered (a queued one and any that interrupted it) go
            # back to the queue's head, each to be answered by the next run.
            queue=self._following + self._inbox.pending(),
            task=self._task if self._task != request.task and not self._following else "",
            turn_base=self._turn_base,
            answer=self._answer_so_far,
            answered=bool(self._following),
            **self._carried(),
            side_effects=self._effects.calls,
        )
        workflow.logger.info("continuing as new after %d turns", self._turns)
        return request.model_copy(update={"carry": carry, "recorded": self._recorded.rest()})

    def _carried(self) -> dict[str, list[str]]:
        """Interrupting messages the request took in, and the flags: carried since a patch."""
        if (self._joined or self._flags) and workflow.patched(JOINED_PATCH):
            return {"joined": self._joined, "flags": self._flags}
        return {}

    def _flag(self, flag: str) -> None:
        if flag not in self._flags:
            self._flags.append(flag)

    def _usage(self) -> Usage:
        model_usage = self._model.usage if self._model else Usage()
        return self._carry.usage.add(model_usage)


def _arguments_example(schema: dict[str, Any]) -> str:
    """`{"query": "..."}` for a tool's argument schema: small models copy shapes well."""
    fields = []
    for name, prop in schema.get("properties", {}).items():
        if "enum" in prop:
            value = "|".join(map(str, prop["enum"]))
        else:
            value = "<number>" if prop.get("type") == "integer" else f"<{name}>"
        fields.append(f'"{name}": "{value}"')
    return "{" + ", ".join(fields) + "}"
