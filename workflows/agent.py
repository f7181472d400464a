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
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from keel.graphs.policies import (
        LLM_RETRY,
        LLM_TIMEOUT,
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
    )
    from keel.payloads.approvals import CallDecision, PendingCall
    from keel.payloads.contracts import AgentSpec, ContractSnapshot
    from keel.payloads.errors import (
        UNKNOWN_AGENT,
    )
    from keel.payloads.flags import Flag, Flags
    from keel.payloads.llm import Usage
    from keel.payloads.outputs import OUTPUT_MODELS
    from keel.payloads.side_effects import Reconciliation, SideEffectCall
    from workflows.agent_messages import (
        JOINED_PATCH,
        LEGACY,
        MESSAGES_PATCH,
        Inbox,
        step_line,
    )
    from workflows.agent_prompts import prompt_variables, seen_only
    from workflows.agent_tool_use import ToolUse
    from workflows.contract_snapshot import load_contracts
    from workflows.live import LiveChannel
    from workflows.model_calls import BudgetExhausted, ModelCaller

M = TypeVar("M", bound=BaseModel)

CARRIED_OBSERVATIONS = 20


@workflow.defn(name="AgentWorkflow")
class AgentWorkflow:
    @workflow.init
    def __init__(self, request: AgentInput) -> None:
        carry = request.carry
        self._input = request
        self._carry = carry
        self._turns = carry.turns
        self._flags = Flags(carry.flags)
        self._progress = AgentProgress(agent=request.agent, turn=carry.turns, runs=carry.runs)
        self._model: ModelCaller | None = None
        self._live = LiveChannel(carry.live)
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
        # Tool turns, their saga and approvals (workflows/agent_tool_use.py).
        self._tools = ToolUse(request, carry, self._progress, self._flags, self._live)

    @workflow.query(name="progress")
    def progress(self) -> AgentProgress:
        self._progress.turn = self._turns
        self._progress.tool_calls = dict(self._tools.tool_calls)
        self._progress.usage = self._usage()
        self._progress.side_effects = list(self._tools.calls.effects.calls)
        self._progress.needs_reconciliation = self._tools.calls.effects.waiting
        return self._progress

    @workflow.run
    async def run(self, request: AgentInput) -> AgentResult:
        try:
            result = await self._run(request)
        except (Exception, asyncio.CancelledError) as error:
            self._progress.status = "cancelled" if is_cancelled_exception(error) else "failed"
            if self._tools.calls.compensations:
                self._live.step(
                    f"compensating {len(self._tools.calls.compensations)} side effect(s)"
                )
                await self._tools.calls.saga.compensate()
            self._live.release()
            raise
        self._progress.status = "done"
        await self._live.close()
        return result

    async def _run(self, request: AgentInput) -> AgentResult:
        contracts = await load_contracts(self._tools.calls.recorded)
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
            recorded=self._tools.calls.recorded,
        )
        max_turns = request.max_turns or spec.max_turns
        if spec.seed_tool and self._carry.runs == 1 and self._turns == 0:
            # Turn 0, no model: the task itself as the query, through the router as usual.
            seed = AgentTurn(
                thought="search the task first",
                tool=spec.seed_tool,
                arguments={"query": request.task[:120]},
            )
            await self._tools.use(seed, spec, contracts, self._model, self._turns)
        if workflow.patched(MESSAGES_PATCH):
            self._spec = spec
            return self._result(spec, await self._converse(spec, contracts, max_turns))
        self._legacy = True
        return self._result(spec, await self._respond(spec, contracts, max_turns))

    async def _respond(
        self, spec: AgentSpec, contracts: ContractSnapshot, max_turns: int
    ) -> BaseModel | None:
        """One request (`self._task`) answered: the tool loop, then the final answer."""
        request, model = self._input, self._model
        assert model is not None
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
                if Flag.BUDGET_EXHAUSTED not in self._flags:
                    self._flags.add(Flag.TURN_SCHEMA_FAILURE)
                break
            if proposal.tool == FINISH:
                break
            await self._tools.use(proposal, spec, contracts, model, self._turns)
        else:
            if spec.tools:
                self._flags.add(Flag.MAX_TURNS_REACHED)
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
            observations=self._tools.observations,
            decisions=self._tools.decisions,
            usage=self._usage(),
            fallbacks=[*self._carry.fallbacks, *self._model.fallbacks],
            prompts={**self._carry.prompts, **self._model.prompts},
            flags=self._flags,
            approvals=self._tools.approvals.decided,
            messages=self._inbox.outcomes(),
            side_effects=self._tools.calls.effects.calls,
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
                self._flags.add(Flag.INTERRUPTED)
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
            waiting = self._tools.calls.effects.waiting is not None
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

    @workflow.update(name="approve_call")
    def approve_call(self, decision: CallDecision) -> PendingCall:
        """A person's decision on the call waiting now; the validator holds the rules."""
        return self._tools.approvals.answer(decision)

    @approve_call.validator
    def _validate_call_decision(self, decision: CallDecision) -> None:
        self._tools.approvals.check(decision)

    @workflow.update(name="reconcile_call")
    def reconcile_call(self, decision: Reconciliation) -> SideEffectCall:
        """An operator's word on a call whose outcome was lost (`client.py reconcile`)."""
        return self._tools.calls.effects.resolve(decision)

    @reconcile_call.validator
    def _validate_reconciliation(self, decision: Reconciliation) -> None:
        self._tools.calls.effects.check(decision)

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
        variables = prompt_variables(self._task, request, spec, contracts, self._tools.observations)
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
            self._flags.budget_spent(spent.tenant)
            return None

    def _checked(self, output: BaseModel | None) -> dict[str, Any] | None:
        """Passage ids the agent never saw are dropped: a model cannot cite its way past search."""
        if output is None:
            self._flags.add(Flag.NO_VALID_OUTPUT)
            return None
        data = output.model_dump(mode="json")
        if seen_only(data, self._tools.observations):
            self._flags.add(Flag.UNSEEN_PASSAGES_DROPPED)
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
            observations=self._tools.observations[-CARRIED_OBSERVATIONS:],
            tool_calls=self._tools.tool_calls,
            decisions=self._tools.decisions[-CARRIED_OBSERVATIONS:],
            usage=self._usage(),
            runs=self._carry.runs + 1,
            compensations=self._tools.calls.compensations,
            prompts={**self._carry.prompts, **self._model.prompts},
            fallbacks=[*self._carry.fallbacks, *self._model.fallbacks],
            live=self._live.state(),
            approvals=self._tools.approvals.decided,
            messages=self._inbox.outcomes(),
            # The messages being answered (a queued one and any that interrupted it) go
            # back to the queue's head, each to be answered by the next run.
            queue=self._following + self._inbox.pending(),
            task=self._task if self._task != request.task and not self._following else "",
            turn_base=self._turn_base,
            answer=self._answer_so_far,
            answered=bool(self._following),
            **self._carried(),
            side_effects=self._tools.calls.effects.calls,
        )
        workflow.logger.info("continuing as new after %d turns", self._turns)
        return request.model_copy(
            update={"carry": carry, "recorded": self._tools.calls.recorded.rest()}
        )

    def _carried(self) -> dict[str, list[str]]:
        """Interrupting messages the request took in, and the flags: carried since a patch."""
        if (self._joined or self._flags) and workflow.patched(JOINED_PATCH):
            return {"joined": self._joined, "flags": self._flags}
        return {}

    def _usage(self) -> Usage:
        model_usage = self._model.usage if self._model else Usage()
        return self._carry.usage.add(model_usage)
