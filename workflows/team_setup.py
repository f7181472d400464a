"""What a team run settles before its first node: rubric, data route and round policy.

All of it is read from the contract snapshot the run records, so a replay decides
the same; an unknown rubric, or no namespace the caller may read, ends the run here.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from keel.graphs.team_rounds import TeamRounds
    from keel.payloads.contracts import AgentSpec, ContractSnapshot, FlowQuality, Rubric
    from keel.payloads.coordinator import CoordinatorInput, CoordinatorProgress
    from keel.payloads.errors import NO_READABLE_NAMESPACE, UNKNOWN_AGENT, UNKNOWN_RUBRIC
    from keel.routing.data import no_readable_namespace, route_data
    from workflows.contract_snapshot import load_contracts
    from workflows.team_gates import TeamGates

FLOW = "report"


@dataclass
class TeamSetup:
    contracts: ContractSnapshot
    rubric: Rubric
    quality: FlowQuality
    rounds: TeamRounds


async def team_setup(
    request: CoordinatorInput, gates: TeamGates, progress: CoordinatorProgress
) -> TeamSetup:
    """The contracts recorded, the rubric named, the data route shown on `progress`."""
    contracts = await load_contracts()
    rubric = contracts.rubrics.get(request.rubric)
    if rubric is None:
        raise ApplicationError(
            f"no rubric {request.rubric!r} in rubrics.toml", type=UNKNOWN_RUBRIC, non_retryable=True
        )
    route = route_data(
        request.request, contracts.routes.namespaces, request.clearance, version=request.version
    )
    progress.data_route = route
    if not route.namespaces and gates.refuses_without_namespace():
        raise ApplicationError(
            no_readable_namespace(request.clearance, route.excluded),
            type=NO_READABLE_NAMESPACE,
            non_retryable=True,
        )
    quality = contracts.quality.flow(FLOW)
    rounds = TeamRounds(
        max_rounds=request.max_rounds,
        max_rewrites=quality.max_rewrites,
        require_approval=request.require_approval,
    )
    return TeamSetup(contracts, rubric, quality, rounds)


def coordinator_spec(contracts: ContractSnapshot | None) -> AgentSpec:
    """The coordinator agent of the recorded contracts; read when the plan starts, after the
    run says it is planning, as it always was."""
    assert contracts is not None  # recorded before the first node
    spec = contracts.agents.get("coordinator")
    if spec is None:
        raise ApplicationError(
            "no coordinator agent in agents.toml", type=UNKNOWN_AGENT, non_retryable=True
        )
    return spec
