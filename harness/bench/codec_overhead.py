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
import functools
import time
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from harness.bench.common import BENCH_KEYS, Context, Section, median, ms, timed_research
from harness.bench.on_off import ON_OFF_HEADERS, OnOff, side_by_side
from keel.infra.codec import EncryptionCodec, encrypting_converter

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


async def _runs(ctx: Context, latency: int, codec: TimedCodec | None, runs: int) -> dict[str, Any]:
    """Wall seconds of each run after a warm-up, this process's CPU per run, and what the
    codec handled over the measured runs (its counters are reset after the warm-up).

    Without a codec, the runs use the plain converter.
    """
    converter = pydantic_data_converter
    if codec is not None:
        converter = dataclasses.replace(encrypting_converter(BENCH_KEYS), payload_codec=codec)
    # The suite's connection, another converter: no second connection to close.
    client = Client(ctx.client.service_client, namespace="default", data_converter=converter)
    walls: list[float] = []
    cpu = 0.0
    async with ctx.workers(client) as settings:
        for i in range(runs + 1):
            if i == 1 and codec is not None:
                codec.reset()
            cpu_before = time.process_time()
            wall = await timed_research(client, settings, latency, "codec")
            if i:
                walls.append(wall)
                cpu += time.process_time() - cpu_before
    measured: dict[str, Any] = {"walls": walls, "cpu": cpu / max(runs, 1)}
    if codec is not None:
        measured.update(seconds=codec.seconds, payloads=codec.payloads, bytes=codec.bytes)
    return measured


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {"runs": runs, "target_share": TARGET_SHARE, "latencies": {}}
    for latency in latencies:
        codec = TimedCodec()
        sides = await side_by_side((None, codec), runs, functools.partial(_runs, ctx, latency))
        walls = OnOff.of(latency, sides[None], sides[codec])
        off_cpu = [batch["cpu"] for batch in sides[None]]
        on_cpu = [batch["cpu"] for batch in sides[codec]]
        seconds, payloads, size = (
            sum(batch[key] for batch in sides[codec]) for key in ("seconds", "payloads", "bytes")
        )
        measured = sum(len(batch["walls"]) for batch in sides[codec])
        codec_ms = seconds / measured * 1000
        cpu_share = codec_ms / (walls.off_wall * 1000)
        figures = {
            **walls.figures(),
            "codec_cpu_ms_per_flow": round(codec_ms, 3),
            "codec_cpu_share_of_wall": round(cpu_share, 5),
            "payloads_per_flow": round(payloads / measured, 1),
            "kib_per_flow": round(size / measured / 1024, 1),
            "process_cpu_ms_per_flow_off": ms(median(off_cpu)),
            "process_cpu_ms_per_flow_on": ms(median(on_cpu)),
            "target_met": cpu_share <= TARGET_SHARE and walls.share <= TARGET_SHARE,
        }
        data["latencies"][str(latency)] = figures
        rows.append(
            [
                *walls.cells(),
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
            *ON_OFF_HEADERS,
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
