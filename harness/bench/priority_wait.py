"""12. Priority and fairness: how long a person's run waits behind another tenant's batch.

    python -m harness.bench --only priority [--batch-runs 100]

One model slot (as the local model has), every model call of the scripted model taking
LATENCY_MS. Tenant A queues `--batch-runs` research flows as batch work (priority 4);
once their model calls wait in the `llm` queue, tenant B starts one research flow from
a terminal (priority 2). Its wall time, from start to report, is set against the same
flow on empty queues; the difference is also given in model calls, the issue's yardstick
being "no longer than with the queue empty, plus one model call" (the call in progress
when it arrives). The same backlog runs again with the priority left out (fairness
alone: both tenants at 4), with neither (first come, first served: what every run had
before), and on a server with Temporal's defaults (priority on; fairness off; four
partitions per queue).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import Priority

from harness.bench.common import (
    Context,
    Section,
    bench_settings,
    dev_server,
    median,
    ms,
    running_workers,
    start_research,
    timed_research,
)
from keel.cli.priority import WorkClass, run_priority
from keel.infra.binaries import DEV_SERVER_ARGS

LATENCY_MS = 200
# Long enough for every batch flow's first model call to reach the llm queue.
SETTLE_SECONDS = 3.0
BATCH = run_priority(WorkClass.BATCH, "tenant-a")
INTERACTIVE = run_priority(WorkClass.INTERACTIVE, "tenant-b")
# (label, the batch runs' priority, the interactive run's, on the suite's server?)
CASES: list[tuple[str, Priority, Priority, bool]] = [
    ("priority 2 over 4, fairness", BATCH, INTERACTIVE, True),
    ("fairness alone (both 4)", BATCH, run_priority(WorkClass.BATCH, "tenant-b"), True),
    ("neither (first come, first served)", Priority.default, Priority.default, True),
    ("priority 2 over 4, Temporal's defaults", BATCH, INTERACTIVE, False),
]
# The suite's server less its matching settings: only fairness and partitions differ.
DEFAULT_MATCHING = [
    word
    for flag, value in zip(DEV_SERVER_ARGS[::2], DEV_SERVER_ARGS[1::2], strict=True)
    if not value.startswith("matching.")
    for word in (flag, value)
]


async def _behind_backlog(
    client: Client, ctx: Context, batch_runs: int, batch: Priority, interactive: Priority
) -> float:
    """The interactive run's wall seconds behind `batch_runs` queued batch flows."""
    settings = bench_settings(ctx.scripts, llm_concurrency=1)
    async with running_workers(client, ctx.store, settings):
        queued = [
            await start_research(client, settings, LATENCY_MS, f"batch-{i}", batch)
            for i in range(batch_runs)
        ]
        await asyncio.sleep(SETTLE_SECONDS)
        wall = await timed_research(client, settings, LATENCY_MS, "interactive", interactive)
        # The rest of the backlog is not measured (some runs may have finished meanwhile).
        await asyncio.gather(
            *(h.terminate("bench: backlog no longer needed") for h in queued),
            return_exceptions=True,
        )
    return wall


async def _empty(client: Client, ctx: Context, runs: int) -> float:
    settings = bench_settings(ctx.scripts, llm_concurrency=1)
    async with running_workers(client, ctx.store, settings):
        await timed_research(client, settings, LATENCY_MS, "warm", INTERACTIVE)
        return median(
            [
                await timed_research(client, settings, LATENCY_MS, "empty", INTERACTIVE)
                for _ in range(runs)
            ]
        )


async def measure(ctx: Context, runs: int = 3, batch_runs: int = 100) -> Section:
    empty = await _empty(ctx.client, ctx, runs)
    results: dict[str, Any] = {"empty_queue_ms": ms(empty)}
    rows = [["empty queues", "-", f"{ms(empty):.0f}", "-", "-"]]
    folder = Path(ctx.workdir) / "defaults-server"
    folder.mkdir(exist_ok=True)
    async with dev_server(folder, DEFAULT_MATCHING) as defaults:
        for label, batch, interactive, suite in CASES:
            client = ctx.client if suite else defaults.client
            wall = await _behind_backlog(client, ctx, batch_runs, batch, interactive)
            extra = wall - empty
            calls = extra * 1000 / LATENCY_MS
            results[label] = {"wall_ms": ms(wall), "extra_ms": ms(extra), "extra_calls": calls}
            rows.append(
                [label, str(batch_runs), f"{ms(wall):.0f}", f"{ms(extra):+.0f}", f"{calls:+.1f}"]
            )
    return Section(
        name="priority",
        title=(
            f"12. Priority and fairness: one interactive research flow behind {batch_runs}"
            f" batch flows of another tenant (1 model slot, {LATENCY_MS} ms a call)"
        ),
        headers=["case", "batch queued", "wall ms", "over empty", "in model calls"],
        rows=rows,
        data={"latency_ms": LATENCY_MS, "batch_runs": batch_runs, "results": results},
        notes=[
            "suite's server: devserver.py's (fairness on, one partition per queue);"
            " Temporal's defaults: priority on, fairness off, four partitions"
        ],
    )
