"""The worker's validated contracts, handed to workflows as a recorded activity result.

A run reads its contracts once, through this activity, so a replay sees the
same agents, tools and routes even after the files have changed, and a run started
after an edit sees the edit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import activity

from keel.payloads.contracts import ContractSnapshot


class ContractActivities:
    def __init__(self, contracts: ContractSnapshot | Callable[[], ContractSnapshot]) -> None:
        """A fixed snapshot, or the worker's `ContractSource` read at each run's start."""
        self._contracts_of = contracts if callable(contracts) else lambda: contracts

    @activity.defn(name="load_contracts")
    async def snapshot(self) -> ContractSnapshot:
        """The contracts as they are when the run starts: the files are read again if one
        changed since the last run, and the last good ones stay if the edit is broken.

        Off the event loop: a reload starts the MCP servers to list their tools."""
        return await asyncio.to_thread(self._contracts_of)
