"""IntentRouterWorkflow: the front door. Classify a request, start its flow, return its result.

Rules from routes.toml decide first, the router agent only when no rule matches;
an unknown or disallowed intent is refused with the reason. The chosen flow runs
as a child workflow, so it is visible in the Web UI under the request that
started it, and a cancelled request cancels it (a saga then unwinds).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from keel.graphs.policies import LLM_RETRY, LLM_TIMEOUT
    from keel.payloads.agents import AgentInput, AgentResult, DirectAnswer, IntentGuess
    from keel.payloads.contracts import ContractSnapshot
    from keel.payloads.coordinator import CoordinatorInput, MultiAgentReport
    from keel.payloads.errors import describe_validation_error
    from keel.payloads.llm import Budget, ModelChoice, Usage
    from keel.payloads.research import ResearchInput, ResearchReport
    from keel.payloads.routing import AskInput, AskProgress, AskResult, DataRoute, IntentDecision
    from keel.payloads.tickets import TicketSagaInput, TicketSagaResult
    from keel.routing.data import no_readable_namespace, route_data
    from keel.routing.intents import from_model, match_rules, refused
    from workflows.agent import AgentWorkflow
    from workflows.contract_snapshot import load_contracts
    from workflows.coordinator import CoordinatorWorkflow
    from workflows.live import LiveChannel
    from workflows.live_steps import route_line
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.research import ResearchWorkflow
    from workflows.ticket_saga import TicketSagaWorkflow


# Runs started before this patch failed on a request the chosen flow could not take.
VALIDATE_PATCH = "router-validates-the-child-input"


@workflow.defn(name="IntentRouterWorkflow")
class IntentRouterWorkflow:
    @workflow.init
    def __init__(self, request: AskInput) -> None:
        self._progress = AskProgress()
        self._usage = Usage()
        self._route = DataRoute(language="en", namespaces=[])
        self._live = LiveChannel()

    @workflow.query(name="progress")
    def progress(self) -> AskProgress:
        return self._progress

    @workflow.run
    async def run(self, request: AskInput) -> AskResult:
        contracts = await load_contracts()
        # The DataRouter decides first, from the contracts alone: which namespaces this
        # caller's request may search, before any model call.
        self._route = route_data(
            request.request, contracts.routes.namespaces, request.clearance, version=request.version
        )
        decision = match_rules(request.request, contracts.routes)
        if decision is None:
            decision = await self._classify(request, contracts)
        self._progress.decision = decision
        self._live.step(route_line(decision), "route")
        result = AskResult(
            request=request.request, decision=decision, contract_versions=contracts.versions
        )
        if not decision.allowed or decision.flow is None:
            self._progress.status = "refused"
            result.refused = True
            result.message = f"{contracts.routes.refusal} ({decision.reason})"
            result.usage = self._usage
            await self._live.close()
            return result
        self._progress.status = "running"
        try:
            child = await self._start(request, decision, contracts, result)
        except Exception:
            self._progress.status = "failed"
            self._live.release()
            raise
        except asyncio.CancelledError:
            self._live.release()  # the channel answers its watchers; the status stays
            raise
        self._progress.status = "refused" if result.refused else "done"
        if child is not None:
            result.result = child.model_dump(mode="json")
            self._usage = self._usage.add(child.usage)
        result.usage = self._usage
        await self._live.close()
        return result

    async def _classify(self, request: AskInput, contracts: ContractSnapshot) -> IntentDecision:
        """No rule matched: the router agent names an intent, checked against the contract."""
        spec = contracts.agents.get("router")
        if spec is None:
            return refused("no rule matched and no router agent is configured")
        chain = [request.model] if request.model else spec.chain
        model = ModelCaller(chain[0], request.llm_task_queue, 2, request.budget, chain[1:])
        model.live = self._live
        intents = "\n".join(
            f"- {name}: {route.description}" for name, route in contracts.routes.intents.items()
        )
        try:
            guess = await model.ask(
                spec.final_prompt,
                IntentGuess,
                {"intents": intents, "request": request.request},
                max_tokens=spec.max_tokens,
                start_to_close=LLM_TIMEOUT,
                retry=LLM_RETRY,
                # A grammar-constrained model can only name an intent of the contract.
                choices={"IntentGuess.intent": list(contracts.routes.intents)},
            )
        except BudgetExhausted as spent:
            self._usage = self._usage.add(model.usage)
            if spent.tenant:
                return refused(f"no rule matched and {spent}", "none")
            return refused("no rule matched and the budget allows no model call", "none")
        self._usage = self._usage.add(model.usage)
        if guess is None:
            return refused("the router agent named no known intent within its re-asks", "model")
        return from_model(guess.intent, contracts.routes)

    async def _start(
        self,
        request: AskInput,
        decision: IntentDecision,
        contracts: ContractSnapshot,
        result: AskResult,
    ) -> ResearchReport | MultiAgentReport | TicketSagaResult | AgentResult | None:
        route = self._data_route(request, decision, result)
        if result.refused:
            return None
        child_id = f"{workflow.info().workflow_id}-{decision.flow}"
        child_input = self._child_input(request, decision, contracts, result, route)
        if child_input is None:
            return None
        self._progress.child_workflow_id = child_id
        result.child_workflow_id = child_id
        self._live.child(child_id, "")
        common: dict[str, Any] = {
            "id": child_id,
            "parent_close_policy": ParentClosePolicy.REQUEST_CANCEL,
            "static_summary": f"{decision.intent}: {request.request}"[:200],
        }
        if isinstance(child_input, AgentInput):
            answer = await workflow.execute_child_workflow(AgentWorkflow.run, child_input, **common)
            if answer.output is not None and decision.flow == "direct":
                result.message = DirectAnswer.model_validate(answer.output).answer
            elif decision.flow == "agent":
                result.message = (
                    f"{child_input.agent}: {answer.output_schema} in {answer.turns} turns"
                )
            return answer
        if isinstance(child_input, TicketSagaInput):
            return await workflow.execute_child_workflow(
                TicketSagaWorkflow.run, child_input, **common
            )
        if isinstance(child_input, CoordinatorInput):
            return await workflow.execute_child_workflow(
                CoordinatorWorkflow.run, child_input, **common
            )
        return await workflow.execute_child_workflow(ResearchWorkflow.run, child_input, **common)

    def _data_route(
        self, request: AskInput, decision: IntentDecision, result: AskResult
    ) -> DataRoute | None:
        """The namespaces a research or team run may read; refused when there are none."""
        if decision.flow not in ("research", "report"):
            return None
        route = self._route
        self._progress.data_route = result.data_route = route
        # Runs started before this patch started a team that had nothing to read.
        if not route.namespaces and (
            decision.flow == "research" or workflow.patched("report-needs-readable-namespace")
        ):
            result.refused = True
            result.message = no_readable_namespace(request.clearance, route.excluded)
        return route

    def _child_input(
        self,
        request: AskInput,
        decision: IntentDecision,
        contracts: ContractSnapshot,
        result: AskResult,
        route: DataRoute | None,
    ) -> ChildInput | None:
        """The child's input, validated before any child starts: a request the flow
        cannot take is refused, rather than failing the router with no child started."""
        budget = request.budget.for_child(self._usage)
        try:
            if decision.flow == "agent":
                route = self._route
                self._progress.data_route = result.data_route = route
                return _agent_input(request, decision, budget, contracts, route)
            return _child_input(request, decision, budget, route)
        except ValidationError as err:
            # Runs recorded before this patch failed here; they replay so.
            if not workflow.patched(VALIDATE_PATCH):
                raise
            result.refused = True
            result.message = (
                f"{contracts.routes.refusal} (the {decision.flow} flow cannot take this request:"
                f" {describe_validation_error(err)})"
            )
            return None


ChildInput = AgentInput | TicketSagaInput | CoordinatorInput | ResearchInput


def _agent_input(
    request: AskInput,
    decision: IntentDecision,
    budget: Budget,
    contracts: ContractSnapshot,
    data: DataRoute,
) -> AgentInput:
    """An agent of the contracts, named by the intent, on the request; its tools search
    what the DataRouter chose for this caller, as research's do."""
    assert decision.intent is not None
    agent = contracts.routes.intents[decision.intent].agent
    assert agent is not None
    return AgentInput.model_validate(
        {
            "agent": agent,
            "task": request.request,
            "namespaces": data.namespaces,
            "clearance": request.clearance,
            **_models_and_budget(request, budget),
        }
    )


def _models_and_budget(request: AskInput, budget: Budget) -> dict[str, object]:
    """What every agent and team the router starts takes from the request alike."""
    return {
        "models": [request.model] if request.model else [],
        "llm_task_queue": request.llm_task_queue,
        "budget": budget,
        "stream_tokens": request.stream_tokens,
    }


def _child_input(
    request: AskInput, decision: IntentDecision, budget: Budget, route: DataRoute | None
) -> ChildInput:
    """The chosen flow's own input; its validation is the flow's own rule for the request."""
    if decision.flow == "direct":
        return AgentInput.model_validate(
            {
                "agent": "responder",
                "task": request.request,
                "variables": {"request": request.request},
                **_models_and_budget(request, budget),
            }
        )
    if decision.flow == "incident":
        return TicketSagaInput(
            description=request.request,
            model=request.model or ModelChoice(),
            llm_task_queue=request.llm_task_queue,
            approval_timeout_seconds=request.approval_timeout_seconds,
        )
    if decision.flow == "report":
        return CoordinatorInput.model_validate(
            {
                "request": request.request,
                "clearance": request.clearance,
                "version": request.version,
                "require_approval": request.require_approval,
                "approval_timeout_seconds": request.approval_timeout_seconds,
                **_models_and_budget(request, budget),
            }
        )
    assert route is not None
    return ResearchInput.model_validate(
        {
            "question": request.request,
            "namespace": route.namespaces[0],
            "namespaces": route.namespaces[1:],
            "clearance": request.clearance,
            "model": request.model or ModelChoice(),
            "llm_task_queue": request.llm_task_queue,
            "budget": budget,
            "stream_tokens": request.stream_tokens,
        }
    )
