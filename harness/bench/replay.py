"""5. Replay: how long a worker takes to rebuild a workflow's state from its history.

    python -m harness.bench --only replay [--replay-events 100 1000 10000]

A worker replays a history whenever the workflow is not in its cache: after a crash,
a restart, an eviction, or on another worker. The histories are recorded by the
probe workflow making local-activity steps (one marker event each), so their length
is set by the step count; one real research-flow history is replayed as well.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, Worker

from harness.bench.activities import echo
from harness.bench.common import (
    Context,
    Section,
    Stopwatch,
    bench_converter,
    bench_settings,
    history_bytes,
    median,
    ms,
    research_input,
    running_workers,
)
from harness.bench.workflows import BENCH_WORKFLOWS, ProbeInput, ProbeWorkflow
from worker import WORKFLOWS
from workflows.research import ResearchWorkflow

# Events a probe run has besides its markers: start, workflow tasks, completion.
_FIXED_EVENTS = 8


async def _replay_seconds(history: WorkflowHistory, runs: int) -> float:
    replayer = Replayer(workflows=[*WORKFLOWS, *BENCH_WORKFLOWS], data_converter=bench_converter())
    times: list[float] = []
    for _ in range(runs):
        watch = Stopwatch()
        await replayer.replay_workflow(history)
        times.append(watch.elapsed())
    return median(times)


async def measure(
    ctx: Context, sizes: tuple[int, ...] = (100, 1_000, 10_000), runs: int = 3
) -> Section:
    histories: list[tuple[str, WorkflowHistory]] = []
    queue = f"bench-replay-{uuid.uuid4().hex[:8]}"
    async with Worker(ctx.client, task_queue=queue, workflows=BENCH_WORKFLOWS, activities=[echo]):
        for size in sizes:
            handle = await ctx.client.start_workflow(
                ProbeWorkflow.run,
                ProbeInput(kind="local_activity", steps=max(1, size - _FIXED_EVENTS), batch=50),
                id=f"bench-replay-{size}-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            await handle.result()
            histories.append((f"probe, {size:,} target", await handle.fetch_history()))
    settings = bench_settings(ctx.scripts)
    async with running_workers(ctx.client, ctx.store, settings):
        research = await ctx.client.start_workflow(
            ResearchWorkflow.run,
            research_input(0, settings),
            id=f"bench-replay-research-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
        await research.result()
        histories.append(("research flow", await research.fetch_history()))
    rows: list[list[str]] = []
    data: dict[str, Any] = {"histories": {}}
    for name, history in histories:
        seconds = await _replay_seconds(history, runs)
        events = len(history.events)
        data["histories"][name] = {
            "events": events,
            "bytes": history_bytes(history),
            "replay_ms": ms(seconds),
            "us_per_event": round(seconds / events * 1e6, 1),
        }
        rows.append(
            [
                name,
                f"{events:,}",
                f"{history_bytes(history) / 1024:.0f}",
                f"{ms(seconds):.1f}",
                f"{seconds / events * 1e6:.0f}",
            ]
        )
    return Section(
        name="replay",
        title=f"5. Replay time by history length (median of {runs})",
        headers=["history", "events", "KiB", "replay ms", "us/event"],
        rows=rows,
        data=data,
    )
