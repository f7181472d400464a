"""6. History economy: what one agent turn adds to a history, and how long a run can talk.

    python -m harness.bench --only history [--max-turns 2000]

A turn is one model call. The research flow's history gives events and bytes per
turn as the flow makes them (prompt variables in, validated output back); then a
conversation workflow makes one call per turn, carrying only the new message,
until one more turn would cross Temporal's warning limits (10,240 events or 10 MB):
the longest conversation one run can hold before it should continue-as-new. At
about 100 ms a turn that takes minutes, so by default the run stops at --max-turns
and the longest conversation is extrapolated from its per-turn figures.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.worker import Worker

from harness.bench.common import (
    Context,
    Section,
    Stopwatch,
    bench_settings,
    history_bytes,
    research_input,
    running_workers,
)
from harness.bench.workflows import (
    BENCH_WORKFLOWS,
    WARN_BYTES,
    WARN_EVENTS,
    ConversationInput,
    ConversationWorkflow,
)
from keel.infra.settings import WorkerSettings
from workflows.research import ResearchWorkflow


async def _conversation(ctx: Context, settings: WorkerSettings, max_turns: int) -> dict[str, Any]:
    """A conversation run to --max-turns or the history limits, and what fits per turn."""
    watch = Stopwatch()
    result = await ctx.client.execute_workflow(
        ConversationWorkflow.run,
        ConversationInput(
            script="conversation", llm_task_queue=settings.llm_task_queue, max_turns=max_turns
        ),
        id=f"bench-conversation-{uuid.uuid4().hex[:8]}",
        task_queue=f"{settings.task_queue}-conv",
    )
    per_turn_events = result.history_events / max(result.turns, 1)
    per_turn_bytes = result.history_bytes / max(result.turns, 1)
    return {
        **result.model_dump(),
        "events_per_turn": round(per_turn_events, 2),
        "bytes_per_turn": round(per_turn_bytes),
        "wall_s": round(watch.elapsed(), 1),
        "stopped_by": "max_turns" if result.turns >= max_turns else "history limits",
        # Past --max-turns, where the run stopped short of the limits: what fits.
        "longest_turns": result.turns
        if result.turns < max_turns
        else int(min(WARN_EVENTS / per_turn_events, WARN_BYTES / per_turn_bytes)),
    }


async def measure(ctx: Context, max_turns: int = 300) -> Section:
    settings = bench_settings(ctx.scripts, llm_concurrency=2)
    bench_worker = Worker(
        ctx.client, task_queue=f"{settings.task_queue}-conv", workflows=BENCH_WORKFLOWS
    )
    data: dict[str, Any] = {"warning_limits": {"events": WARN_EVENTS, "bytes": WARN_BYTES}}
    async with running_workers(ctx.client, ctx.store, settings, extra=[bench_worker]):
        handle = await ctx.client.start_workflow(
            ResearchWorkflow.run,
            research_input(0, settings),
            id=f"bench-history-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
        report = await handle.result()
        history = await handle.fetch_history()
        turns = report.usage.calls
        size = history_bytes(history)
        data["research_flow"] = {
            "model_calls": turns,
            "events": len(history.events),
            "bytes": size,
            "events_per_turn": round(len(history.events) / turns, 1),
            "bytes_per_turn": round(size / turns),
        }
        data["conversation"] = await _conversation(ctx, settings, max_turns)
    flow = data["research_flow"]
    conv = data["conversation"]
    return Section(
        name="history",
        title="6. History economy per agent turn (one model call)",
        headers=["run", "turns", "events", "KiB", "events/turn", "bytes/turn"],
        rows=[
            [
                "research flow",
                str(flow["model_calls"]),
                str(flow["events"]),
                f"{flow['bytes'] / 1024:.1f}",
                f"{flow['events_per_turn']}",
                f"{flow['bytes_per_turn']:,}",
            ],
            [
                f"conversation run ({conv['stopped_by']})",
                f"{conv['turns']:,}",
                f"{conv['history_events']:,}",
                f"{conv['history_bytes'] / 1024:.0f}",
                f"{conv['events_per_turn']}",
                f"{conv['bytes_per_turn']:,}",
            ],
        ],
        data=data,
        notes=[
            f"longest conversation under {WARN_EVENTS:,} events / 10 MB:"
            f" {conv['longest_turns']:,} turns"
            + (" (extrapolated; --max-turns 2000 runs it)" if conv["turns"] >= max_turns else "")
        ],
    )
