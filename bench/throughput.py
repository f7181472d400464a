"""2. Throughput: N research flows started at once on one worker.

    python -m bench --only throughput [--flows 1 10 100]

All N flows start together and the clock stops when the last one finishes; flows
per minute and steps per second follow from that wall time. The model stands for a
remote API, so its concurrency is N on every side (the worker's model queue, the
floor's and the peer's thread pools).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import (
    STEPS_PER_FLOW,
    Context,
    ProcessSampler,
    Section,
    Stopwatch,
    bench_settings,
    gateway_for,
    research_input,
    running_workers,
    server_pid,
)
from bench.langgraph_peer import checkpointed, run_langgraph
from bench.plain_flow import ResearchNodes, run_plain
from workflows.research import ResearchWorkflow

Cpu = dict[str, float]


async def _temporal(ctx: Context, latency: int, flows: int) -> tuple[float, Cpu]:
    """Wall seconds, and CPU seconds of the worker process (this one) and the server."""
    settings = bench_settings(ctx.scripts, llm_concurrency=flows)
    pids = {"worker": os.getpid()}
    server = server_pid()
    if server is not None:
        pids["server"] = server
    async with running_workers(ctx.client, ctx.store, settings):
        # One flow first, so the worker's caches are warm as in a long-lived worker.
        await ctx.client.execute_workflow(
            ResearchWorkflow.run,
            research_input(0, settings),
            id=f"bench-warm-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
        async with ProcessSampler(pids) as cpu:
            watch = Stopwatch()
            handles = await asyncio.gather(
                *(
                    ctx.client.start_workflow(
                        ResearchWorkflow.run,
                        research_input(latency, settings),
                        id=f"bench-tp-{latency}-{flows}-{i}-{uuid.uuid4().hex[:6]}",
                        task_queue=settings.task_queue,
                    )
                    for i in range(flows)
                )
            )
            await asyncio.gather(*(h.result() for h in handles))
            wall = watch.elapsed()
    return wall, cpu.cpu


async def _floor(ctx: Context, latency: int, flows: int) -> tuple[float, Cpu]:
    settings = bench_settings(ctx.scripts)
    request = research_input(latency, settings)
    with ThreadPoolExecutor(flows) as executor:
        nodes = ResearchNodes(gateway_for(settings), ctx.store, executor, request)
        await run_plain(nodes, research_input(0, settings))
        watch = Stopwatch()
        await asyncio.gather(*(run_plain(nodes, request) for _ in range(flows)))
        return watch.elapsed(), {}


async def _langgraph(ctx: Context, latency: int, flows: int) -> tuple[float, Cpu]:
    settings = bench_settings(ctx.scripts)
    request = research_input(latency, settings)
    with ThreadPoolExecutor(flows) as executor:
        nodes = ResearchNodes(gateway_for(settings), ctx.store, executor, request)
        database = ctx.workdir / f"langgraph-tp-{latency}-{flows}.db"
        async with checkpointed(nodes, database) as graph:
            await run_langgraph(graph, research_input(0, settings), uuid.uuid4().hex)
            watch = Stopwatch()
            await asyncio.gather(
                *(run_langgraph(graph, request, uuid.uuid4().hex) for _ in range(flows))
            )
            return watch.elapsed(), {}


async def measure(
    ctx: Context, flows: tuple[int, ...] = (1, 10, 100), latencies: tuple[int, ...] = (0, 500)
) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"results": {}}
    for latency in latencies:
        for n in flows:
            figures: dict[str, Any] = {}
            for name, run in (
                ("floor", _floor),
                ("temporal", _temporal),
                ("langgraph", _langgraph),
            ):
                wall, cpu = await run(ctx, latency, n)
                figures[name] = {
                    "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
                    "wall_s": round(wall, 3),
                    "flows_per_min": round(n / wall * 60, 1),
                    "steps_per_s": round(n * STEPS_PER_FLOW / wall, 1),
                }
            for name in ("temporal", "langgraph"):
                ratio = figures[name]["flows_per_min"] / figures["floor"]["flows_per_min"]
                figures[name]["of_floor"] = round(ratio, 3)
            data["results"][f"{latency}ms_n{n}"] = figures
            for name, f in figures.items():
                rows.append(
                    [
                        f"{latency} ms",
                        str(n),
                        name,
                        f"{f['wall_s']:.2f}",
                        f"{f['flows_per_min']:.0f}",
                        f"{f['steps_per_s']:.0f}",
                        f"{f.get('of_floor', 1.0):.0%}",
                    ]
                )
    return Section(
        name="throughput",
        title="2. Throughput, N flows started at once on one worker",
        headers=["model latency", "N", "system", "wall s", "flows/min", "steps/s", "of floor"],
        rows=rows,
        data=data,
    )
