"""1. Per-step overhead of the research flow against the floor and the LangGraph peer.

    python -m harness.bench --only step [--runs 10] [--latencies 0 500]

One flow at a time, the scripted model at a fixed latency per call. The floor makes
the same calls with the same routing in plain asyncio; the peer runs the same graph
in LangGraph with its SQLite checkpointer. Overhead per step is (wall - floor) / 7
steps. Three Temporal rows: the flow as users run it (model calls on their own
queue), the same flow with one queue for workflows and model calls (the orchestration
worker takes each call with the workflow task that scheduled it), and a variant that
upserts its node at every step (what this bench timed before), whose history splits
the time per node: Rule nodes run inside a workflow task and cost nothing, every
activity node costs a round trip through the server. A model call's overhead is its
scheduled-to-completed span in the flow's history less the floor's time in that node.
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
from keel.graphs.machine import NodeKind
from keel.graphs.research import RESEARCH_GRAPH
from keel.infra.settings import WorkerSettings
from workflows.research import ResearchWorkflow
from workflows.search_attributes import RESEARCH_NODE

MODEL_CALL = "complete_llm"


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


def model_call_spans(history: WorkflowHistory) -> list[float]:
    """Seconds from each model call's scheduling to its completion, in order.

    An LLM node's overhead over the model call itself is this span less the call.
    """
    scheduled: dict[int, float] = {}
    spans: list[float] = []
    for event in history.events:
        at = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == MODEL_CALL:
                scheduled[event.event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            began = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if began is not None:
                spans.append(at - began)
    return spans


async def _one_flow(
    ctx: Context, flow: Any, latency: int, settings: WorkerSettings
) -> tuple[float, WorkflowHistory]:
    watch = Stopwatch()
    handle = await ctx.client.start_workflow(
        flow,
        research_input(latency, settings),
        id=f"bench-step-{latency}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    await handle.result()
    wall = watch.elapsed()
    return wall, await handle.fetch_history()


async def _temporal_runs(
    ctx: Context, latency: int, runs: int, one_queue: bool = False
) -> dict[str, Any]:
    """The flow as users run it, and beside it (in turn) the variant that upserts its
    node at every step, whose history gives the split per node."""
    settings = bench_settings(ctx.scripts, one_queue=one_queue)
    walls: list[float] = []
    upserting: list[float] = []
    spans: list[list[float]] = []
    per_node: dict[str, list[float]] = defaultdict(list)
    first_task: list[float] = []
    flows = (ResearchWorkflow.run, UpsertingResearchWorkflow.run)
    async with running_workers(
        ctx.client, ctx.store, settings, extra_workflows=[UpsertingResearchWorkflow]
    ):
        for i in range(runs + 1):  # the first round warms caches and is dropped
            timed = {}
            for flow in flows if i % 2 else reversed(flows):
                timed[flow] = await _one_flow(ctx, flow, latency, settings)
            if not i:
                continue
            wall, history = timed[ResearchWorkflow.run]
            walls.append(wall)
            spans.append(model_call_spans(history))
            upserting.append(timed[UpsertingResearchWorkflow.run][0])
            durations, to_first = node_durations(timed[UpsertingResearchWorkflow.run][1])
            first_task.append(to_first)
            for node, seconds in durations.items():
                per_node[node].append(seconds)
    return {
        "wall": walls,
        "upserting_wall": upserting,
        "model_call_spans": spans,
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


def _llm_overhead(spans: list[list[float]], floor_nodes: dict[str, float]) -> float:
    """Median over every model call of its scheduled-to-completed span less the floor's
    time in the same node (the call itself)."""
    calls = [n for n in floor_nodes if RESEARCH_GRAPH.node(n).kind == NodeKind.LLM]
    return median(
        [span - floor_nodes[node] for run in spans for span, node in zip(run, calls, strict=False)]
    )


def _figures(
    base: float, latency: int, walls: dict[str, list[float]], rows: list[list[str]]
) -> dict[str, Any]:
    """Each system's wall, overhead per step and share against the floor; a row each."""
    figures: dict[str, Any] = {"floor_ms": ms(base)}
    for name, wall_list in walls.items():
        # Median over runs of each run's overhead against the floor's median.
        per_step = median([(w - base) / STEPS_PER_FLOW for w in wall_list])
        share = median([(w - base) / w for w in wall_list])
        wall = median(wall_list)
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
    langgraph = figures["langgraph"]["overhead_per_step_ms"]
    for name in walls:
        if langgraph > 0:
            figures[name]["vs_langgraph"] = round(
                figures[name]["overhead_per_step_ms"] / langgraph, 2
            )
    return figures


async def measure(ctx: Context, runs: int = 5, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "steps_per_flow": STEPS_PER_FLOW, "latencies": {}}
    notes: list[str] = []
    for latency in latencies:
        floor = await _floor_runs(ctx, latency, runs)
        temporal = await _temporal_runs(ctx, latency, runs)
        one_queue = await _temporal_runs(ctx, latency, runs, one_queue=True)
        peer = await _langgraph_runs(ctx, latency, runs)
        walls = {
            "temporal": temporal["wall"],
            "temporal, one queue": one_queue["wall"],
            "temporal, node upserts": temporal["upserting_wall"],
            "langgraph": peer["wall"],
        }
        figures = _figures(median(floor["wall"]), latency, walls, rows)
        for name, result in (("temporal", temporal), ("temporal, one queue", one_queue)):
            overhead = ms(_llm_overhead(result["model_call_spans"], floor["nodes"]))
            figures[name]["llm_call_overhead_ms"] = overhead
            notes.append(
                f"{latency} ms, {name}: a model call's scheduled-to-completed"
                f" less the call, {overhead} ms"
            )
        kinds: dict[str, list[float]] = defaultdict(list)
        per_node: dict[str, float] = {}
        for node, seconds in temporal["nodes"].items():
            overhead = seconds - floor["nodes"].get(node, 0.0)
            per_node[node] = ms(overhead)
            kinds[RESEARCH_GRAPH.node(node).kind.value].append(overhead)
        upserts = figures["temporal, node upserts"]
        upserts["per_node_overhead_ms"] = per_node
        upserts["per_kind_overhead_ms"] = {k: ms(median(v)) for k, v in kinds.items()}
        upserts["start_to_first_node_ms"] = ms(temporal["to_first_node"])
        data["latencies"][str(latency)] = figures
    kinds_line = "; ".join(
        f"{lat} ms: "
        + ", ".join(
            f"{k} {v} ms" for k, v in f["temporal, node upserts"]["per_kind_overhead_ms"].items()
        )
        for lat, f in data["latencies"].items()
    )
    return Section(
        name="step_overhead",
        title=f"1. Per-step overhead, one research flow at a time ({runs} runs, median)",
        headers=["model latency", "system", "wall ms", "floor ms", "overhead/step ms", "share"],
        rows=rows,
        data=data,
        notes=[
            *notes,
            f"Overhead per node kind (node upserts' history timestamps): {kinds_line}",
        ],
    )
