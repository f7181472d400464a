"""1. Per-step overhead of the research flow against the floor and the LangGraph peer.

    python -m harness.bench --only step [--runs 10] [--latencies 0 500]

One flow at a time, the scripted model at a fixed latency per call. The floor makes
the same calls with the same routing in plain asyncio; the peer runs the same graph
in LangGraph with its SQLite checkpointer. Overhead per step is (wall - floor) / 7
steps; the Temporal side is also split per node from the history's timestamps
(each node's entry is recorded as a search-attribute upsert), which shows where the
time goes: Rule nodes run inside a workflow task and cost nothing, every activity
node costs a round trip through the server.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import defaultdict
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from harness.bench.common import (
    STEPS_PER_FLOW,
    Context,
    Section,
    Stopwatch,
    bench_settings,
    gateway_for,
    median,
    ms,
    research_input,
    running_workers,
)
from harness.bench.langgraph_peer import checkpointed, run_langgraph
from harness.bench.plain_flow import ResearchNodes, run_plain
from harness.bench.workflows import UpsertingResearchWorkflow
from keel.graphs.research import RESEARCH_GRAPH
from workflows.search_attributes import RESEARCH_NODE


def node_durations(history: WorkflowHistory) -> tuple[dict[str, float], float]:
    """Seconds spent in each node, and from the start event to the first node.

    A node is entered when the workflow task that upserts its `ResearchNode` is
    completed; it ends when the next node is entered (or the run completes). The flow
    itself shows its node in its current details, which leave no event, so the bench
    times the variant that upserts per node (one event per node more).
    """
    started = 0.0
    marks: list[tuple[str, float]] = []
    for event in history.events:
        at = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = at
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            payload = fields.indexed_fields.get(RESEARCH_NODE.name)
            if payload is not None:
                marks.append((json.loads(payload.data), at))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            marks.append(("", at))
    durations: dict[str, float] = defaultdict(float)
    for (node, at), (_, after) in itertools.pairwise(marks):
        durations[node] += after - at
    return dict(durations), (marks[0][1] - started) if marks else 0.0


async def _temporal_runs(ctx: Context, latency: int, runs: int) -> dict[str, Any]:
    settings = bench_settings(ctx.scripts)
    walls: list[float] = []
    per_node: dict[str, list[float]] = defaultdict(list)
    first_task: list[float] = []
    async with running_workers(
        ctx.client, ctx.store, settings, extra_workflows=[UpsertingResearchWorkflow]
    ):
        for i in range(runs + 1):  # the first run warms caches and is dropped
            watch = Stopwatch()
            handle = await ctx.client.start_workflow(
                UpsertingResearchWorkflow.run,
                research_input(latency, settings),
                id=f"bench-step-{latency}-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
            )
            await handle.result()
            wall = watch.elapsed()
            if not i:
                continue
            walls.append(wall)
            durations, to_first = node_durations(await handle.fetch_history())
            first_task.append(to_first)
            for node, seconds in durations.items():
                per_node[node].append(seconds)
    return {
        "wall": walls,
        "nodes": {n: median(v) for n, v in per_node.items()},
        "to_first_node": median(first_task),
    }


async def _floor_runs(ctx: Context, latency: int, runs: int) -> dict[str, Any]:
    settings = bench_settings(ctx.scripts)
    request = research_input(latency, settings)
    walls: list[float] = []
    per_node: dict[str, list[float]] = defaultdict(list)
    nodes = ResearchNodes(gateway_for(settings), ctx.store, request)
    for i in range(runs + 1):
        timings: dict[str, float] = {}
        watch = Stopwatch()
        await run_plain(nodes, request, timings)
        if i:
            walls.append(watch.elapsed())
            for node, seconds in timings.items():
                per_node[node].append(seconds)
    return {"wall": walls, "nodes": {n: median(v) for n, v in per_node.items()}}


async def _langgraph_runs(ctx: Context, latency: int, runs: int) -> dict[str, Any]:
    settings = bench_settings(ctx.scripts)
    request = research_input(latency, settings)
    walls: list[float] = []
    nodes = ResearchNodes(gateway_for(settings), ctx.store, request)
    async with checkpointed(nodes, ctx.workdir / f"langgraph-step-{latency}.db") as graph:
        for i in range(runs + 1):
            watch = Stopwatch()
            await run_langgraph(graph, request, uuid.uuid4().hex)
            if i:
                walls.append(watch.elapsed())
    return {"wall": walls}


async def measure(ctx: Context, runs: int = 5, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "steps_per_flow": STEPS_PER_FLOW, "latencies": {}}
    for latency in latencies:
        floor = await _floor_runs(ctx, latency, runs)
        temporal = await _temporal_runs(ctx, latency, runs)
        peer = await _langgraph_runs(ctx, latency, runs)
        base = median(floor["wall"])
        figures: dict[str, Any] = {"floor_ms": ms(base)}
        for name, result in (("temporal", temporal), ("langgraph", peer)):
            # Median over runs of each run's overhead against the floor's median.
            per_step = median([(w - base) / STEPS_PER_FLOW for w in result["wall"]])
            share = median([(w - base) / w for w in result["wall"]])
            wall = median(result["wall"])
            figures[name] = {
                "wall_ms": ms(wall),
                "overhead_per_step_ms": ms(per_step),
                "overhead_share": round(share, 4),
            }
            rows.append(
                [
                    f"{latency} ms",
                    name,
                    f"{ms(wall):.1f}",
                    f"{ms(base):.1f}",
                    f"{ms(per_step):.1f}",
                    f"{share:.1%}",
                ]
            )
        kinds: dict[str, list[float]] = defaultdict(list)
        per_node: dict[str, float] = {}
        for node, seconds in temporal["nodes"].items():
            overhead = seconds - floor["nodes"].get(node, 0.0)
            per_node[node] = ms(overhead)
            kinds[RESEARCH_GRAPH.node(node).kind.value].append(overhead)
        figures["temporal"]["per_node_overhead_ms"] = per_node
        figures["temporal"]["per_kind_overhead_ms"] = {k: ms(median(v)) for k, v in kinds.items()}
        figures["temporal"]["start_to_first_node_ms"] = ms(temporal["to_first_node"])
        data["latencies"][str(latency)] = figures
    kinds_line = "; ".join(
        f"{lat} ms: "
        + ", ".join(f"{k} {v} ms" for k, v in f["temporal"]["per_kind_overhead_ms"].items())
        for lat, f in data["latencies"].items()
    )
    return Section(
        name="step_overhead",
        title=f"1. Per-step overhead, one research flow at a time ({runs} runs, median)",
        headers=["model latency", "system", "wall ms", "floor ms", "overhead/step ms", "share"],
        rows=rows,
        data=data,
        notes=[f"Temporal overhead per node kind (history timestamps): {kinds_line}"],
    )
