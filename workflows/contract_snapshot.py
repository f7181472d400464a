"""Reading the contracts from workflow code: once per run, as a recorded activity result."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts.activities import ContractActivities
    from keel.graphs.policies import CONTRACTS_RETRY, CONTRACTS_TIMEOUT
    from keel.payloads.contracts import ContractSnapshot
    from workflows.recorded import Recorded, outcome

SNAPSHOT_ACTIVITY = "load_contracts"


async def load_contracts(recorded: Recorded | None = None) -> ContractSnapshot:
    """The contracts, or a forked child's original snapshot (workflows/recorded.py)."""
    taken = recorded.take(SNAPSHOT_ACTIVITY, "load contracts") if recorded else None
    if taken is not None:
        return outcome(taken, ContractSnapshot)
    return await workflow.execute_activity_method(
        ContractActivities.snapshot,
        start_to_close_timeout=CONTRACTS_TIMEOUT,
        retry_policy=CONTRACTS_RETRY,
        summary="load contracts",
    )


async def load_contracts_locally() -> ContractSnapshot:
    """The same snapshot as a local activity: recorded as a marker, no task queue trip.

    For a check at a run's start that must not delay the run's first step.
    """
    return await workflow.execute_local_activity_method(
        ContractActivities.snapshot,
        start_to_close_timeout=CONTRACTS_TIMEOUT,
        retry_policy=CONTRACTS_RETRY,
        summary="load contracts",
    )
