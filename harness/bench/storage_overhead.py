"""What the payload store costs, beside the same runs with every payload inline.

    python -m harness.bench --only storage

Two loads, each run in turn with the store on and off (ABAB) on workers of their
own, on the suite's server:

- the research flow at each model latency: no payload reaches the 64 KiB threshold,
  so this is the cost of the size check on every payload;
- a conversation of `CALLS` model calls that sends its whole transcript each time
  (8,000 characters a message; the soak's load, shorter): from the ninth call on each
  input goes to the store, encrypted, and the history holds a reference.

Reported per flow: wall time, history bytes, largest payload, bytes stored.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter

from harness.bench.common import (
    Context,
    Section,
    Stopwatch,
    bench_converter,
    bench_settings,
    median,
    ms,
    research_input,
    running_workers,
)
from harness.soak.run import SCRIPTS, conversation, history_figures
from harness.soak.workflows import SoakConversationWorkflow
from keel.infra.payload_store import PayloadStoreSettings, external_storage
from keel.infra.settings import WorkerSettings
from workflows.research import ResearchWorkflow

CALLS = 30
MESSAGE_CHARS = 8_000
SIDES = ("off", "on")


def _converters(ctx: Context) -> dict[str, DataConverter]:
    store = PayloadStoreSettings(payload_store_dir=ctx.workdir / "payloads")
    off = bench_converter()
    return {"off": off, "on": dataclasses.replace(off, external_storage=external_storage(store))}


async def _research(client: Client, settings: WorkerSettings, latency: int) -> dict[str, Any]:
    handle = await client.start_workflow(
        ResearchWorkflow.run,
        research_input(latency, settings),
        id=f"bench-storage-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    await handle.result()
    return history_figures(await handle.fetch_history())


async def _conversation(client: Client, settings: WorkerSettings, _: int) -> dict[str, Any]:
    queues = (settings.task_queue, settings.llm_task_queue)
    load = await conversation(client, *queues, CALLS, MESSAGE_CHARS, secrets.token_hex(4))
    figures: dict[str, Any] = load["runs"][0]
    return figures


async def _side_by_side(
    ctx: Context,
    flow: Callable[[Client, WorkerSettings, int], Awaitable[dict[str, Any]]],
    latency: int,
    runs: int,
    scripts_dir: Path,
) -> dict[str, dict[str, float]]:
    """Medians per side; both sides' workers run at once, flows alternate between them."""
    converters = _converters(ctx)
    samples: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    clients = {
        side: Client(ctx.client.service_client, namespace="default", data_converter=converter)
        for side, converter in converters.items()
    }
    settings = {side: bench_settings(scripts_dir) for side in SIDES}
    async with (
        running_workers(
            clients["off"], ctx.store, settings["off"], extra_workflows=[SoakConversationWorkflow]
        ),
        running_workers(
            clients["on"], ctx.store, settings["on"], extra_workflows=[SoakConversationWorkflow]
        ),
    ):
        for i in range(runs + 1):
            for side in SIDES:
                watch = Stopwatch()
                figures = await flow(clients[side], settings[side], latency)
                if i:  # the first round warms the workers up
                    samples[side].append({**figures, "wall": watch.elapsed()})
    return {
        side: {
            key: median([s[key] for s in got])
            for key, value in got[0].items()
            if isinstance(value, int | float)
        }
        for side, got in samples.items()
    }


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "threshold_bytes": 64 * 1024, "loads": {}}
    Flow = Callable[[Client, WorkerSettings, int], Awaitable[dict[str, Any]]]
    loads: list[tuple[str, Flow, int, Path]] = [
        (f"research, {latency} ms", _research, latency, ctx.scripts) for latency in latencies
    ]
    loads.append((f"conversation, {CALLS} calls", _conversation, 0, SCRIPTS))
    for name, flow, latency, scripts_dir in loads:
        # A conversation takes seconds a run: a third as many.
        count = runs if flow is _research else max(2, runs // 3)
        figures = await _side_by_side(ctx, flow, latency, count, scripts_dir)
        share = (figures["on"]["wall"] - figures["off"]["wall"]) / figures["off"]["wall"]
        data["loads"][name] = {**figures, "wall_share": round(share, 4)}
        for side in SIDES:
            f = figures[side]
            rows.append(
                [
                    name,
                    side,
                    f"{ms(f['wall']):.1f}",
                    f"{share:+.1%}" if side == "on" else "",
                    f"{f['bytes'] / 1024:.1f}",
                    f"{f['largest_payload'] / 1024:.1f}",
                    f"{f['references']:.0f}",
                    f"{f['stored_bytes'] / 1024:.1f}",
                ]
            )
    return Section(
        name="storage_overhead",
        title=f"11. The payload store on and off ({runs} research flows and"
        f" {max(2, runs // 3)} conversations each, alternating, median)",
        headers=[
            "load",
            "store",
            "wall ms",
            "difference",
            "history KiB",
            "largest payload KiB",
            "references",
            "stored KiB",
        ],
        rows=rows,
        data=data,
        notes=[
            "Threshold 64 KiB; stored payloads are the codec's ciphertext. A conversation"
            " that sends its whole transcript writes it into the history on every call"
            " without the store; with it, the history holds a reference per call."
        ],
    )
