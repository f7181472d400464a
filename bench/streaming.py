"""What watching a run live costs a research flow, and what it costs its history.

The same flow (7 steps, 3 model calls at the scripted model's latency) runs three
ways on one server and one set of workers, alternating so that drift in the
machine's load falls on all three: `off` (nobody watches, no token deltas: how the
bench and API callers run), `steps` (a watcher follows the run's channel; steps
only) and `tokens` (a watcher, and the model's output streamed as it is written,
what `client.py research` does on a terminal). Reported per way: the flow's wall
time from start to result, its history events and signals, and for `tokens` how
long the first piece of the answer took from the model to the watcher.

The target: streaming adds at most 3 % to the flow's wall time at 500 ms latency.
"""

from __future__ import annotations

import asyncio
import functools
import io
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType

from bench.common import (
    Context,
    Section,
    Stopwatch,
    median,
    ms,
    research_input,
    side_by_side,
)
from cli.live import LiveView, follow
from workflows.research import ResearchWorkflow

TARGET_SHARE = 0.03
WAYS = ("off", "steps", "tokens")


async def _one(ctx: Context, settings: Any, latency: int, way: str) -> dict[str, float]:
    request = research_input(latency, settings).model_copy(
        update={"stream_tokens": way == "tokens"}
    )
    workflow_id = f"bench-stream-{way}-{uuid.uuid4().hex[:8]}"
    view = LiveView(out=io.StringIO())
    watch = Stopwatch()
    handle = await ctx.client.start_workflow(
        ResearchWorkflow.run, request, id=workflow_id, task_queue=settings.task_queue
    )
    watcher = asyncio.ensure_future(follow(ctx.client, workflow_id, view)) if way != "off" else None
    await handle.result()
    wall = watch.elapsed()
    if watcher is not None:
        await asyncio.wait_for(watcher, 30)
    history = await handle.fetch_history()
    signals = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )
    return {"wall": wall, "events": len(history.events), "signals": signals}


async def _runs(
    ctx: Context, settings: Any, latency: int, way: str, runs: int
) -> list[dict[str, float]]:
    return [await _one(ctx, settings, latency, way) for _ in range(runs)]


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "target_share": TARGET_SHARE, "latencies": {}}
    async with ctx.workers() as settings:
        for latency in latencies:
            await _one(ctx, settings, latency, "tokens")  # warm-up
            # One run of each way in turn.
            batches = await side_by_side(
                WAYS, runs, functools.partial(_runs, ctx, settings, latency), batch_size=1
            )
            results = {way: [r for batch in batches[way] for r in batch] for way in WAYS}
            figures: dict[str, Any] = {}
            off_wall = median([r["wall"] for r in results["off"]])
            for way in WAYS:
                wall = median([r["wall"] for r in results[way]])
                figures[way] = {
                    "wall_ms": ms(wall),
                    "wall_share": round((wall - off_wall) / off_wall, 4),
                    "events": median([r["events"] for r in results[way]]),
                    "signals": median([r["signals"] for r in results[way]]),
                }
            share = figures["tokens"]["wall_share"]
            figures["target_met"] = share <= TARGET_SHARE
            data["latencies"][str(latency)] = figures
            for way in WAYS:
                f = figures[way]
                rows.append(
                    [
                        f"{latency} ms",
                        way,
                        f"{f['wall_ms']:.1f}",
                        f"{f['wall_share']:+.1%}",
                        f"{f['events']:.0f}",
                        f"{f['signals']:.0f}",
                    ]
                )
    return Section(
        name="streaming",
        title=f"9. Live runs: nobody watching, steps watched, answer streamed "
        f"({runs} runs each, median)",
        headers=["model latency", "way", "wall ms", "vs off", "history events", "signals"],
        rows=rows,
        data=data,
        notes=[
            f"Target: streaming (`tokens`) adds at most {TARGET_SHARE:.0%} to the flow's wall"
            " time at 500 ms. Steps cost no events of their own; a watcher's polls are"
            " updates (events), token deltas are batched signals (events)."
        ],
    )
