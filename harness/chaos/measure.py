"""Recovery figures for issue 11's targets, measured on the real processes.

- kill: kill -9 the LLM worker while a model call is in flight, restart it;
  seconds from the restart until the call is tried again (the run progresses).
  Target: the heartbeat timeout + 5 s.
- cancel: cancel a run whose model call hangs while a second run waits for the
  model slot; seconds until the second run's call reaches the model (and until
  the hung request was dropped). Target: 5 s.
- outage: stop the Temporal server for 20 s while a model call is in flight;
  what that adds to a research run's wall time. Target: the outage + 10 s.

Workers here use the provider's default request timeout (60 s), as deployed.
These are figures to read, not assertions: timings on a shared 2-core machine vary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.chaos.model_endpoint import ModelFault
from harness.chaos.plan import Workload
from harness.chaos.processes import WorkerProcess
from harness.chaos.runs import Queues, RunRecord, cancel_run, start_run, wait_closed

if TYPE_CHECKING:
    from harness.chaos.harness import Suite

PROVIDER_TIMEOUT_SECONDS = 60.0  # WorkerSettings' default
LIMIT_SECONDS = 400.0
OUTAGE_SECONDS = 20.0
RESEARCH = Workload(1, "research")


@asynccontextmanager
async def _workers(
    suite: Suite, name: str
) -> AsyncIterator[tuple[Queues, dict[str, WorkerProcess]]]:
    queues = Queues(
        suite.server.address, f"measure-{name}-{suite.nonce}", f"measure-llm-{name}-{suite.nonce}"
    )
    config = replace(
        suite.worker_config(queues, suite.data_dir / f"measure-{name}"),
        provider_timeout_seconds=PROVIDER_TIMEOUT_SECONDS,
    )
    workers = {role: WorkerProcess(config, role) for role in ("orchestration", "llm")}
    await asyncio.gather(*(w.start() for w in workers.values()))
    try:
        yield queues, workers
    finally:
        await asyncio.gather(*(w.stop() for w in workers.values()))


async def _start(suite: Suite, queues: Queues, tag: str) -> RunRecord:
    return await start_run(suite.client, queues, RESEARCH, f"{tag}-{suite.nonce}")


async def kill_mid_call(suite: Suite) -> dict[str, Any]:
    async with _workers(suite, "kill") as (queues, workers):
        suite.endpoint.disarm()
        first = len(suite.endpoint.calls) + 1
        suite.endpoint.arm(ModelFault("slow", 5.0), on_call=first)
        record = await _start(suite, queues, "measure-kill")
        await suite.endpoint.wait_for_call(first, limit=60)
        await asyncio.sleep(1.0)
        await workers["llm"].kill()
        await asyncio.sleep(1.0)
        restarted = await workers["llm"].start()
        call = await suite.endpoint.wait_for_call(after=restarted, limit=LIMIT_SECONDS)
        await wait_closed(suite.client, record, LIMIT_SECONDS)
        return {
            "seconds_from_restart_to_progress": round(call.arrived - restarted, 1),
            "run": record.status,
            "run_seconds": round(record.seconds or -1, 1),
        }


async def cancel_hung_call(suite: Suite) -> dict[str, Any]:
    async with _workers(suite, "cancel") as (queues, _):
        suite.endpoint.disarm()
        first = len(suite.endpoint.calls) + 1
        suite.endpoint.arm(ModelFault("hang"), on_call=first)
        hung = await _start(suite, queues, "measure-hung")
        call = await suite.endpoint.wait_for_call(first, limit=60)
        waiting = await _start(suite, queues, "measure-waiting")
        await asyncio.sleep(1.0)  # the second run's call is queued behind the hung one
        cancelled = time.monotonic()
        await cancel_run(suite.client, queues, hung, "sdk")
        second = await suite.endpoint.wait_for_call(after=cancelled, limit=LIMIT_SECONDS)
        dropped = await suite.endpoint.wait_abandoned(call, LIMIT_SECONDS)
        await wait_closed(suite.client, hung, LIMIT_SECONDS)
        await wait_closed(suite.client, waiting, LIMIT_SECONDS)
        return {
            "seconds_until_slot_free": round(second.arrived - cancelled, 1),
            "seconds_until_hung_request_dropped": (
                round(dropped - cancelled, 1) if dropped is not None else None
            ),
            "cancelled_run": hung.status,
            "waiting_run": waiting.status,
        }


async def outage_mid_call(suite: Suite) -> dict[str, Any]:
    async def one(tag: str, outage: bool) -> float:
        async with _workers(suite, tag) as (queues, _):
            suite.endpoint.disarm()
            first = len(suite.endpoint.calls) + 1
            suite.endpoint.arm(ModelFault("slow", 3.0), on_call=first)
            record = await _start(suite, queues, f"measure-{tag}")
            if outage:
                await suite.endpoint.wait_for_call(first, limit=60)
                await asyncio.sleep(0.5)
                async with suite.server.lock:
                    await suite.server.stop()
                    await asyncio.sleep(OUTAGE_SECONDS)
                    await suite.server.start()
            await wait_closed(suite.client, record, LIMIT_SECONDS)
            return record.seconds or LIMIT_SECONDS

    baseline = await one("baseline", False)
    faulted = await one("outage", True)
    return {
        "outage_seconds": OUTAGE_SECONDS,
        "baseline_run_seconds": round(baseline, 1),
        "run_seconds_with_outage": round(faulted, 1),
        "delay_added_seconds": round(faulted - baseline, 1),
    }


async def measure_all(suite: Suite) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, measure, target in (
        ("kill_mid_model_call", kill_mid_call, "progress within heartbeat timeout + 5 s"),
        ("cancel_hung_model_call", cancel_hung_call, "model slot free within 5 s"),
        ("server_outage_20s", outage_mid_call, "delay at most outage + 10 s"),
    ):
        figures = await measure(suite)
        results[name] = {"target": target, **figures}
        print(f"measure {name}: {figures} (target: {target})", flush=True)
    return results
