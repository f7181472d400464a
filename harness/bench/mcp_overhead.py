"""What keel adds to an MCP tool call, against a direct call to the same server.

The server is the official `mcp-server-time` (stdio), its tool `get_current_time`.
Direct: the worker's own MCP session code (activities/tools/mcp_servers.py), called in
a loop with no Temporal in between. Through keel: a workflow makes the same calls one
after another as the `call_tool` activity every agent and flow uses (policy checks,
schema check, heartbeat, result bounds, recorded in history), on the project's
workers. Reported per call: the direct call, the activity from scheduled to completed
in the history, and the wall time per call of the whole workflow (which adds the
workflow task between calls), each with what it adds over the direct call.

The target: at most 15 ms added per call.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from activities.contracts.loader import CONTRACTS_DIR, load_contracts
from activities.tools.mcp_servers import McpServers
from harness.bench.common import Context, Section, median, ms
from harness.bench.workflows import ToolCallsWorkflow

TARGET_MS = 15.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "world_clock"
CALLS = 20


def _contracts(workdir: Path) -> Path:
    """contracts/ with the example's time server and tools, as its README adds them."""
    folder = workdir / "mcp-contracts"
    if not folder.exists():
        shutil.copytree(CONTRACTS_DIR, folder)
        for name in ("tools.toml", "agents.toml"):
            with (folder / name).open("a") as contract:
                contract.write((EXAMPLE / name).read_text())
    return folder


async def _direct(servers: McpServers, calls: int) -> list[float]:
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        await servers.call("time", "get_current_time", {"timezone": "Europe/Paris"}, 20)
        seconds.append(time.perf_counter() - started)
    return seconds


async def measure(ctx: Context, runs: int = 10) -> Section:
    # The server is the venv's console script, as `make install` puts it there.
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    snapshot = load_contracts(_contracts(ctx.workdir))
    servers = McpServers(lambda: snapshot.servers)
    try:
        await _direct(servers, 5)  # the server's start and first calls
        direct = await _direct(servers, CALLS * runs)
    finally:
        await servers.close()
    activity: list[float] = []
    walls: list[float] = []
    async with ctx.workers(contracts=snapshot, extra_workflows=[ToolCallsWorkflow]) as settings:
        for i in range(runs + 1):
            handle = await ctx.client.start_workflow(
                ToolCallsWorkflow.run, CALLS, id=f"bench-mcp-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
            )  # fmt: skip
            started = time.perf_counter()
            await handle.result()
            wall = time.perf_counter() - started
            if i:  # the first run opens the worker's session
                walls.append(wall / CALLS)
                activity += await _activity_seconds(handle)
    d, a, w = ms(median(direct)), ms(median(activity)), ms(median(walls))
    rows = [
        ["direct call (the same MCP session code)", f"{d:.2f}", "-"],
        ["call_tool activity, scheduled to completed", f"{a:.2f}", f"{a - d:+.2f}"],
        ["per call in a workflow (wall / calls)", f"{w:.2f}", f"{w - d:+.2f}"],
    ]
    return Section(
        name="mcp",
        title=f"An MCP tool call through keel against a direct call ({CALLS} calls x {runs} runs)",
        headers=["per call", "median ms", "added ms"],
        rows=rows,
        data={
            "direct_ms": d,
            "activity_ms": a,
            "per_call_ms": w,
            "added_ms": round(w - d, 2),
            "target_added_ms": TARGET_MS,
            "meets_target": w - d <= TARGET_MS,
        },
        notes=[f"target: at most {TARGET_MS:.0f} ms added per call (the workflow's figure)"],
    )


async def _activity_seconds(handle: WorkflowHandle[Any, Any]) -> list[float]:
    """Scheduled to completed, per call, from the run's own history."""
    history = await handle.fetch_history()
    scheduled: dict[int, float] = {}
    seconds = []
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            seconds.append(at - scheduled[done.scheduled_event_id])
    return seconds
