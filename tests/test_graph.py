"""The transition table: consistent, complete, and what the workflow follows."""

from __future__ import annotations

import pytest

from keel.graphs import team
from keel.graphs.flows import FLOWS
from keel.graphs.machine import Edge, GraphError, Node, NodeKind, Outcome, StateMachine
from keel.graphs.research import (
    CHECK_DRAFT,
    DELIVER,
    PLAN,
    RESEARCH_GRAPH,
    RETRIEVE,
    REVIEW,
    VERDICT,
    WRITE,
)
from keel.graphs.team import TEAM_GRAPH
from keel.payloads.agents import SubQuestions


def reachable(graph: StateMachine) -> set[str]:
    seen, frontier = {graph.start}, [graph.start]
    while frontier:
        current = frontier.pop()
        for e in graph.edges:
            if e.source == current and e.target not in seen:
                seen.add(e.target)
                frontier.append(e.target)
    return seen


def test_every_research_node_is_reachable_and_deliver_is_the_only_end() -> None:
    assert reachable(RESEARCH_GRAPH) == {n.name for n in RESEARCH_GRAPH.nodes}
    assert [n.name for n in RESEARCH_GRAPH.nodes if n.terminal] == [DELIVER]


def test_review_loops_back_to_plan_and_bounds_lead_to_delivery() -> None:
    assert RESEARCH_GRAPH.next(VERDICT, Outcome.FAIL) == PLAN
    assert RESEARCH_GRAPH.next(VERDICT, Outcome.EXHAUSTED) == DELIVER
    assert RESEARCH_GRAPH.next(REVIEW, Outcome.SCHEMA_FAILURE) == DELIVER


def test_every_draft_meets_the_checks_before_any_review() -> None:
    assert RESEARCH_GRAPH.next(WRITE, Outcome.SUCCESS) == CHECK_DRAFT
    assert RESEARCH_GRAPH.next(CHECK_DRAFT, Outcome.PASS) == REVIEW
    # A failing draft goes back to the writer, not to the reviewer.
    assert RESEARCH_GRAPH.next(CHECK_DRAFT, Outcome.FAIL) == WRITE
    assert RESEARCH_GRAPH.next(CHECK_DRAFT, Outcome.EXHAUSTED) == DELIVER
    assert [e.target for e in RESEARCH_GRAPH.edges if e.source == WRITE] == [
        CHECK_DRAFT,
        DELIVER,
        DELIVER,
    ]


def test_an_outcome_without_an_edge_is_an_error() -> None:
    with pytest.raises(GraphError, match="no edge from 'retrieve' on 'schema failure'"):
        RESEARCH_GRAPH.next(RETRIEVE, Outcome.SCHEMA_FAILURE)


def test_llm_and_tool_nodes_have_output_schemas_and_bounded_retries() -> None:
    for node in RESEARCH_GRAPH.nodes:
        if node.kind in (NodeKind.LLM, NodeKind.TOOL):
            assert node.output is not None, node.name
            assert node.retry.maximum_attempts > 0, node.name


def test_inconsistent_tables_are_rejected() -> None:
    a = Node("a", NodeKind.RULE, "A")
    b = Node("b", NodeKind.RULE, "B", terminal=True)
    with pytest.raises(GraphError, match="two edges leave"):
        StateMachine("x", "a", (a, b), (Edge("a", "b", Outcome.PASS), Edge("a", "a", Outcome.PASS)))
    with pytest.raises(GraphError, match="unknown node"):
        StateMachine("x", "a", (a, b), (Edge("a", "c", Outcome.PASS),))
    with pytest.raises(GraphError, match="no edge out"):
        StateMachine("x", "a", (a, b), ())


def test_mermaid_shows_every_node_and_edge_with_failure_edges_dashed() -> None:
    text = RESEARCH_GRAPH.to_mermaid()
    assert text.startswith("flowchart TD\n")
    for node in RESEARCH_GRAPH.nodes:
        assert f"  {node.name}" in text
    arrows = [line for line in text.splitlines() if "-->" in line or "-.->" in line]
    assert len(arrows) == len(RESEARCH_GRAPH.edges)
    assert '  plan -.->|"schema failure: search the question itself"| retrieve' in text
    assert '  verdict -->|"fail: with the reviewer\'s feedback"| plan' in text


def test_every_team_node_is_reachable_and_deliver_is_the_only_end() -> None:
    assert reachable(TEAM_GRAPH) == {n.name for n in TEAM_GRAPH.nodes}
    assert [n.name for n in TEAM_GRAPH.nodes if n.terminal] == [team.DELIVER]
    assert TEAM_GRAPH.node(team.PLAN).output is SubQuestions
    assert TEAM_GRAPH.node(team.PLAN).retry.maximum_attempts > 0


def test_every_team_draft_meets_the_checks_before_a_reviewer_and_loops_back_to_the_writer() -> None:
    assert TEAM_GRAPH.next(team.WRITE, Outcome.SUCCESS) == team.CHECK
    assert TEAM_GRAPH.next(team.CHECK, Outcome.PASS) == team.REVIEW
    assert TEAM_GRAPH.next(team.CHECK, Outcome.FAIL) == team.WRITE
    assert TEAM_GRAPH.next(team.VERDICT, Outcome.FAIL) == team.WRITE
    assert TEAM_GRAPH.next(team.APPROVAL, Outcome.FEEDBACK) == team.WRITE
    # Every way the rounds end without a passed draft meets the extract first.
    for source, outcome in (
        (team.CHECK, Outcome.EXHAUSTED),
        (team.VERDICT, Outcome.EXHAUSTED),
        (team.WRITE, Outcome.SCHEMA_FAILURE),
        (team.WRITE, Outcome.BUDGET_EXHAUSTED),
    ):
        assert TEAM_GRAPH.next(source, outcome) == team.EXTRACT
    assert TEAM_GRAPH.next(team.RELEVANCE, Outcome.NOTHING_RELEVANT) == team.DELIVER


def test_flows_names_both_tables_and_the_team_draws_agents_and_a_person() -> None:
    assert FLOWS == {"research": RESEARCH_GRAPH, "team": TEAM_GRAPH}
    text = TEAM_GRAPH.to_mermaid()
    assert '  research[/"Researchers, in parallel (agent)"/]' in text
    assert '  approval>"Approve, reject or send notes (person)"]' in text
    assert '  check -->|"fail: with the rules\' feedback, no reviewer"| write' in text
