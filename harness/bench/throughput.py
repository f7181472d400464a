"""2. Throughput: N research flows started at once on one worker.

    python -m harness.bench --only throughput [--flows 1 10 100]

All N flows start together and the clock stops when the last one finishes; flows
per minute and steps per second follow from that wall time. The model stands for a
remote API, so its concurrency is N on every side (the worker's model queue, the
floor's and the peer's thread pools).

The CPU seconds of every process involved (this one, and for Temporal the server)
give each system's ceiling on this machine: the flows per minute its CPU cost per
flow allows if every core did nothing else. When a system's wall time is at its
ceiling, it is CPU-bound and only a cheaper flow or more cores make it faster.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from harness.bench.common import (
    STEPS_PER_FLOW,
    Context,
    Section,
    bench_settings,
    gateway_for,
    research_input,
    running_workers,
    timed_research,
)
from harness.bench.langgraph_peer import checkpointed, run_langgraph
from harness.bench.machine import ProcessSampler, worker_and_server
from harness.bench.plain_flow import ResearchNodes, run_plain
from workflows.research import ResearchWorkflow

Cpu = dict[str, float]
# Wall seconds, CPU seconds per process, and any further figures of one system's run.
Run = tuple[float, Cpu, dict[str, float]]


async def _temporal(ctx: Context, latency: int, flows: int) -> Run:
    """CPU of the worker process (this one) and the server; how long the starts took."""
    settings = bench_settings(ctx.scripts, llm_concurrency=flows)
    pids = worker_and_server(ctx.client)
    async with running_workers(ctx.client, ctx.store, settings):
        # One flow first, so the worker's caches are warm as in a long-lived worker.
        await timed_research(ctx.client, settings, 0, "warm")
        async with ProcessSampler(pids) as cpu:
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
            # Every flow is started (the server has accepted it) by now.
            started = cpu.elapsed()
            await asyncio.gather(*(h.result() for h in handles))
    return cpu.wall, cpu.cpu, {"all_started_s": round(started, 3)}


async def _floor(ctx: Context, latency: int, flows: int) -> Run:
    settings = bench_settings(ctx.scripts, llm_concurrency=flows)
    request = research_input(latency, settings)
    nodes = ResearchNodes(gateway_for(settings), ctx.store, request)
    await run_plain(nodes, research_input(0, settings))
    async with ProcessSampler({"process": os.getpid()}) as cpu:
        await asyncio.gather(*(run_plain(nodes, request) for _ in range(flows)))
    return cpu.wall, cpu.cpu, {}


async def _langgraph(ctx: Context, latency: int, flows: int) -> Run:
    settings = bench_settings(ctx.scripts, llm_concurrency=flows)
    request = research_input(latency, settings)
    nodes = ResearchNodes(gateway_for(settings), ctx.store, request)
    database = ctx.workdir / f"langgraph-tp-{latency}-{flows}.db"
    async with checkpointed(nodes, database) as graph:
        await run_langgraph(graph, research_input(0, settings), uuid.uuid4().hex)
        async with ProcessSampler({"process": os.getpid()}) as cpu:
            await asyncio.gather(
                *(run_langgraph(graph, request, uuid.uuid4().hex) for _ in range(flows))
            )
        return cpu.wall, cpu.cpu, {}


# The kernel counts CPU time in 10 ms ticks: below this a run's CPU figures are noise.
MIN_CPU_S = 0.2


def ceiling_per_min(cpu_s: float, flows: int, cores: int) -> float:
    """Flows per minute the CPU cost allows if all `cores` did nothing else."""
    return cores * 60 * flows / cpu_s if cpu_s > 0 else float("inf")


async def _case(ctx: Context, latency: int, n: int, cores: int) -> dict[str, Any]:
    """N flows at one model latency on each system, against the floor's rate."""
    figures: dict[str, Any] = {}
    for name, run in (("floor", _floor), ("temporal", _temporal), ("langgraph", _langgraph)):
        wall, cpu, extra = await run(ctx, latency, n)
        cpu_s = sum(cpu.values())
        figures[name] = {
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "cpu_ms_per_flow": {k: round(v / n * 1000, 1) for k, v in cpu.items()},
            "ceiling_flows_per_min": round(ceiling_per_min(cpu_s, n, cores), 1),
            "wall_s": round(wall, 3),
            "flows_per_min": round(n / wall * 60, 1),
            "steps_per_s": round(n * STEPS_PER_FLOW / wall, 1),
            **extra,
        }
    floor_rate = figures["floor"]["flows_per_min"]
    for name in ("temporal", "langgraph"):
        figures[name]["of_floor"] = round(figures[name]["flows_per_min"] / floor_rate, 3)
    for f in figures.values():
        f["ceiling_of_floor"] = round(f["ceiling_flows_per_min"] / floor_rate, 3)
    server = figures["temporal"]["cpu_s"].get("server")
    if server:
        # What the server's share alone allows, as if the worker cost nothing.
        figures["temporal"]["server_ceiling_of_floor"] = round(
            ceiling_per_min(server, n, cores) / floor_rate, 3
        )
    return figures


async def measure(
    ctx: Context, flows: tuple[int, ...] = (1, 10, 100), latencies: tuple[int, ...] = (0, 500)
) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"results": {}}
    cores = os.cpu_count() or 1
    for latency in latencies:
        for n in flows:
            figures = await _case(ctx, latency, n, cores)
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
                        *_cpu_cells(f),
                    ]
                )
    return Section(
        name="throughput",
        title="2. Throughput, N flows started at once on one worker",
        headers=[
            "model latency",
            "N",
            "system",
            "wall s",
            "flows/min",
            "steps/s",
            "of floor",
            "CPU ms/flow",
            "CPU ceiling",
            "server's ceiling",
        ],
        rows=rows,
        data=data,
        notes=[
            "CPU ms/flow: this process (+ the server, for temporal). CPU ceiling: the flows "
            f"per minute that CPU cost allows on {cores} cores, as a share of the floor's "
            "measured flows per minute; server's ceiling: the same for the server's CPU "
            f"alone, as if the worker cost nothing. Blank where a run used under "
            f"{MIN_CPU_S} CPU seconds (the kernel counts in 10 ms ticks).",
            "Temporal, time until the server had accepted every start: "
            + ", ".join(
                f"{key.replace('ms_n', ' ms, N = ')}: {r['temporal']['all_started_s']:.2f} s"
                for key, r in data["results"].items()
            ),
        ],
    )


def _cpu_cells(figures: dict[str, Any]) -> list[str]:
    if sum(figures["cpu_s"].values()) < MIN_CPU_S:
        return ["", "", ""]
    server = figures.get("server_ceiling_of_floor")
    return [
        " + ".join(f"{v:.1f}" for v in figures["cpu_ms_per_flow"].values()),
        f"{figures['ceiling_of_floor']:.0%}",
        f"{server:.0%}" if server is not None else "",
    ]
