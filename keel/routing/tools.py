"""ToolRouter: which tool, if any, a proposed call may use.

The model proposes; the router disposes. A tool outside the agent's allow-list is
refused outright, never swapped for another, so a prompt-injected request cannot
reach a forbidden tool by any name; so is one that returns results above the
caller's clearance. The same rules hold for every tool, built-in, MCP or Python,
and a tool the contracts do not name (whatever an MCP server lists) is unknown.
An allowed tool that is over quota, over budget or behind an open breaker gives
way to the cheapest allowed tool of the same capability that is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from keel.payloads.clearance import SecurityLevel, may_read
from keel.payloads.contracts import AgentSpec
from keel.payloads.routing import ToolDecision
from keel.payloads.tool_specs import ToolSpec


def route_tool(
    requested: str,
    agent: AgentSpec,
    tools: Mapping[str, ToolSpec],
    *,
    calls: Mapping[str, int],
    cost_left_usd: float | None,
    open_breakers: Set[str] = frozenset(),
    turn: int = 0,
    clearance: SecurityLevel = "public",
) -> ToolDecision:
    """`clearance` is the caller's: a tool returning more than it may read is refused."""

    def deny(reason: str) -> ToolDecision:
        return ToolDecision(requested=requested, allowed=False, reason=reason, turn=turn)

    spec = tools.get(requested)
    if spec is None:
        return deny(f"unknown tool {requested!r}")
    if requested not in agent.tools:
        return deny(f"tool {requested!r} is not allowed for role {agent.role!r}")
    lacking = set(spec.scopes) - set(agent.scopes)
    if lacking:
        return deny(f"role {agent.role!r} lacks scopes {sorted(lacking)} for {requested!r}")
    if not may_read(clearance, spec.clearance):
        return deny(f"{requested!r} returns {spec.clearance} results, above clearance {clearance}")

    blocked: dict[str, str] = {}
    candidates = [
        name
        for name in agent.tools
        if tools[name].capability == spec.capability and may_read(clearance, tools[name].clearance)
    ]
    for name in sorted(candidates, key=lambda n: (tools[n].cost_usd, n != requested, n)):
        tool = tools[name]
        if calls.get(name, 0) >= tool.quota_per_run:
            blocked[name] = f"quota of {tool.quota_per_run} per run used"
        elif cost_left_usd is not None and tool.cost_usd > cost_left_usd:
            blocked[name] = f"costs ${tool.cost_usd}, ${cost_left_usd:.6f} left"
        elif name in open_breakers:
            blocked[name] = "breaker open"
        else:
            reason = "allowed"
            if name != requested:
                why = blocked.get(requested, "costs more")
                reason = f"{requested}: {why}; using {name} for {spec.capability!r}"
            return ToolDecision(
                requested=requested, allowed=True, tool=name, reason=reason, turn=turn
            )
    details = "; ".join(f"{n}: {why}" for n, why in blocked.items())
    return deny(f"no {spec.capability!r} tool available ({details})")
