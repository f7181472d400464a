"""What watching a run live costs a research flow, and what it costs its history.

The same flow (7 steps, 3 model calls at the scripted model's latency) runs three
ways on one server and one set of workers: `off` (nobody watches, no token deltas:
how the bench and API callers run), `steps` (a watcher follows the run's channel;
steps only) and `tokens` (a watcher, and the model's output streamed as it is
written, what `client.py research` does on a terminal). The watcher runs in a
process of its own, as `client.py` does, not on the workers' event loop.

The ways are interleaved: each round runs all three back to back, in an order that
rotates from round to round, so drift in the machine's load (other processes on a
shared machine) falls on every way alike and no way always follows another. Each
round's `steps` and `tokens` walls are divided by the same round's `off` wall; the
median of those paired ratios is the figure against the target, the ratio of the
medians is reported beside it.

Reported per way: wall time from start to result; the history's events, workflow
tasks, signals (token batches) and accepted updates (none: a watcher reads by query); and for
`tokens` how long the answer's first words took from the model to the watcher. The
scripted model writes its answer word by word, the call's latency spread over the
words, so the first word is written one word's share of the latency after the call
started (the activity's start event in the history, on the same machine's clock).

The target: streaming adds at most 3 % to the flow's wall time at 500 ms latency.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import time
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from harness.bench.common import (
    BENCH_KEYS,
    ROOT,
    SCRIPTS_DIR,
    Context,
    Section,
    Stopwatch,
    bench_settings,
    median,
    ms,
    research_input,
    running_workers,
)
from keel.cli.live import LiveView, follow, written_so_far
from keel.infra.codec import encrypting_converter
from keel.infra.keys import KeyRing
from keel.payloads.live import LiveEvent
from workflows.research import ResearchWorkflow

TARGET_SHARE = 0.03
WAYS = ("off", "steps", "tokens")
# The straight path's model calls, in the order the history schedules them.
WRITE_CALL = 1
FIRST_TOKEN_TARGET_SECONDS = 1.0
_COUNTED = {
    "wfts": EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    "signals": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    "updates": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
}


def _write_words() -> int:
    """How many pieces the scripted model writes the straight path's answer in."""
    script = json.loads((SCRIPTS_DIR / "straight.json").read_text(encoding="utf-8"))
    return max(len(re.findall(r"\s*\S+", json.dumps(script["write"][0]))), 1)


class _FirstWords:
    """The wall-clock time the write call's first words were shown to the watcher."""

    def __init__(self) -> None:
        self.raw = ""
        self.at: float | None = None

    def __call__(self, event: LiveEvent) -> None:
        if self.at is not None or event.node != "write" or event.kind not in ("tokens", "done"):
            return
        self.raw = event.text if event.kind == "done" else self.raw + event.text
        if written_so_far(self.raw):
            self.at = time.time()


def _write_started(history: WorkflowHistory) -> float | None:
    """When the write call's activity started, in seconds since the epoch."""
    scheduled = [
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "complete_llm"
    ]
    if len(scheduled) <= WRITE_CALL:
        return None
    for e in history.events:
        if (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id == scheduled[WRITE_CALL]
        ):
            return float(e.event_time.ToNanoseconds()) / 1e9
    return None


class _Watcher:
    """A watcher in a process of its own, as `client.py` is: it shares no event loop and
    no interpreter lock with the workers. Told a workflow id on a line, it follows the
    run to its end and answers with when the answer's first words were shown."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, address: str) -> _Watcher:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness.bench.streaming", address,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        watcher = cls(process)
        # The suite's payload key goes over the pipe, never into a file or the environment.
        await watcher._say(BENCH_KEYS.keys[-1][1].hex())
        await watcher._answer()  # connected
        return watcher

    async def _say(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{line}\n".encode())
        await self._process.stdin.drain()

    async def _answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the watcher process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def follow(self, workflow_id: str) -> None:
        await self._say(workflow_id)

    async def followed(self) -> float | None:
        """When the last run followed showed its answer's first words, if it streamed."""
        at = (await self._answer()).get("first_words_at")
        return float(at) if at is not None else None

    async def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        await asyncio.wait_for(self._process.wait(), 30)


async def _watch_lines(address: str) -> None:
    """The watcher process: follows each workflow id read from stdin to the run's end."""
    loop = asyncio.get_running_loop()
    lines = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), sys.stdin)
    key = bytes.fromhex((await lines.readline()).decode().strip())
    converter = encrypting_converter(KeyRing((("bench", key),)))
    client = await Client.connect(address, data_converter=converter)
    print(json.dumps({"connected": True}), flush=True)
    while line := (await lines.readline()).decode().strip():
        first = _FirstWords()
        await follow(client, line, LiveView(out=io.StringIO(), on_event=first))
        print(json.dumps({"first_words_at": first.at}), flush=True)


async def _one(
    ctx: Context, settings: Any, latency: int, way: str, words: int, watcher: _Watcher
) -> dict[str, float]:
    request = research_input(latency, settings).model_copy(
        update={"stream_tokens": way == "tokens"}
    )
    workflow_id = f"bench-stream-{way}-{uuid.uuid4().hex[:8]}"
    watch = Stopwatch()
    handle = await ctx.client.start_workflow(
        ResearchWorkflow.run, request, id=workflow_id, task_queue=settings.task_queue
    )
    if way != "off":
        await watcher.follow(workflow_id)
    await handle.result()
    wall = watch.elapsed()
    first_at = await watcher.followed() if way != "off" else None
    history = await handle.fetch_history()
    figures: dict[str, float] = {"wall": wall, "events": len(history.events)}
    for name, kind in _COUNTED.items():
        figures[name] = sum(1 for e in history.events if e.event_type == kind)
    started = _write_started(history)
    if way == "tokens" and latency and first_at is not None and started is not None:
        figures["first_words"] = first_at - (started + latency / 1000 / words)
    return figures


def _paired(rounds: list[dict[str, dict[str, float]]], way: str) -> float:
    """The median over rounds of this way's wall against the same round's `off`."""
    return median([r[way]["wall"] / r["off"]["wall"] - 1 for r in rounds])


def _figures(rounds: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Each way's medians over the rounds, its share against `off`, and the target."""
    figures: dict[str, Any] = {}
    off_wall = median([r["off"]["wall"] for r in rounds])
    for way in WAYS:
        results = [r[way] for r in rounds]
        wall = median([r["wall"] for r in results])
        figures[way] = {
            "wall_ms": ms(wall),
            "wall_share_paired": round(_paired(rounds, way), 4),
            "wall_share_medians": round((wall - off_wall) / off_wall, 4),
            **{k: median([r[k] for r in results]) for k in ("events", *_COUNTED)},
        }
        firsts = [r["first_words"] for r in results if "first_words" in r]
        if firsts:
            figures[way]["first_words_ms"] = ms(median(firsts))
            figures[way]["first_words_max_ms"] = ms(max(firsts))
            figures[way]["first_words_each_ms"] = [ms(f) for f in firsts]
        figures[way]["wall_each_ms"] = [ms(r["wall"]) for r in results]
    figures["target_met"] = figures["tokens"]["wall_share_paired"] <= TARGET_SHARE
    return figures


def _rows(latency: int, figures: dict[str, Any]) -> list[list[str]]:
    rows = []
    for way in WAYS:
        f = figures[way]
        first_words = (
            f"{f['first_words_ms']:.0f} (max {f['first_words_max_ms']:.0f})"
            if "first_words_ms" in f
            else ""
        )
        rows.append(
            [
                f"{latency} ms",
                way,
                f"{f['wall_ms']:.1f}",
                "" if way == "off" else f"{f['wall_share_paired']:+.1%}",
                "" if way == "off" else f"{f['wall_share_medians']:+.1%}",
                f"{f['events']:.0f}",
                f"{f['wfts']:.0f}",
                f"{f['signals']:.0f}",
                f"{f['updates']:.0f}",
                first_words,
            ]
        )
    return rows


async def measure(ctx: Context, runs: int = 10, latencies: tuple[int, ...] = (0, 500)) -> Section:
    rows: list[list[str]] = []
    data: dict[str, Any] = {
        "runs": runs,
        "order": "interleaved, rotating",
        "target_share": TARGET_SHARE,
        "latencies": {},
    }
    words = _write_words()
    settings = bench_settings(ctx.scripts)
    watcher = await _Watcher.start(ctx.address)
    try:
        async with running_workers(ctx.client, ctx.store, settings):
            for latency in latencies:
                for way in WAYS:  # warm-up
                    await _one(ctx, settings, latency, way, words, watcher)
                rounds: list[dict[str, dict[str, float]]] = []
                for index in range(runs):
                    order = WAYS[index % len(WAYS) :] + WAYS[: index % len(WAYS)]
                    rounds.append(
                        {w: await _one(ctx, settings, latency, w, words, watcher) for w in order}
                    )
                figures = _figures(rounds)
                data["latencies"][str(latency)] = figures
                rows.extend(_rows(latency, figures))
    finally:
        await watcher.stop()
    return Section(
        name="streaming",
        title=f"9. Live runs: nobody watching, steps watched, answer streamed "
        f"({runs} interleaved rounds, median)",
        headers=[
            "model latency",
            "way",
            "wall ms",
            "vs off, paired",
            "vs off, medians",
            "history events",
            "workflow tasks",
            "signals",
            "updates",
            "first words ms",
        ],
        rows=rows,
        data=data,
        notes=[
            f"Target: streaming (`tokens`) adds at most {TARGET_SHARE:.0%} to the flow's wall"
            " time at 500 ms (the paired figure: each round's wall against the same round's"
            " `off`). Steps cost no events of their own and a watcher reads by query, which"
            " records none; token batches are signals, each waking the workflow for a task. First"
            f" words: from the model writing them to the watcher, target"
            f" {FIRST_TOKEN_TARGET_SECONDS:.0f} s."
        ],
    )


if __name__ == "__main__":
    asyncio.run(_watch_lines(sys.argv[1]))
