"""What keel adds to an MCP tool call, against a direct call to the same server.

The server is the official `mcp-server-time` (stdio), its tool `get_current_time`.
Direct: the worker's own MCP session code (activities/tools/mcp_servers.py), called in
a loop with no Temporal in between. Through keel: a workflow makes the same calls one
after another as the `call_tool` activity every agent and flow uses (policy checks,
schema check, heartbeat, result bounds, recorded in history), on the project's
workers. Reported per call: the direct call, the activity from scheduled to completed
in the history, and the wall time per call of the whole workflow (which adds the
workflow task between calls), each with what it adds over the direct call.

Each is measured twice in the same run: with the tool's breaker as the worker asks it
(activities/tools/tool_breakers.py: not asked again while it was seen closed under a
second ago, a success told without waiting) and with the breaker asked and awaited on
every call, both ways, as before that: two updates of the breaker's entity workflow
per call.

The target: at most 15 ms added per call.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from activities.contracts.loader import CONTRACTS_DIR, load_contracts
from activities.tools.mcp_servers import McpServers
from activities.tools.tool_breakers import ToolBreakers
from harness.bench.common import Context, Section, median, ms
from harness.bench.workflows import ToolCallsWorkflow
from keel.payloads.contracts import ContractSnapshot

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


def _breakers(exact: bool) -> Any:
    """Workers built meanwhile ask their tools' breakers exactly (every call) or not."""
    made = functools.partial(ToolBreakers, exact=exact)
    return mock.patch("activities.tools.activities.ToolBreakers", made)


async def _through_keel(
    ctx: Context, snapshot: ContractSnapshot, runs: int, exact: bool
) -> tuple[float, float, float]:
    """Median seconds per call: the activity in the history, its part on the worker,
    and the workflow's wall."""
    activity: list[tuple[float, float]] = []
    walls: list[float] = []
    with _breakers(exact):
        workers = ctx.workers(contracts=snapshot, extra_workflows=[ToolCallsWorkflow])
        async with workers as settings:
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
    return median([a for a, _ in activity]), median([r for _, r in activity]), median(walls)


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
    exact_a, exact_r, exact_w = map(ms, await _through_keel(ctx, snapshot, runs, exact=True))
    a, r, w = map(ms, await _through_keel(ctx, snapshot, runs, exact=False))
    d = ms(median(direct))
    rows = [
        ["direct call (the same MCP session code)", f"{d:.2f}", "-"],
        ["call_tool activity, scheduled to completed", f"{a:.2f}", f"{a - d:+.2f}"],
        ["  of it on the worker, started to completed", f"{r:.2f}", f"{r - d:+.2f}"],
        ["per call in a workflow (wall / calls)", f"{w:.2f}", f"{w - d:+.2f}"],
        ["  breaker asked every call: activity", f"{exact_a:.2f}", f"{exact_a - d:+.2f}"],
        ["  breaker asked every call: on the worker", f"{exact_r:.2f}", f"{exact_r - d:+.2f}"],
        ["  breaker asked every call: per call", f"{exact_w:.2f}", f"{exact_w - d:+.2f}"],
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
            "worker_ms": r,
            "exact_breaker_activity_ms": exact_a,
            "exact_breaker_worker_ms": exact_r,
            "exact_breaker_per_call_ms": exact_w,
            "target_added_ms": TARGET_MS,
            "meets_target": w - d <= TARGET_MS,
        },
        notes=[f"target: at most {TARGET_MS:.0f} ms added per call (the workflow's figure)"],
    )


async def _activity_seconds(handle: WorkflowHandle[Any, Any]) -> list[tuple[float, float]]:
    """Scheduled to completed, and started to completed (the worker's part), per call,
    from the run's own history."""
    history = await handle.fetch_history()
    at: dict[int, float] = {}
    seconds = []
    for event in history.events:
        at[event.event_id] = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            end = at[event.event_id]
            seconds.append((end - at[done.scheduled_event_id], end - at[done.started_event_id]))
    return seconds
