"""Command line of the fault suite.

    python -m harness.chaos --seed 7            # one seed: its schedule, runs and invariants
    python -m harness.chaos --seeds 200         # seeds 1..200
    python -m harness.chaos --seeds 20 --list   # the schedules only, nothing runs
    python -m harness.chaos --measure           # recovery figures (kill, cancel, outage)

Exit code 0 when every invariant held on every seed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.chaos.harness import SeedResult, Suite, SuiteSettings
from harness.chaos.plan import plan_seed
from harness.chaos.report import seed_text, summary, table, write_summary


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.chaos", description=__doc__.split("\n\n")[0]
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, action="append", help="run this seed (repeatable)")
    which.add_argument("--seeds", type=int, default=10, help="run seeds FIRST..FIRST+N-1")
    parser.add_argument("--first", type=int, default=1, help="first seed of --seeds")
    parser.add_argument("--list", action="store_true", help="print the schedules, run nothing")
    parser.add_argument("--measure", action="store_true", help="measure recovery times too")
    parser.add_argument(
        "--measure-only", action="store_true", help="measure recovery times, run no seeds"
    )
    parser.add_argument("--json", type=Path, help="write a JSON summary here")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    parser.add_argument("--data-dir", type=Path, help="where run folders go (.data/chaos)")
    parser.add_argument(
        "--provider-timeout",
        type=float,
        default=15.0,
        help="the workers' model request timeout, seconds (a hung call costs this much)",
    )
    parser.add_argument(
        "--recovery",
        type=float,
        default=25.0,
        help="seconds a crash or an outage may add to a run's bound",
    )
    parser.add_argument(
        "--grace", type=float, default=60.0, help="seconds a run is awaited past its bound"
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, seeds: list[int]) -> int:
    settings = SuiteSettings(
        data_dir=args.data_dir,
        keep=args.keep,
        provider_timeout_seconds=args.provider_timeout,
        recovery_seconds=args.recovery,
        grace_seconds=args.grace,
    )
    results: list[SeedResult] = []
    measures: dict[str, Any] = {}
    async with Suite(settings) as suite:
        print(f"data in {suite.data_dir}", flush=True)
        if not args.measure_only:
            for seed in seeds:
                result = await suite.run_seed(plan_seed(seed))
                results.append(result)
                print(seed_text(result), flush=True)
            print()
            print(table(results), flush=True)
        if args.measure or args.measure_only:
            from harness.chaos.measure import measure_all

            measures = await measure_all(suite)
    if args.json:
        write_summary(args.json, summary(results, measures))
    return 0 if all(r.passed for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    seeds: list[int] = args.seed or list(range(args.first, args.first + args.seeds))
    if args.list:
        for seed in seeds:
            print("\n".join(plan_seed(seed).lines()))
        return 0
    try:
        return asyncio.run(run(args, seeds))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
