"""The research flow: Plan -> Retrieve -> (enough ? Write : Refine -> Retrieve) -> Review."""

from __future__ import annotations

from graphs.machine import Edge, Node, NodeKind, Outcome, StateMachine
from graphs.policies import LLM_RETRY, LLM_TIMEOUT, SEARCH_RETRY, SEARCH_TIMEOUT
from models.documents import SearchResult
from models.research import Draft, RefinedQueries, ResearchPlan, ReviewVerdict

PLAN = "plan"
RETRIEVE = "retrieve"
CHECK_EVIDENCE = "check_evidence"
REFINE = "refine_query"
WRITE = "write"
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
        Node(REVIEW, NodeKind.LLM, "Review", ReviewVerdict, LLM_TIMEOUT, LLM_RETRY),
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
        Edge(REFINE, RETRIEVE, Outcome.SUCCESS),
        Edge(REFINE, WRITE, Outcome.SCHEMA_FAILURE, "write with what there is"),
        Edge(WRITE, REVIEW, Outcome.SUCCESS),
        Edge(REVIEW, VERDICT, Outcome.SUCCESS),
        Edge(REVIEW, DELIVER, Outcome.SCHEMA_FAILURE, "deliver unreviewed"),
        Edge(VERDICT, DELIVER, Outcome.PASS),
        Edge(VERDICT, PLAN, Outcome.FAIL, "with the reviewer's feedback"),
        Edge(VERDICT, DELIVER, Outcome.EXHAUSTED, "deliver the best draft"),
        *(
            Edge(node, DELIVER, Outcome.BUDGET_EXHAUSTED, "deliver what there is")
            for node in (PLAN, REFINE, WRITE, REVIEW)
        ),
    ),
)

FLOWS: dict[str, StateMachine] = {"research": RESEARCH_GRAPH}
