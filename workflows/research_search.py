"""The research flow's search side: plan queries, retrieve, judge the evidence, refine.

Its nodes keep the queries tried and the evidence found; the writing side reads the
evidence. When nothing found is about the question, `not_in_corpus` decides the
answer (that the documents do not answer it) instead of a writer making one up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents.activities import DocumentActivities
    from keel.graphs.machine import Outcome
    from keel.graphs.research import PLAN, REFINE, RESEARCH_GRAPH, RETRIEVE
    from keel.payloads.documents import SearchRequest
    from keel.payloads.flags import Flag, Flags
    from keel.payloads.research import (
        EvidenceSet,
        RefinedQueries,
        ResearchInput,
        ResearchPlan,
        ResearchProgress,
    )
    from keel.rules.checks import query_problem
    from keel.rules.extractive import relevant
    from workflows.live import LiveChannel
    from workflows.live_steps import search_step

M = TypeVar("M", bound=BaseModel)


class Ask(Protocol):
    async def __call__(self, node: str, output: type[M], variables: dict[str, str]) -> M | None:
        """A node's model call; None when no valid output came within the re-asks."""


class ResearchSearch:
    """Queries, the queries tried, and the evidence found so far."""

    def __init__(
        self,
        request: ResearchInput,
        progress: ResearchProgress,
        flags: Flags,
        live: LiveChannel,
        ask: Ask,
        not_in_corpus: Callable[[], Outcome],
    ) -> None:
        self.evidence = EvidenceSet()
        self._queries: list[str] = []
        self._tried: list[str] = []
        self._input = request
        self._progress = progress
        self._flags = flags
        self._live = live
        self._ask = ask
        self._not_in_corpus = not_in_corpus

    async def plan(self, feedback: str) -> Outcome:
        self._progress.iteration += 1
        said = f"A reviewer rejected the previous answer: {feedback}" if feedback else ""
        plan = await self._ask(
            PLAN, ResearchPlan, {"question": self._input.question, "feedback": said}
        )
        queries = self._real_queries(plan.queries) if plan is not None else []
        if not queries:
            self._queries = [self._input.question]
            self._flags.add(Flag.PLAN_FALLBACK)
            return Outcome.SCHEMA_FAILURE
        self._queries = queries
        return Outcome.SUCCESS

    async def retrieve(self) -> Outcome:
        node = RESEARCH_GRAPH.node(RETRIEVE)
        request = SearchRequest(
            namespace=self._input.namespace,
            queries=self._queries,
            limit=self._input.evidence_limit,
            namespaces=self._input.namespaces,
            clearance=self._input.clearance,
            rank_for=self._input.question,
        )
        # A search is fast, read-only and reads a store every orchestration worker has,
        # so it runs as a local activity: inside the workflow task, recorded as a
        # marker, without two dispatches through the server's task queues. A crash
        # before the marker is recorded runs it again, which is harmless.
        result = await workflow.execute_local_activity_method(
            DocumentActivities.search,
            request,
            start_to_close_timeout=node.start_to_close,
            retry_policy=node.retry,
            summary=f"retrieve: {'; '.join(self._queries)}"[:200],
        )
        self._tried.extend(q for q in self._queries if q not in self._tried)
        merged = {p.chunk_id: p for p in self.evidence.passages}
        for passage in result.passages:
            merged.setdefault(passage.chunk_id, passage)
        best = sorted(merged.values(), key=lambda p: p.score, reverse=True)
        self.evidence = EvidenceSet(passages=best[: self._input.evidence_limit])
        self._progress.evidence = len(self.evidence.passages)
        search_step(self._live, RETRIEVE, result.passages)
        return Outcome.SUCCESS

    async def check_evidence(self) -> Outcome:
        if self.nothing_relevant():
            # No passage is about the question: search again, then say the documents
            # do not answer it rather than have the writer make something up.
            if self._progress.refinements < self._input.max_refinements:
                return Outcome.NOT_ENOUGH
            return self._not_in_corpus()
        if len(self.evidence.passages) >= self._input.min_evidence:
            return Outcome.ENOUGH
        if self._progress.refinements < self._input.max_refinements:
            return Outcome.NOT_ENOUGH
        self._flags.add(Flag.INSUFFICIENT_EVIDENCE)
        return Outcome.EXHAUSTED

    async def refine(self) -> Outcome:
        self._progress.refinements += 1
        question = self._input.question
        refined = await self._ask(
            REFINE, RefinedQueries, {"question": question, "failed_queries": "; ".join(self._tried)}
        )
        queries = self._real_queries(refined.queries) if refined is not None else []
        if not queries and self.nothing_relevant():
            self._flags.add(Flag.REFINE_FAILED)
            if question in self._tried:
                return self._not_in_corpus()
            # Nothing found is about the question: search its own words before saying so.
            self._queries = [question]
            return Outcome.SUCCESS
        if not queries:
            self._flags.add(Flag.REFINE_FAILED)
            return Outcome.SCHEMA_FAILURE
        # The question's own words go into every search after the first: a tiny model's
        # queries can miss them.
        self._queries = list(dict.fromkeys([question, *queries]))
        return Outcome.SUCCESS

    def nothing_relevant(self) -> bool:
        """No passage found holds enough of the question's words to be about it."""
        return not relevant(self._input.question, [p.shown for p in self.evidence.passages])

    def _real_queries(self, queries: list[str]) -> list[str]:
        """Only real search queries are searched; `"]: {` from a broken plan is not one."""
        kept = [q for q in queries if query_problem(q) is None]
        if len(kept) < len(queries):
            self._flags.add(Flag.QUERIES_REJECTED)
        return kept
