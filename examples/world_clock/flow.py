"""WorldClockFlow: a flow of one's own, on an MCP server's tool and a Python tool.

For each timezone it reads the clock through `mcp-server-time`'s `get_current_time`
and asks the Python tool `office_hours` what that means. Both are tools of the
contracts, so each call goes through keel's ToolRouter under the `world_clock` role
(its allow-list, scopes, quotas and clearance) and runs as the `call_tool` activity:
recorded, heartbeating, retried by kind of failure. The worker runs it beside keel's
own flows: `worker.py --flow examples.world_clock.flow:WorldClockFlow`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.tools.activities import ToolActivities
    from keel.graphs.policies import HEARTBEAT_TIMEOUT, TOOL_RETRY, TOOL_TIMEOUT
    from keel.payloads.contracts import ContractSnapshot
    from keel.payloads.tools import ToolInvocation
    from keel.routing.tools import route_tool
    from workflows.contract_snapshot import load_contracts

ROLE = "world_clock"  # the agent table whose allow-list and scopes the flow's calls use


class WorldClockInput(BaseModel):
    timezones: list[str] = Field(min_length=1, max_length=10, description="IANA names")


class WorldClockReport(BaseModel):
    lines: list[str] = Field(description="one per timezone: its time and whether it is open")
    refused: list[str] = Field(
        default_factory=list, description="calls the policy refused, or the tool could not answer"
    )


@workflow.defn(name="WorldClockFlow")
class WorldClockFlow:
    def __init__(self) -> None:
        self._calls: dict[str, int] = {}
        self._refused: list[str] = []

    @workflow.run
    async def run(self, request: WorldClockInput) -> WorldClockReport:
        contracts = await load_contracts()
        lines = []
        for zone in request.timezones:
            reading = await self._tool(contracts, "get_current_time", {"timezone": zone})
            if reading is None:
                continue
            verdict = await self._tool(contracts, "office_hours", {"reading": reading})
            lines.append(verdict or f"{zone}: {reading}")
        return WorldClockReport(lines=lines, refused=self._refused)

    async def _tool(
        self, contracts: ContractSnapshot, tool: str, arguments: dict[str, Any]
    ) -> str | None:
        """One call under the role's policy; None when the router refused it, or the tool
        failed or answered with its own error."""
        decision = route_tool(
            tool,
            contracts.agents[ROLE],
            contracts.tools,
            calls=self._calls,
            cost_left_usd=None,
        )
        if not decision.allowed or decision.tool is None:
            self._refused.append(decision.reason)
            return None
        self._calls[tool] = self._calls.get(tool, 0) + 1
        call = ToolInvocation(
            tool=decision.tool,
            arguments=arguments,
            idempotency_key=f"{workflow.info().workflow_id}:{tool}-{self._calls[tool]}",
        )
        try:
            outcome = await workflow.execute_activity_method(
                ToolActivities.call,
                call,
                start_to_close_timeout=TOOL_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=TOOL_RETRY,
                summary=f"{tool} {self._calls[tool]}",
            )
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise
            cause = error.cause
            self._refused.append(
                cause.message if isinstance(cause, ApplicationError) else str(cause)
            )
            return None
        if outcome.is_error:  # the tool's own answer that it could not (an unknown zone)
            self._refused.append(outcome.text)
            return None
        return outcome.text
