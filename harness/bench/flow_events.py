"""What a research flow writes to its history, and what an upsert per node would add.

    python -m harness.bench --only events

Releases before upserted a search attribute per node and per status (and carried a
patch marker per change, each with its own `TemporalChangeVersion` upsert); a run now
shows its node in the Web UI's current details and carries no marker. The flow and
the same flow with an upsert per node run here on the same workers, one after the
other in turn (ABAB), with the scripted model at each latency; reported per flow:
events by kind, workflow tasks, history bytes, wall time, and CPU of the server and
of this process (client and workers).

The target: a research flow of plan, search, write and review in at most 25 events.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType

from harness.bench.common import (
    Context,
    Section,
    bench_settings,
    median,
    ms,
    research_input,
    running_workers,
)
from harness.bench.machine import ProcessSampler, worker_and_server
from harness.bench.workflows import UpsertingResearchWorkflow
from harness.soak.run import history_figures
from keel.infra.settings import WorkerSettings
from workflows.research import ResearchWorkflow

TARGET_EVENTS = 25
FLOWS = {"upsert per node": UpsertingResearchWorkflow.run, "current": ResearchWorkflow.run}
KINDS = {
    "upserts": EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    "markers": EventType.EVENT_TYPE_MARKER_RECORDED,
    "workflow_tasks": EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


async def _one(ctx: Context, flow: str, latency: int, settings: WorkerSettings) -> dict[str, Any]:
    """One run of a flow: its history's figures, wall time and CPU."""
    async with ProcessSampler(worker_and_server(ctx.client)) as sampler:
        started = time.perf_counter()
        handle = await ctx.client.start_workflow(
            FLOWS[flow],
            research_input(latency, settings),
            id=f"bench-events-{flow.replace(' ', '-')}-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
        await handle.result()
        wall = time.perf_counter() - started
    history = await handle.fetch_history()
    kinds = Counter(event.event_type for event in history.events)
    return {
        "events": len(history.events),
        **{name: kinds[kind] for name, kind in KINDS.items()},
        "bytes": history_figures(history)["bytes"],
        "wall": wall,
        **sampler.cpu,
    }


def _rows(latency: int, figures: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f"{latency} ms",
            flow,
            f"{f['events']:.0f}",
            f"{f['upserts']:.0f}",
            f"{f['markers']:.0f}",
            f"{f['workflow_tasks']:.0f}",
            f"{f['bytes'] / 1024:.1f}",
            f"{ms(f['wall']):.1f}",
            f"{ms(f['server']):.1f}",
            f"{ms(f['worker']):.1f}",
        ]
        for flow, f in figures.items()
    ]


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    settings = bench_settings(ctx.scripts)
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "target_events": TARGET_EVENTS, "latencies": {}}
    async with running_workers(
        ctx.client, ctx.store, settings, extra_workflows=[UpsertingResearchWorkflow]
    ):
        for latency in latencies:
            samples: dict[str, list[dict[str, Any]]] = {flow: [] for flow in FLOWS}
            for i in range(runs + 1):
                for flow in FLOWS:
                    sample = await _one(ctx, flow, latency, settings)
                    if i:  # the first round warms the workers up
                        samples[flow].append(sample)
            figures = {
                flow: {key: median([s[key] for s in got]) for key in got[0]}
                for flow, got in samples.items()
            }
            data["latencies"][str(latency)] = {
                flow: {k: ms(v) if k in ("wall", "server", "worker") else v for k, v in f.items()}
                for flow, f in figures.items()
            }
            data["latencies"][str(latency)]["target_met"] = (
                figures["current"]["events"] <= TARGET_EVENTS
            )
            rows.extend(_rows(latency, figures))
    return Section(
        name="flow_events",
        title=f"10. A research flow's history, with an upsert per node and now ({runs} runs"
        " each, alternating, median)",
        headers=[
            "model latency",
            "flow",
            "events",
            "upserts",
            "markers",
            "workflow tasks",
            "history KiB",
            "wall ms",
            "server CPU ms",
            "worker CPU ms",
        ],
        rows=rows,
        data=data,
        notes=[
            f"Target: at most {TARGET_EVENTS} events for plan, search, write and review."
            " `upsert per node` is the same flow showing progress as releases before did"
            " (an upsert per node and status); `current` shows its node in the Web UI's"
            " current details and carries no patch marker."
        ],
    )
