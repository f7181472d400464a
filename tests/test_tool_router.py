"""ToolRouter: allow-lists, scopes, quotas, budgets and breakers, cheapest first."""

from __future__ import annotations

import pytest

from activities.contracts.loader import load_contracts
from keel.payloads.contracts import AgentSpec, ContractSnapshot
from keel.routing.tools import route_tool


@pytest.fixture(scope="module")
def contracts() -> ContractSnapshot:
    return load_contracts()


def researcher(contracts: ContractSnapshot) -> AgentSpec:
    return contracts.agents["researcher"]


def test_a_tool_outside_the_roles_allow_list_is_refused_not_substituted(
    contracts: ContractSnapshot,
) -> None:
    decision = route_tool(
        "create_ticket", researcher(contracts), contracts.tools, calls={}, cost_left_usd=None
    )
    assert not decision.allowed
    assert decision.tool is None
    assert "not allowed for role 'researcher'" in decision.reason


def test_an_unknown_tool_is_refused(contracts: ContractSnapshot) -> None:
    decision = route_tool(
        "shell_exec", researcher(contracts), contracts.tools, calls={}, cost_left_usd=None
    )
    assert not decision.allowed
    assert decision.reason == "unknown tool 'shell_exec'"


def test_scopes_are_checked_even_when_the_allow_list_names_the_tool(
    contracts: ContractSnapshot,
) -> None:
    agent = researcher(contracts).model_copy(update={"tools": ["create_ticket"]})
    decision = route_tool("create_ticket", agent, contracts.tools, calls={}, cost_left_usd=None)
    assert not decision.allowed
    assert "lacks scopes ['tickets:write']" in decision.reason


def test_the_cheapest_tool_of_the_capability_is_chosen(contracts: ContractSnapshot) -> None:
    decision = route_tool(
        "search_wide", researcher(contracts), contracts.tools, calls={}, cost_left_usd=None
    )
    assert decision.allowed
    assert decision.tool == "search_documents"
    assert "costs more" in decision.reason


def test_a_spent_quota_moves_to_the_next_cheapest(contracts: ContractSnapshot) -> None:
    quota = contracts.tools["search_documents"].quota_per_run
    decision = route_tool(
        "search_documents",
        researcher(contracts),
        contracts.tools,
        calls={"search_documents": quota},
        cost_left_usd=None,
    )
    assert decision.tool == "search_wide"
    assert f"quota of {quota} per run used" in decision.reason


def test_the_budget_excludes_tools_that_cost_more_than_is_left(
    contracts: ContractSnapshot,
) -> None:
    decision = route_tool(
        "search_wide",
        researcher(contracts),
        contracts.tools,
        calls={"search_documents": contracts.tools["search_documents"].quota_per_run},
        cost_left_usd=0.0001,
    )
    assert not decision.allowed
    assert "search_wide: costs $0.0005" in decision.reason


def test_an_open_breaker_moves_to_another_tool_or_refuses(contracts: ContractSnapshot) -> None:
    agent = researcher(contracts)
    moved = route_tool(
        "search_documents",
        agent,
        contracts.tools,
        calls={},
        cost_left_usd=None,
        open_breakers={"search_documents"},
    )
    assert moved.tool == "search_wide"
    refused = route_tool(
        "read_passage",
        agent,
        contracts.tools,
        calls={},
        cost_left_usd=None,
        open_breakers={"read_passage"},
    )
    assert not refused.allowed
    assert "breaker open" in refused.reason


def test_a_tool_returning_more_than_the_callers_clearance_is_refused_or_passed_over(
    contracts: ContractSnapshot,
) -> None:
    tools = dict(contracts.tools)
    tools["search_wide"] = tools["search_wide"].model_copy(update={"clearance": "internal"})
    agent = researcher(contracts)
    refused = route_tool(
        "search_wide", agent, tools, calls={}, cost_left_usd=None, clearance="public"
    )
    assert not refused.allowed
    assert refused.reason == "'search_wide' returns internal results, above clearance public"
    allowed = route_tool(
        "search_wide", agent, tools, calls={}, cost_left_usd=None, clearance="internal"
    )
    assert allowed.tool == "search_documents"  # cheaper, and within the clearance
    # A spent quota never moves a public caller onto the internal tool of the capability.
    spent = {"search_documents": tools["search_documents"].quota_per_run}
    blocked = route_tool(
        "search_documents", agent, tools, calls=spent, cost_left_usd=None, clearance="public"
    )
    assert not blocked.allowed
    quota = "search_documents: quota of 4 per run used"
    assert blocked.reason == f"no 'search' tool available ({quota})"
