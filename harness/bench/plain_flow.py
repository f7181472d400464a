"""The research flow without durability: a re-implementation of its nodes.

These node functions are written again here, over a state dict, rather than shared
with `ResearchWorkflow` (whose nodes are methods of the workflow, scheduling
activities). They make the same calls the workflow's activities make (the gateway
with the scripted model, the document store's search), with the same prompts'
variables and output budgets, and route on the same `RESEARCH_GRAPH`; the floor and
the LangGraph peer both run them. What they leave out is what the workflow adds:
re-asks on schema violations, fallbacks, budgets and the durable record, none of
which the scripted answers exercise. `tests/test_bench.py` checks that all three
systems visit the same nodes and deliver the same answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from activities.llm.gateway import LLMGateway
from keel.graphs import research as graph
from keel.graphs.machine import Outcome
from keel.graphs.research import (
    CHECK_DRAFT,
    CHECK_EVIDENCE,
    DELIVER,
    PLAN,
    REFINE,
    RETRIEVE,
    REVIEW,
    VERDICT,
    WRITE,
)
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.documents import numbered as numbered_shown
from keel.payloads.documents import shown_passage
from keel.payloads.llm import LLMRequest, ModelChoice
from keel.payloads.research import ResearchInput
from keel.rules.checks import check_draft
from workflows.research import CRITERIA_KEY, FLOW, MAX_TOKENS


class FlowState(TypedDict, total=False):
    """What a checkpointer records after every step (LangGraph) or memory holds (floor)."""

    question: str
    script: str
    queries: list[str]
    tried: list[str]
    passages: list[dict[str, Any]]
    draft: dict[str, Any]
    verdict: dict[str, Any]
    feedback: str
    rewrite_feedback: str
    rewrites: int
    passed: bool
    iteration: int
    refinements: int
    revisions: int
    calls: dict[str, int]
    outcome: str
    visits: list[str]
    answer: str


Node = Callable[[FlowState], Awaitable[FlowState]]


class ResearchNodes:
    """Node functions over a state dict; each returns the keys it changed."""

    def __init__(
        self,
        gateway: LLMGateway,
        store: DocumentStore,
        request: ResearchInput,
        contracts: ContractSnapshot | None = None,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._request = request
        self._contracts = contracts or load_contracts()

    def table(self) -> dict[str, Node]:
        return {
            PLAN: self.plan,
            RETRIEVE: self.retrieve,
            CHECK_EVIDENCE: self.check_evidence,
            REFINE: self.refine,
            WRITE: self.write,
            CHECK_DRAFT: self.check_draft,
            REVIEW: self.review,
            VERDICT: self.verdict,
            DELIVER: self.deliver,
        }

    async def _ask(
        self,
        state: FlowState,
        node: str,
        schema: str,
        variables: dict[str, str],
        prompt_id: str | None = None,
        choices: dict[str, list[str]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, int]]:
        calls = dict(state.get("calls", {}))
        index = calls.get(node, 0)
        calls[node] = index + 1
        request = LLMRequest(
            node=node,
            call_index=index,
            choice=ModelChoice(provider="scripted", model=state["script"]),
            prompt_id=prompt_id or node,
            variables=variables,
            output_schema=schema,
            max_tokens=MAX_TOKENS[node],
            choices=choices or {},
        )
        result = await self._gateway.complete(request)
        return result.output, calls

    async def _queries(
        self, state: FlowState, node: str, schema: str, variables: dict[str, str]
    ) -> FlowState:
        """The search queries a planning call (plan or refine) answers with."""
        output, calls = await self._ask(state, node, schema, variables)
        return {"queries": output["queries"], "calls": calls, "outcome": Outcome.SUCCESS.value}

    async def plan(self, state: FlowState) -> FlowState:
        feedback = _feedback(state, "A reviewer rejected the previous answer: {}")
        update = await self._queries(
            state, graph.PLAN, "ResearchPlan", {"question": state["question"], "feedback": feedback}
        )
        update["iteration"] = state.get("iteration", 0) + 1
        return update

    async def retrieve(self, state: FlowState) -> FlowState:
        limit = self._request.evidence_limit
        found = await asyncio.to_thread(
            self._store.search_for_question,
            [self._request.namespace],
            state["queries"],
            state["question"],
            limit,
        )
        merged = {p["chunk_id"]: p for p in state.get("passages", [])}
        for passage in found:
            merged.setdefault(passage.chunk_id, passage.model_dump())
        best = sorted(merged.values(), key=lambda p: float(p["score"]), reverse=True)
        tried = list(state.get("tried", []))
        tried.extend(q for q in state["queries"] if q not in tried)
        return {"passages": best[:limit], "tried": tried, "outcome": Outcome.SUCCESS.value}

    async def check_evidence(self, state: FlowState) -> FlowState:
        if len(state.get("passages", [])) >= self._request.min_evidence:
            return {"outcome": Outcome.ENOUGH.value}
        if state.get("refinements", 0) < self._request.max_refinements:
            return {"outcome": Outcome.NOT_ENOUGH.value}
        return {"outcome": Outcome.EXHAUSTED.value}

    async def refine(self, state: FlowState) -> FlowState:
        failed = "; ".join(state.get("tried", []))
        update = await self._queries(
            state,
            graph.REFINE,
            "RefinedQueries",
            {"question": state["question"], "failed_queries": failed},
        )
        update["refinements"] = state.get("refinements", 0) + 1
        return update

    async def write(self, state: FlowState) -> FlowState:
        feedback = state.get("feedback", "")
        text = f"\nA reviewer rejected an earlier answer: {feedback}\n" if feedback else ""
        if state.get("rewrite_feedback"):
            text = f"\nYour last answer was sent back: {state['rewrite_feedback']}\n"
        output, calls = await self._ask(
            state,
            graph.WRITE,
            "Draft",
            {
                "question": state["question"],
                "passages": numbered(state.get("passages", [])),
                "feedback": text,
            },
        )
        return {
            "draft": output,
            "calls": calls,
            "rewrite_feedback": "",
            "outcome": Outcome.SUCCESS.value,
        }

    async def check_draft(self, state: FlowState) -> FlowState:
        draft = state["draft"]
        shown = [shown_passage(p["title"], p["text"]) for p in state["passages"]]
        check = check_draft(draft["answer"], draft["citations"], shown)
        if check.passed:
            return {"outcome": Outcome.PASS.value}
        rewrites = state.get("rewrites", 0)
        if rewrites < self._contracts.quality.flow(FLOW).max_rewrites:
            return {
                "rewrites": rewrites + 1,
                "rewrite_feedback": check.feedback,
                "outcome": Outcome.FAIL.value,
            }
        return {"outcome": Outcome.EXHAUSTED.value}

    async def review(self, state: FlowState) -> FlowState:
        rubric = self._contracts.rubrics[self._contracts.quality.flow(FLOW).rubric]
        output, calls = await self._ask(
            state,
            REVIEW,
            "RubricScores",
            {
                "question": state["question"],
                "passages": numbered(state.get("passages", [])),
                "answer": state["draft"]["answer"],
                "criteria": "\n".join(
                    f"- {c.name} (weight {c.weight}): {c.description}" for c in rubric.criteria
                ),
            },
            prompt_id="review_rubric",
            choices={CRITERIA_KEY: [c.name for c in rubric.criteria]},
        )
        weighted = rubric.weighted_score({s["criterion"]: s["score"] for s in output["scores"]})
        return {
            "verdict": output,
            "passed": weighted >= rubric.pass_threshold,
            "calls": calls,
            "outcome": Outcome.SUCCESS.value,
        }

    async def verdict(self, state: FlowState) -> FlowState:
        verdict = state["verdict"]
        if state["passed"]:
            return {"outcome": Outcome.PASS.value}
        if state.get("revisions", 0) < self._request.max_revisions:
            return {
                "revisions": state.get("revisions", 0) + 1,
                "feedback": verdict["feedback"],
                "outcome": Outcome.FAIL.value,
            }
        return {"outcome": Outcome.EXHAUSTED.value}

    async def deliver(self, state: FlowState) -> FlowState:
        return {"answer": state["draft"]["answer"], "outcome": "delivered"}


def _feedback(state: FlowState, template: str) -> str:
    """The reviewer's feedback in the prompt's words, or nothing before a first review."""
    feedback = state.get("feedback", "")
    return template.format(feedback) if feedback else ""


def numbered(passages: list[dict[str, Any]]) -> str:
    """Passages as the workflow numbers them in its prompts."""
    return numbered_shown([shown_passage(p["title"], p["text"]) for p in passages])


def initial_state(request: ResearchInput) -> FlowState:
    return {"question": request.question, "script": request.model.model, "visits": []}


async def run_plain(
    nodes: ResearchNodes, request: ResearchInput, timings: dict[str, float] | None = None
) -> FlowState:
    """Drive the nodes with the graph's transition table, in memory: the floor."""
    table = nodes.table()
    state = initial_state(request)
    node = graph.RESEARCH_GRAPH.start
    while True:
        started = time.perf_counter()
        state.update(await table[node](state))
        if timings is not None:
            timings[node] = timings.get(node, 0.0) + time.perf_counter() - started
        state["visits"] = [*state["visits"], node]
        if graph.RESEARCH_GRAPH.node(node).terminal:
            return state
        node = graph.RESEARCH_GRAPH.next(node, Outcome(state["outcome"]))
