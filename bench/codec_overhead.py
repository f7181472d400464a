"""What encrypting every payload costs a research flow.

The same flow (7 steps, 3 model calls at the scripted model's latency) runs on two
clients of the same server, one with the payload codec and one without, each with
workers of its own; runs alternate between them so that drift in the machine's load
falls on both. Reported: wall time with and without the codec, their difference as a
share of the flow, the CPU spent inside the codec (every encode and decode of the
client and the workers, all in this process, timed around the calls), the payloads
and bytes it handled, and this process's CPU per flow either way.

The target: the codec adds at most 3 % to a research flow's wall time at 500 ms
model latency.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from bench.common import (
    BENCH_KEYS,
    Context,
    Section,
    Stopwatch,
    bench_settings,
    median,
    ms,
    research_input,
    running_workers,
)
from infra.codec import EncryptionCodec, encrypting_converter
from workflows.research import ResearchWorkflow

TARGET_SHARE = 0.03


class TimedCodec(EncryptionCodec):
    """The project's codec, counting the time, payloads and bytes it handles."""

    def __init__(self) -> None:
        super().__init__(BENCH_KEYS)
        self.seconds = 0.0
        self.payloads = 0
        self.bytes = 0

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        started = time.perf_counter()
        result = await super().encode(payloads)
        self._count(started, payloads)
        return result

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        started = time.perf_counter()
        result = await super().decode(payloads)
        self._count(started, payloads)
        return result

    def reset(self) -> None:
        self.seconds, self.payloads, self.bytes = 0.0, 0, 0

    def _count(self, started: float, payloads: Sequence[Payload]) -> None:
        # Encode and decode are synchronous CPU work inside a coroutine: wall is CPU here.
        self.seconds += time.perf_counter() - started
        self.payloads += len(payloads)
        self.bytes += sum(p.ByteSize() for p in payloads)


async def _runs(
    ctx: Context, converter: DataConverter, latency: int, runs: int, codec: TimedCodec | None
) -> tuple[list[float], float]:
    """Wall seconds of each run after a warm-up, and this process's CPU per run.

    The codec's counters are reset after the warm-up, so they cover the measured runs.
    """
    # The suite's connection, another converter: no second connection to close.
    client = Client(ctx.client.service_client, namespace="default", data_converter=converter)
    settings = bench_settings(ctx.scripts)
    walls: list[float] = []
    cpu = 0.0
    async with running_workers(client, ctx.store, settings):
        for i in range(runs + 1):
            if i == 1 and codec is not None:
                codec.reset()
            cpu_before = time.process_time()
            watch = Stopwatch()
            await client.execute_workflow(
                ResearchWorkflow.run,
                research_input(latency, settings),
                id=f"bench-codec-{latency}-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
            )
            if i:
                walls.append(watch.elapsed())
                cpu += time.process_time() - cpu_before
    return walls, cpu / max(runs, 1)


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "target_share": TARGET_SHARE, "latencies": {}}
    for latency in latencies:
        codec = TimedCodec()
        on = dataclasses.replace(encrypting_converter(BENCH_KEYS), payload_codec=codec)
        off_walls: list[float] = []
        on_walls: list[float] = []
        off_cpu: list[float] = []
        on_cpu: list[float] = []
        seconds, payloads, size = 0.0, 0, 0
        # Alternate in small batches, so both sides see the same machine.
        batches = max(1, runs // 5)
        per_batch = max(1, runs // batches)
        for _ in range(batches):
            walls, cpu = await _runs(ctx, pydantic_data_converter, latency, per_batch, None)
            off_walls += walls
            off_cpu.append(cpu)
            walls, cpu = await _runs(ctx, on, latency, per_batch, codec)
            on_walls += walls
            on_cpu.append(cpu)
            seconds, payloads, size = (
                seconds + codec.seconds,
                payloads + codec.payloads,
                size + codec.bytes,
            )
        measured = len(on_walls)
        off_wall, on_wall = median(off_walls), median(on_walls)
        codec_ms = seconds / measured * 1000
        wall_share = (on_wall - off_wall) / off_wall
        cpu_share = codec_ms / (off_wall * 1000)
        figures = {
            "off_wall_ms": ms(off_wall),
            "on_wall_ms": ms(on_wall),
            "wall_share": round(wall_share, 4),
            "codec_cpu_ms_per_flow": round(codec_ms, 3),
            "codec_cpu_share_of_wall": round(cpu_share, 5),
            "payloads_per_flow": round(payloads / measured, 1),
            "kib_per_flow": round(size / measured / 1024, 1),
            "process_cpu_ms_per_flow_off": ms(median(off_cpu)),
            "process_cpu_ms_per_flow_on": ms(median(on_cpu)),
            "target_met": cpu_share <= TARGET_SHARE and wall_share <= TARGET_SHARE,
        }
        data["latencies"][str(latency)] = figures
        rows.append(
            [
                f"{latency} ms",
                f"{ms(off_wall):.1f}",
                f"{ms(on_wall):.1f}",
                f"{wall_share:+.1%}",
                f"{codec_ms:.2f} ({cpu_share:.2%})",
                f"{figures['payloads_per_flow']:.0f} / {figures['kib_per_flow']:.1f}",
                f"{ms(median(off_cpu)):.1f} -> {ms(median(on_cpu)):.1f}",
            ]
        )
    return Section(
        name="codec_overhead",
        title=f"8. Payload codec (AES-256-GCM) on and off, one research flow at a time "
        f"({runs} runs each, median)",
        headers=[
            "model latency",
            "off wall ms",
            "on wall ms",
            "wall difference",
            "codec CPU ms/flow (share of wall)",
            "payloads / KiB per flow",
            "process CPU ms/flow off -> on",
        ],
        rows=rows,
        data=data,
        notes=[
            f"Target: at most {TARGET_SHARE:.0%} of the flow's wall time at 500 ms. The wall"
            " difference is within run-to-run noise at this size; the codec's own CPU is the"
            " cost it adds (it runs inline, on the client's and the workers' event loops)."
        ],
    )
