"""7. Where the time goes: what one step of each kind costs, and what server settings change.

    python -m harness.bench --only where

A probe workflow makes N sequential no-op steps of one kind; (wall(N) - wall(0)) / N
is what one step costs, wall(0) what an empty workflow costs from start to result.
The CPU time of the worker process and of the server is split the same way, so
what each kind of step costs the machine is seen besides its latency.
Kinds: a regular activity on the workflow's own queue (eager dispatch applies), one
on another queue (as model calls on `llm` are), and a local activity.
The probes run on the suite's server (persisted to SQLite, as users run it) and on
servers with one setting changed, so each setting's share is seen apart.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from harness.bench.activities import echo
from harness.bench.common import Context, Section, Stopwatch, dev_server, median, ms
from harness.bench.machine import ProcessSampler, worker_and_server
from harness.bench.workflows import BENCH_WORKFLOWS, ProbeInput, ProbeWorkflow, StepKind
from keel.infra.binaries import DEV_SERVER_ARGS

# Servers tried besides the suite's (which runs as devserver.py runs it, with
# DEV_SERVER_ARGS); each entry is the full list of `temporal server start-dev` flags.
# Temporal's defaults poll the transfer queue 20 times a second (up to 50 ms before
# each task is even offered to a worker) and sync SQLite fully on every commit.
SERVER_VARIANTS: dict[str, list[str]] = {
    "Temporal's defaults (transfer poll 20/s)": [],
    "transfer poll 1000/s, SQLite's default sync": list(DEV_SERVER_ARGS[:2]),
}


Cpu = dict[str, float]


async def _probe(
    client: Client,
    queue: str,
    kind: StepKind,
    steps: int,
    runs: int,
    activity_queue: str | None = None,
) -> tuple[float, Cpu]:
    """Median wall seconds of a run, and CPU seconds per run of the worker and server."""
    pids = worker_and_server(client)
    walls: list[float] = []
    probe = ProbeInput(kind=kind, steps=steps, activity_queue=activity_queue)
    await client.execute_workflow(  # warm-up, not counted
        ProbeWorkflow.run, probe, id=f"bench-probe-{uuid.uuid4().hex[:10]}", task_queue=queue
    )
    async with ProcessSampler(pids) as sampler:
        for _ in range(runs):
            watch = Stopwatch()
            await client.execute_workflow(
                ProbeWorkflow.run,
                probe,
                id=f"bench-probe-{uuid.uuid4().hex[:10]}",
                task_queue=queue,
            )
            walls.append(watch.elapsed())
    return median(walls), {name: cpu / runs for name, cpu in sampler.cpu.items()}


def _per_step(cpu: Cpu, empty: Cpu, steps: int) -> Cpu:
    return {name: ms((cpu[name] - empty[name]) / steps) for name in cpu}


async def probe_costs(client: Client, steps: int, runs: int) -> dict[str, Any]:
    """Milliseconds: an empty workflow, and one step of each kind; wall and CPU."""
    queue = f"bench-probe-{uuid.uuid4().hex[:8]}"
    other = f"{queue}-other"
    async with (
        Worker(client, task_queue=queue, workflows=BENCH_WORKFLOWS, activities=[echo]),
        Worker(client, task_queue=other, activities=[echo]),
    ):
        empty, empty_cpu = await _probe(client, queue, "none", 0, runs)
        regular, regular_cpu = await _probe(client, queue, "activity", steps, runs)
        elsewhere, elsewhere_cpu = await _probe(client, queue, "activity", steps, runs, other)
        local, local_cpu = await _probe(client, queue, "local_activity", steps, runs)
    return {
        "empty_workflow_ms": ms(empty),
        "activity_step_ms": ms((regular - empty) / steps),
        "other_queue_activity_step_ms": ms((elsewhere - empty) / steps),
        "local_activity_step_ms": ms((local - empty) / steps),
        "cpu_ms": {
            "empty_workflow": {name: ms(v) for name, v in empty_cpu.items()},
            "activity_step": _per_step(regular_cpu, empty_cpu, steps),
            "other_queue_activity_step": _per_step(elsewhere_cpu, empty_cpu, steps),
            "local_activity_step": _per_step(local_cpu, empty_cpu, steps),
        },
    }


def _cell(wall_ms: float, cpu: Cpu) -> str:
    return f"{wall_ms:.1f} ({' + '.join(f'{v:.1f}' for v in cpu.values())})"


async def measure(
    ctx: Context, steps: int = 20, runs: int = 5, variants: Sequence[str] = tuple(SERVER_VARIANTS)
) -> Section:
    results: dict[str, Any] = {
        "as devserver.py runs it": await probe_costs(ctx.client, steps, runs)
    }
    for name in variants:
        with tempfile.TemporaryDirectory() as tmp:
            async with dev_server(Path(tmp), SERVER_VARIANTS[name]) as env:
                results[name] = await probe_costs(env.client, steps, runs)
    rows = [
        [
            name,
            _cell(r["empty_workflow_ms"], r["cpu_ms"]["empty_workflow"]),
            _cell(r["activity_step_ms"], r["cpu_ms"]["activity_step"]),
            _cell(r["other_queue_activity_step_ms"], r["cpu_ms"]["other_queue_activity_step"]),
            _cell(r["local_activity_step_ms"], r["cpu_ms"]["local_activity_step"]),
        ]
        for name, r in results.items()
    ]
    return Section(
        name="where_time_goes",
        title=f"7. Cost of one step by kind (probe workflow, {steps} steps, {runs} runs, median)",
        headers=[
            "server",
            "empty workflow ms",
            "activity step ms",
            "on another queue ms",
            "local activity step ms",
        ],
        rows=rows,
        data={"steps": steps, "runs": runs, "servers": results},
        notes=["In brackets: CPU ms of the worker process + the server for the same stretch."],
    )
