"""What heartbeating model calls costs a research flow.

Model calls heartbeat every second while they run (activities/heartbeat.py), so a
crashed worker is noticed within the 5 s heartbeat timeout and a cancel stops the
call. The same flow (7 steps, 3 model calls at the scripted model's latency) runs on
two sets of workers of the same server, one whose model calls heartbeat and one whose
calls send none (the heartbeat timeout stays in the activity options, as the workflow
sets it); runs alternate between them in small batches so drift in the machine's load
falls on both. Reported: wall time either way and its difference as a share of the
flow, the heartbeats sent per flow, and CPU per flow of this process (client and
workers) and of the server.

At 500 ms a call ends before its first heartbeat is due, so only the wrapper's cost
shows; the longer latency makes every call send heartbeats.

The target: heartbeating adds at most 2 % to a research flow's wall time at 500 ms
model latency.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from temporalio import activity

from harness.bench.common import Context, Section, median, ms, timed_research
from harness.bench.machine import ProcessSampler, worker_and_server
from harness.bench.on_off import ON_OFF_HEADERS, OnOff, side_by_side

TARGET_SHARE = 0.02
# A latency at which each model call sends two heartbeats (one a second).
HEARTBEATING_LATENCY_MS = 2500


@contextmanager
def _counted_heartbeats() -> Iterator[list[int]]:
    """Counts the heartbeats activities in this process send while it is open."""
    count = [0]
    original = activity.heartbeat

    def counting(*details: Any) -> None:
        count[0] += 1
        original(*details)

    activity.heartbeat = counting
    try:
        yield count
    finally:
        activity.heartbeat = original


async def _runs(ctx: Context, latency: int, heartbeats: bool, runs: int) -> dict[str, Any]:
    """Wall seconds of each run after a warm-up; heartbeats and CPU over the measured runs."""
    walls: list[float] = []
    totals: dict[str, float] = {}
    async with ctx.workers(heartbeats=heartbeats) as settings:
        for i in range(runs + 1):
            with _counted_heartbeats() as sent:
                async with ProcessSampler(worker_and_server(ctx.client)) as sampler:
                    wall = await timed_research(ctx.client, settings, latency, "heartbeat")
            if i:  # the first run warms the workers up
                walls.append(wall)
                for key, value in {"heartbeats": float(sent[0]), **sampler.cpu}.items():
                    totals[key] = totals.get(key, 0.0) + value
    return {"walls": walls, **{k: v / max(runs, 1) for k, v in totals.items()}}


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "target_share": TARGET_SHARE, "latencies": {}}
    for latency in sorted({*latencies, HEARTBEATING_LATENCY_MS}):
        sides = await side_by_side((False, True), runs, functools.partial(_runs, ctx, latency))

        def figure(heartbeats: bool, key: str, sides: dict[bool, list[Any]] = sides) -> float:
            return median([batch[key] for batch in sides[heartbeats]])

        walls = OnOff.of(latency, sides[False], sides[True])
        figures = {
            **walls.figures(),
            "heartbeats_per_flow": round(figure(True, "heartbeats"), 1),
            "worker_cpu_ms_per_flow_off": ms(figure(False, "worker")),
            "worker_cpu_ms_per_flow_on": ms(figure(True, "worker")),
            "server_cpu_ms_per_flow_off": ms(figure(False, "server")),
            "server_cpu_ms_per_flow_on": ms(figure(True, "server")),
        }
        if latency == 500:
            figures["target_met"] = walls.share <= TARGET_SHARE
        data["latencies"][str(latency)] = figures
        rows.append(
            [
                *walls.cells(),
                f"{figures['heartbeats_per_flow']:.1f}",
                f"{figures['worker_cpu_ms_per_flow_off']:.1f} -> "
                f"{figures['worker_cpu_ms_per_flow_on']:.1f}",
                f"{figures['server_cpu_ms_per_flow_off']:.1f} -> "
                f"{figures['server_cpu_ms_per_flow_on']:.1f}",
            ]
        )
    return Section(
        name="heartbeat_overhead",
        title=f"9. Heartbeats on model calls on and off, one research flow at a time "
        f"({runs} runs each, median)",
        headers=[
            *ON_OFF_HEADERS,
            "heartbeats / flow",
            "worker CPU ms/flow off -> on",
            "server CPU ms/flow off -> on",
        ],
        rows=rows,
        data=data,
        notes=[
            f"Target: at most {TARGET_SHARE:.0%} of the flow's wall time at 500 ms. Off means"
            " the model calls send no heartbeat (only the bench builds such workers); the"
            " heartbeat timeout stays in the options either way."
        ],
    )
