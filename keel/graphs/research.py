"""The research flow: Plan -> Retrieve -> (enough ? Write : Refine -> Retrieve) -> Check -> Review.

The check node runs deterministic rules (keel/rules/checks.py) on every draft before
any review call: a draft that breaks one goes back to the writer with the rule's
feedback, and after `max_rewrites` the flow delivers an extract or the draft, flagged.
"""

from __future__ import annotations

from keel.graphs.machine import Edge, Node, NodeKind, Outcome, StateMachine
from keel.graphs.policies import LLM_RETRY, LLM_TIMEOUT, SEARCH_RETRY, SEARCH_TIMEOUT
from keel.payloads.agents import RubricScores
from keel.payloads.documents import SearchResult
from keel.payloads.research import Draft, RefinedQueries, ResearchPlan

PLAN = "plan"
RETRIEVE = "retrieve"
CHECK_EVIDENCE = "check_evidence"
REFINE = "refine_query"
WRITE = "write"
CHECK_DRAFT = "check_draft"
REVIEW = "review"
VERDICT = "verdict"
DELIVER = "deliver"

RESEARCH_GRAPH = StateMachine(
    name="research",
    start=PLAN,
    nodes=(
        Node(PLAN, NodeKind.LLM, "Plan", ResearchPlan, LLM_TIMEOUT, LLM_RETRY),
        Node(RETRIEVE, NodeKind.TOOL, "Retrieve", SearchResult, SEARCH_TIMEOUT, SEARCH_RETRY),
        Node(CHECK_EVIDENCE, NodeKind.RULE, "Enough evidence?"),
        Node(REFINE, NodeKind.LLM, "Refine query", RefinedQueries, LLM_TIMEOUT, LLM_RETRY),
        Node(WRITE, NodeKind.LLM, "Write", Draft, LLM_TIMEOUT, LLM_RETRY),
        Node(CHECK_DRAFT, NodeKind.RULE, "Draft passes the checks?"),
        Node(REVIEW, NodeKind.LLM, "Review", RubricScores, LLM_TIMEOUT, LLM_RETRY),
        Node(VERDICT, NodeKind.RULE, "Passed?"),
        Node(DELIVER, NodeKind.RULE, "Deliver", terminal=True),
    ),
    edges=(
        Edge(PLAN, RETRIEVE, Outcome.SUCCESS),
        Edge(PLAN, RETRIEVE, Outcome.SCHEMA_FAILURE, "search the question itself"),
        Edge(RETRIEVE, CHECK_EVIDENCE, Outcome.SUCCESS),
        Edge(CHECK_EVIDENCE, WRITE, Outcome.ENOUGH),
        Edge(CHECK_EVIDENCE, REFINE, Outcome.NOT_ENOUGH),
        Edge(CHECK_EVIDENCE, WRITE, Outcome.EXHAUSTED, "write with what there is"),
        Edge(CHECK_EVIDENCE, DELIVER, Outcome.NOTHING_RELEVANT, "the documents do not answer it"),
        Edge(REFINE, RETRIEVE, Outcome.SUCCESS),
        Edge(REFINE, WRITE, Outcome.SCHEMA_FAILURE, "write with what there is"),
        Edge(REFINE, DELIVER, Outcome.NOTHING_RELEVANT, "the documents do not answer it"),
        Edge(WRITE, CHECK_DRAFT, Outcome.SUCCESS),
        Edge(WRITE, DELIVER, Outcome.SCHEMA_FAILURE, "deliver an extract of the passages"),
        Edge(CHECK_DRAFT, REVIEW, Outcome.PASS),
        Edge(CHECK_DRAFT, WRITE, Outcome.FAIL, "with the rule's feedback, no review call"),
        Edge(CHECK_DRAFT, DELIVER, Outcome.EXHAUSTED, "an extract, or the draft flagged"),
        Edge(REVIEW, VERDICT, Outcome.SUCCESS),
        Edge(REVIEW, DELIVER, Outcome.SCHEMA_FAILURE, "deliver unreviewed"),
        Edge(VERDICT, DELIVER, Outcome.PASS),
        Edge(VERDICT, PLAN, Outcome.FAIL, "with the reviewer's feedback"),
        Edge(VERDICT, DELIVER, Outcome.EXHAUSTED, "an extract, or the best draft"),
        *(
            Edge(node, DELIVER, Outcome.BUDGET_EXHAUSTED, "deliver what there is")
            for node in (PLAN, REFINE, WRITE, REVIEW)
        ),
    ),
)
