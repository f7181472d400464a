"""Rate limits shared by the fleet: throughput against the limit, and what a call pays.

    .venv/bin/python -m harness.bench.rate_limits [--workers 4] [--calls 80]

Starts the dev server as devserver.py runs it, an OpenAI-compatible endpoint that
refuses with 429 what goes over its limit in any rolling window and counts it
(harness/testing/limited_endpoint.py), and `--workers` worker.py processes whose contracts
declare the same limit (120 a minute, over any 10 s). It then runs `--calls` agents of
one model call each at once, and prints what the endpoint refused, the steady rate
after the first window's burst (which the limit allows) against the limit, and how
long calls waited for their slot.

What a call pays for the ledger: one `book` update (with start) before it is sent and
one `settle` after, sent from this process to the ledger the workers run, one caller
at a time and 16 at once (the median of each pair of round trips).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from activities.contracts.loader import CONTRACTS_DIR
from harness.bench.common import dev_server
from harness.testing.limited_endpoint import LimitedEndpoint
from keel.infra.codec import data_converter
from keel.infra.keys import ensure_key_file
from keel.payloads.agents import AgentInput
from keel.payloads.llm import ModelChoice
from keel.rules.rate_limit import (
    BOOK_UPDATE,
    LEDGER_QUERY,
    RATE_LIMITER_WORKFLOW,
    SETTLE_UPDATE,
    Booking,
    Ledger,
    LimiterStart,
    RateLimit,
    Settlement,
    Slot,
    rate_limiter_id,
)
from workflows.agent import AgentWorkflow

ROOT = Path(__file__).resolve().parents[2]
LIMIT, WINDOW = 20, 10.0  # 120 a minute, over any 10 s
MODEL = "openai/gpt-5-mini"
LIMITS_TOML = f"""version = "bench"
[limits."{MODEL}"]
requests_per_minute = {int(LIMIT * 60 / WINDOW)}
window_seconds = {WINDOW}
margin_seconds = 1.5
"""


class Fleet:
    """worker.py processes on one pair of queues, reading one folder of contracts."""

    def __init__(self, address: str, contracts: Path, url: str, workdir: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.task_queue, self.llm_task_queue = f"bench-{suffix}", f"bench-llm-{suffix}"
        self._args = [
            "--address", address, "--task-queue", self.task_queue,
            "--llm-task-queue", self.llm_task_queue, "--metrics-port", "0",
            "--contracts-dir", str(contracts), "--openai-base-url", url,
            "--llm-concurrency", "8", "--log-format", "json",
        ]  # fmt: skip
        self._workdir = workdir
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, count: int) -> None:
        for number in range(count):
            self._processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(ROOT / "worker.py"),
                    *self._args,
                    "--documents-db",
                    str(self._workdir / f"documents-{number}.db"),
                    cwd=ROOT,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    env={
                        **os.environ,
                        "KEEL_LOG_LEVEL": "WARNING",
                        "KEEL_GRACEFUL_SHUTDOWN_SECONDS": "2",
                    },
                )
            )

    async def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            await process.wait()

    async def answer(self, client: Client, model: str, n: int) -> None:
        task = f"why back off, {n}?"
        await client.execute_workflow(
            AgentWorkflow.run,
            AgentInput(
                agent="responder",
                task=task,
                variables={"request": task},
                models=[ModelChoice.model_validate(dict(zip(("provider", "model"),
                                                            model.split("/"), strict=True)))],
                llm_task_queue=self.llm_task_queue,
            ),
            id=f"bench-limited-{uuid.uuid4().hex[:10]}",
            task_queue=self.task_queue,
        )  # fmt: skip


async def throughput(client: Client, fleet: Fleet, endpoint: LimitedEndpoint, calls: int) -> None:
    # Warm: every process has run flows before the burst (another model, not limited).
    await asyncio.gather(*(fleet.answer(client, "openai/gpt-5", n) for n in range(8)))
    await asyncio.sleep(WINDOW)
    warm = endpoint.stats()["served"]
    started = time.perf_counter()
    await asyncio.gather(*(fleet.answer(client, MODEL, n) for n in range(calls)))
    wall = time.perf_counter() - started
    stats = endpoint.stats()
    served = sorted(stats["served_at"])[warm:]
    span = served[-1] - served[0]
    steady = (len(served) - LIMIT) / span * 60
    limit = LIMIT * 60 / WINDOW
    ledger: Ledger = await client.get_workflow_handle(
        rate_limiter_id(fleet.task_queue, MODEL)
    ).query(LEDGER_QUERY, result_type=Ledger)
    busiest = max(sum(1 for t in served if s <= t < s + WINDOW) for s in served)
    print(f"\n{calls} calls at once, {limit:.0f}/min over any {WINDOW:g} s:")
    print(f"  refused by the endpoint   {stats['refused']}")
    print(f"  served                    {len(served)} in {wall:.1f} s")
    print(f"  busiest {WINDOW:g} s window     {busiest} (limit {LIMIT})")
    print(f"  steady rate               {steady:.0f}/min ({steady / limit:.0%} of the limit)")
    print(f"  mean wait for a slot      {ledger.waited_seconds / max(ledger.booked, 1):.1f} s")


async def round_trips(client: Client, task_queue: str, callers: int, rounds: int) -> list[float]:
    """Milliseconds of one book and one settle, as each call pays them."""
    limit = RateLimit(requests_per_minute=100_000)
    label = "harness/bench/round-trips"
    handle = client.get_workflow_handle(rate_limiter_id(task_queue, label))
    times: list[float] = []

    async def one(caller: int) -> None:
        for n in range(rounds):
            call = f"{caller}-{n}-{uuid.uuid4().hex[:6]}"
            began = time.perf_counter()
            await client.execute_update_with_start_workflow(
                BOOK_UPDATE, Booking(id=call, tokens=100, limit=limit),
                start_workflow_operation=WithStartWorkflowOperation(
                    RATE_LIMITER_WORKFLOW, LimiterStart(label=label, limit=limit),
                    id=rate_limiter_id(task_queue, label), task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                ),
                result_type=Slot,
            )  # fmt: skip
            await handle.execute_update(SETTLE_UPDATE, Settlement(id=call, tokens=80))
            times.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(one(c) for c in range(callers)))
    return times


async def cost(client: Client, fleet: Fleet) -> None:
    print("\nwhat a call pays for the ledger (book + settle), ms:")
    for callers in (1, 16):
        times = await round_trips(client, fleet.task_queue, callers, max(40 // callers, 5))
        times.sort()
        p90 = times[int(len(times) * 0.9)]
        print(f"  {callers:>2} at once   median {statistics.median(times):6.1f}   p90 {p90:6.1f}")


async def main(workers: int, calls: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="keel-bench-limits-"))
    os.environ["KEEL_CODEC_KEY_FILE"] = str(workdir / "codec.keys")
    ensure_key_file(workdir / "codec.keys")
    contracts = workdir / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    (contracts / "limits.toml").write_text(LIMITS_TOML)
    try:
        async with AsyncExitStack() as stack:
            # The converter worker.py's processes use: the key file they read.
            env = await stack.enter_async_context(dev_server(workdir, converter=data_converter()))
            endpoint = stack.enter_context(LimitedEndpoint(LIMIT, WINDOW))
            address = env.client.service_client.config.target_host
            fleet = Fleet(address, contracts, endpoint.base_url, workdir)
            await fleet.start(workers)
            stack.push_async_callback(fleet.stop)
            print(f"{workers} worker.py processes, {os.cpu_count()} cores,"
                  f" load {os.getloadavg()[0]:.1f}")  # fmt: skip
            await throughput(env.client, fleet, endpoint, calls)
            await cost(env.client, fleet)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench.rate_limits", description=__doc__
    )
    parser.add_argument("--workers", type=int, default=4, help="worker.py processes")
    parser.add_argument("--calls", type=int, default=80, help="model calls started at once")
    args = parser.parse_args()
    asyncio.run(main(args.workers, args.calls))
