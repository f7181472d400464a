"""The team flow: Plan -> Research -> Relevance -> Write -> Check -> Review -> Verdict -> Deliver.

The coordinator splits the request (an LLM node), one researcher agent per
sub-question runs as a child workflow, and a rule decides whether their passages
are about the request at all. Writer and reviewer are child agents too; the
deterministic checks run on every draft before a reviewer is started, and the
rubric, not the model, decides the verdict. With approval required a person
decides or sends notes. Where the rounds end without a draft the rubric passed,
the passages' own sentences stand in (the extract), as the contract allows.
Which draft is kept is `keel/graphs/team_rounds.py`'s decision.
"""

from __future__ import annotations

from keel.graphs.machine import Edge, Node, NodeKind, Outcome, StateMachine
from keel.graphs.policies import LLM_RETRY, LLM_TIMEOUT
from keel.payloads.agents import Findings, RubricScores, SubQuestions
from keel.payloads.research import Draft

PLAN = "plan"
RESEARCH = "research"
RELEVANCE = "relevance"
WRITE = "write"
CHECK = "check"
REVIEW = "review"
VERDICT = "verdict"
APPROVAL = "approval"
EXTRACT = "extract"
DELIVER = "deliver"

TEAM_GRAPH = StateMachine(
    name="team",
    start=PLAN,
    nodes=(
        Node(PLAN, NodeKind.LLM, "Plan sub-questions", SubQuestions, LLM_TIMEOUT, LLM_RETRY),
        Node(RESEARCH, NodeKind.AGENT, "Researchers, in parallel", Findings),
        Node(RELEVANCE, NodeKind.RULE, "About the request?"),
        Node(WRITE, NodeKind.AGENT, "Writer", Draft),
        Node(CHECK, NodeKind.RULE, "Draft passes the checks?"),
        Node(REVIEW, NodeKind.AGENT, "Reviewer", RubricScores),
        Node(VERDICT, NodeKind.RULE, "Rubric passed?"),
        Node(APPROVAL, NodeKind.PERSON, "Approve, reject or send notes"),
        Node(EXTRACT, NodeKind.RULE, "Extract where allowed"),
        Node(DELIVER, NodeKind.RULE, "Deliver", terminal=True),
    ),
    edges=(
        Edge(PLAN, RESEARCH, Outcome.SUCCESS),
        Edge(PLAN, RESEARCH, Outcome.SCHEMA_FAILURE, "the request itself is the one question"),
        Edge(PLAN, RESEARCH, Outcome.BUDGET_EXHAUSTED, "the request itself, on what is left"),
        Edge(RESEARCH, RELEVANCE, Outcome.SUCCESS),
        Edge(RELEVANCE, WRITE, Outcome.PASS),
        Edge(RELEVANCE, DELIVER, Outcome.NOTHING_RELEVANT, "the documents do not answer it"),
        Edge(RELEVANCE, DELIVER, Outcome.BUDGET_EXHAUSTED, "deliver the research, flagged"),
        Edge(WRITE, CHECK, Outcome.SUCCESS),
        Edge(WRITE, EXTRACT, Outcome.SCHEMA_FAILURE, "the writer gave none, deliver the best"),
        Edge(WRITE, EXTRACT, Outcome.BUDGET_EXHAUSTED, "deliver what there is"),
        Edge(CHECK, REVIEW, Outcome.PASS),
        Edge(CHECK, WRITE, Outcome.FAIL, "with the rules' feedback, no reviewer"),
        Edge(CHECK, EXTRACT, Outcome.EXHAUSTED, "no rewrite left"),
        Edge(REVIEW, VERDICT, Outcome.SUCCESS),
        Edge(VERDICT, DELIVER, Outcome.PASS),
        Edge(VERDICT, WRITE, Outcome.FAIL, "with the reviewer's feedback"),
        Edge(VERDICT, EXTRACT, Outcome.EXHAUSTED, "the round limit"),
        Edge(VERDICT, APPROVAL, Outcome.HOLD, "passed, or the round limit, with approval"),
        Edge(APPROVAL, WRITE, Outcome.FEEDBACK, "revise, review, ask again"),
        Edge(APPROVAL, DELIVER, Outcome.DECIDED, "approved or rejected, or the default in time"),
        Edge(EXTRACT, DELIVER, Outcome.SUCCESS, "the passages' own sentences"),
        Edge(EXTRACT, DELIVER, Outcome.FAIL, "the best draft, flagged"),
    ),
)
