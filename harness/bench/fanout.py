"""3. Fan-out: a coordinator runs K sub-agents at once, three ways.

    python -m harness.bench --only fanout [--agents 4 16 64]

Each sub-agent is one model call of the scripted model (fixed latency). As child
workflows every sub-agent has a history of its own (isolation, its own retries and
visibility, more events); as activities they are steps of the coordinator's
history; asyncio.gather makes the same calls in plain asyncio, with no durability.
CPU is the kernel's count for the process running the worker (this one) and for the
dev server; memory is the peak resident growth of the worker process.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from temporalio.worker import Worker

from harness.bench.common import Context, Section, bench_settings, gateway_for, running_workers
from harness.bench.machine import ProcessSampler, worker_and_server
from harness.bench.workflows import (
    BENCH_WORKFLOWS,
    AgentCall,
    FanOutInput,
    FanOutWorkflow,
    agent_request,
)
from keel.infra.settings import WorkerSettings

SUBAGENT_SCRIPT = "fanout"

Mode = Literal["child_workflows", "activities", "asyncio.gather"]
MODES: tuple[Mode, ...] = ("child_workflows", "activities", "asyncio.gather")


async def _temporal(ctx: Context, settings: WorkerSettings, mode: Mode, agents: int) -> None:
    assert mode != "asyncio.gather"
    await ctx.client.execute_workflow(
        FanOutWorkflow.run,
        FanOutInput(
            agents=agents, mode=mode, script=SUBAGENT_SCRIPT, llm_task_queue=settings.llm_task_queue
        ),
        id=f"bench-fanout-{mode}-{agents}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )


async def _gather(settings: WorkerSettings, agents: int) -> None:
    gateway = gateway_for(settings)
    calls = [
        agent_request(AgentCall(script=SUBAGENT_SCRIPT, index=i, llm_task_queue=""))
        for i in range(agents)
    ]
    await asyncio.gather(*(gateway.complete(c) for c in calls))


async def measure(ctx: Context, agents: tuple[int, ...] = (4, 16, 64)) -> Section:
    settings = bench_settings(ctx.scripts, llm_concurrency=max(agents))
    bench_worker = Worker(
        ctx.client, task_queue=settings.task_queue, workflows=BENCH_WORKFLOWS, activities=[]
    )
    pids = worker_and_server(ctx.client)
    rows: list[list[str]] = []
    data: dict[str, Any] = {"results": {}}
    # The project's workers serve the model queue; the bench worker runs the coordinators.
    research_side = settings.model_copy(update={"task_queue": f"{settings.task_queue}-research"})
    async with running_workers(ctx.client, ctx.store, research_side, extra=[bench_worker]):
        for mode in MODES:
            if mode != "asyncio.gather":
                await _temporal(ctx, settings, mode, 1)  # warm up
            for k in agents:
                async with ProcessSampler(pids) as sampler:
                    if mode == "asyncio.gather":
                        await _gather(settings, k)
                    else:
                        await _temporal(ctx, settings, mode, k)
                figures = {
                    "wall_ms": round(sampler.wall * 1000, 1),
                    "worker_cpu_ms": round(sampler.cpu["worker"] * 1000, 1),
                    "server_cpu_ms": round(sampler.cpu.get("server", 0.0) * 1000, 1),
                    "worker_peak_rss_growth_mb": sampler.rss_growth_mb["worker"],
                }
                data["results"][f"{mode}_{k}"] = figures
                rows.append(
                    [
                        mode,
                        str(k),
                        f"{figures['wall_ms']:.0f}",
                        f"{figures['worker_cpu_ms']:.0f}",
                        f"{figures['server_cpu_ms']:.0f}",
                        f"{figures['worker_peak_rss_growth_mb']:.1f}",
                    ]
                )
    return Section(
        name="fanout",
        title="3. Fan-out: K sub-agents (one scripted model call each, 200 ms)",
        headers=["mode", "K", "total ms", "worker CPU ms", "server CPU ms", "worker RSS +MB"],
        rows=rows,
        data=data,
    )
