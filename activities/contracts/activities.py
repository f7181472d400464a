"""The worker's validated contracts, handed to workflows as a recorded activity result.

A run reads its contracts once, through this activity, so a replay sees the
same agents, tools and routes even after the files have changed.
"""

from __future__ import annotations

from temporalio import activity

from models.contracts import ContractSnapshot


class ContractActivities:
    def __init__(self, contracts: ContractSnapshot) -> None:
        self._contracts = contracts

    @activity.defn(name="load_contracts")
    async def snapshot(self) -> ContractSnapshot:
        return self._contracts
