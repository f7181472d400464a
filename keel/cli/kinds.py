"""Every workflow type the worker runs, as the CLI names and treats it.

`list --type`, `status`, `watch`, `result` and `fork` read what a type offers here
(a progress query, a live channel, a report model), so a type the worker runs is
never one the commands do not know. `tests/test_cli_kinds.py` holds the two lists
together.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from keel.payloads.agents import AgentResult
from keel.payloads.coordinator import MultiAgentReport
from keel.payloads.research import ResearchReport
from keel.payloads.routing import AskResult
from keel.payloads.tickets import TicketSagaResult


@dataclass(frozen=True)
class Kind:
    """What the commands can ask of one workflow type."""

    workflow_type: str
    result: type[BaseModel] | None = None
    progress: bool = True  # answers a `progress` query
    live: bool = True  # publishes a live channel; otherwise `watch` follows its history
    final_node: str | None = None  # the node a delivered run ends in, for `list`
    forks: bool = False  # `fork` can run it again from one of its model calls


KINDS: dict[str, Kind] = {
    "research": Kind("ResearchWorkflow", ResearchReport, final_node="deliver", forks=True),
    "team": Kind("CoordinatorWorkflow", MultiAgentReport, final_node="delivered", forks=True),
    "agent": Kind("AgentWorkflow", AgentResult, forks=True),
    "saga": Kind("TicketSagaWorkflow", TicketSagaResult, live=False),
    "router": Kind("IntentRouterWorkflow", AskResult),
    "ingest": Kind("IngestWorkflow", progress=False, live=False),
    "breaker": Kind("CircuitBreakerWorkflow", progress=False, live=False),
    "ratelimit": Kind("RateLimiterWorkflow", progress=False, live=False),
    "budget": Kind("TenantBudgetWorkflow", progress=False, live=False),
}
# "report" is the team's older name; both stay accepted.
ALIASES = {"report": "team"}
TYPE_NAMES = sorted([*KINDS, *ALIASES])
# Runs a person looks for by default: not the entity runs (breakers, rate limits, tenant
# days), not the agents a team starts inside itself (`--type agent` or `--under` shows those).
DEFAULT_QUERY = (
    'WorkflowType != "CircuitBreakerWorkflow"'
    ' AND WorkflowType != "RateLimiterWorkflow"'
    ' AND WorkflowType != "TenantBudgetWorkflow"'
    ' AND (WorkflowType != "AgentWorkflow" OR ParentWorkflowId IS NULL)'
)


def kind_of(workflow_type: str) -> Kind | None:
    """The kind of a run by its type name; None for a type keel does not ship."""
    return next((k for k in KINDS.values() if k.workflow_type == workflow_type), None)


def by_name(name: str) -> Kind:
    return KINDS[ALIASES.get(name, name)]
