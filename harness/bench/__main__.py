"""Run the benchmark suite against a dev server persisted to SQLite.

    python -m harness.bench                       # everything, sized for a 2-core machine
    python -m harness.bench --only step throughput --runs 10

Prints a table per measurement, writes harness/bench/results/latest.json and
harness/bench/results/latest.png. Figures depend on the machine and on what else runs on it;
the JSON records both (cores, CPU, versions, load average before and after each
measurement). Tests never assert on any of these times.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from harness.bench import (
    codec_overhead,
    fanout,
    flow_events,
    heartbeat_overhead,
    history_economy,
    mcp_overhead,
    priority_wait,
    recovery,
    replay,
    step_overhead,
    storage_overhead,
    streaming,
    throughput,
    where_time_goes,
)
from harness.bench.common import (
    RESULTS_DIR,
    Context,
    Section,
    Stopwatch,
    demo_store,
    dev_server,
    prepare_scripts,
)
from harness.bench.report import format_table, plot, write_json
from harness.machine import load_now, machine
from keel.infra.binaries import DEV_SERVER_ARGS
from keel.infra.logging import configure_logging

MEASUREMENTS = (
    "step",
    "throughput",
    "fanout",
    "recovery",
    "replay",
    "history",
    "where",
    "codec",
    "heartbeat",
    "streaming",
    "events",
    "storage",
    "mcp",
    "priority",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument("--runs", type=int, default=10, help="sequential runs per figure")
    parser.add_argument("--latencies", type=int, nargs="+", default=[0, 500], help="model ms")
    parser.add_argument("--flows", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--agents", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--replay-events", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--max-turns", type=int, default=300, help="conversation turns run")
    parser.add_argument("--probe-steps", type=int, default=20)
    parser.add_argument(
        "--batch-runs", type=int, default=100, help="batch flows queued ahead of an interactive one"
    )
    parser.add_argument(
        "--server-variants",
        nargs="*",
        choices=list(where_time_goes.SERVER_VARIANTS),
        default=list(where_time_goes.SERVER_VARIANTS),
        help="server settings probed besides the defaults (each starts a server)",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra `temporal server start-dev` argument for the suite's server, repeatable;"
        " write --server-arg=--flag for values that start with --",
    )
    parser.add_argument(
        "--untuned-server",
        action="store_true",
        help="run the suite's server with Temporal's defaults instead of devserver.py's settings",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    return parser.parse_args(argv)


def _plan(args: argparse.Namespace) -> dict[str, Callable[[Context], Awaitable[Section]]]:
    latencies = tuple(args.latencies)
    return {
        "step": lambda ctx: step_overhead.measure(ctx, args.runs, latencies),
        "throughput": lambda ctx: throughput.measure(ctx, tuple(args.flows), latencies),
        "fanout": lambda ctx: fanout.measure(ctx, tuple(args.agents)),
        "recovery": recovery.measure,
        "replay": lambda ctx: replay.measure(ctx, tuple(args.replay_events)),
        "history": lambda ctx: history_economy.measure(ctx, args.max_turns),
        "where": lambda ctx: where_time_goes.measure(
            ctx, args.probe_steps, args.runs, args.server_variants
        ),
        "codec": lambda ctx: codec_overhead.measure(ctx, args.runs, latencies),
        "heartbeat": lambda ctx: heartbeat_overhead.measure(ctx, args.runs, latencies),
        "streaming": lambda ctx: streaming.measure(ctx, args.runs, latencies),
        "events": lambda ctx: flow_events.measure(ctx, args.runs, latencies),
        "storage": lambda ctx: storage_overhead.measure(ctx, args.runs, latencies),
        "mcp": lambda ctx: mcp_overhead.measure(ctx, args.runs),
        "priority": lambda ctx: priority_wait.measure(ctx, min(args.runs, 3), args.batch_runs),
    }


async def run(args: argparse.Namespace) -> list[Section]:
    info = machine()
    server_args = [*([] if args.untuned_server else DEV_SERVER_ARGS), *args.server_arg]
    info["server_args"] = server_args
    plan = _plan(args)
    sections: list[Section] = []
    total = Stopwatch()
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
        workdir = Path(tmp)
        async with dev_server(workdir, server_args) as env:
            ctx = Context(
                env,
                workdir,
                prepare_scripts(
                    workdir,
                    latencies={
                        0,
                        *args.latencies,
                        heartbeat_overhead.HEARTBEATING_LATENCY_MS,
                        priority_wait.LATENCY_MS,
                    },
                ),
                demo_store(workdir),
            )
            for name in MEASUREMENTS:
                if name not in args.only:
                    continue
                before = load_now()
                watch = Stopwatch()
                section = await plan[name](ctx)
                section.data["load_average_before"] = before
                section.data["load_average_after"] = load_now()
                section.data["seconds"] = round(watch.elapsed(), 1)
                sections.append(section)
                print(format_table(section), end="\n\n", flush=True)
    info["suite_seconds"] = round(total.elapsed(), 1)
    info["load_average_at_end"] = load_now()
    write_json(args.out, info, sections)
    plot(args.out.with_suffix(".png"), sections)
    print(
        f"machine: {info['cores']} cores, {info['cpu_model']}, load {info['load_average_at_start']}"
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.png')} in {info['suite_seconds']} s")
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("console", "ERROR")
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
