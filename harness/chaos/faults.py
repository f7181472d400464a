"""Firing a seed's faults at their moments against the live processes.

Faults on a model call are armed on the endpoint before the runs start (the
call is then held or hung, so a kill or a cancel lands while it is in flight);
faults on a saga step make the ticket service hold its answer after the commit,
so the step is still in flight when the commit is seen. Each fault records when
it actually fired, or that its moment never came (the run ended first).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from temporalio.client import Client

from harness.chaos.ledger import Ledger
from harness.chaos.model_endpoint import ModelFault, ScriptedEndpoint
from harness.chaos.plan import Fault
from harness.chaos.processes import DevServer, TicketServiceProcess, WorkerProcess
from harness.chaos.runs import Queues, RunRecord, cancel_run

# The step whose commit means the next call of a route is the one to slow down.
PREVIOUS_STEP = {
    "create-subtask-0": "create-ticket",
    "create-subtask-1": "create-subtask-0",
    "assign": "create-subtask-2",
    "notify": "assign",
}


@dataclass
class Fired:
    fault: Fault
    at: float | None = None  # seconds since the seed's start
    note: str = ""
    # For a kill or a server restart: when the process was back.
    back_at: float | None = None

    def line(self, labels: dict[int, str]) -> str:
        when = f"{self.at:6.1f} s" if self.at is not None else "   --   "
        text = self.fault.describe(labels)
        note = f"  [{self.note}]" if self.note else ""
        return f"  {when}  {text}{note}"


@dataclass
class SeedContext:
    """What faults act on during one seed: the harness's processes and the seed's runs."""

    client: Client
    queues: Queues
    endpoint: ScriptedEndpoint
    tickets: TicketServiceProcess
    ledger: Ledger
    server: DevServer
    workers: dict[str, WorkerProcess]
    runs: list[RunRecord] = field(default_factory=list)
    workflow_ids: dict[int, str] = field(default_factory=dict)
    started: float = 0.0
    call_base: int = 0


def arm_model_faults(ctx: SeedContext, faults: list[Fault]) -> None:
    """Before any run starts: the n-th call of this seed is refused, hung, cut or held."""
    for fault in faults:
        if fault.trigger.kind != "model_call":
            continue
        call = ctx.call_base + fault.trigger.call
        if fault.kind == "model" and fault.model_fault is not None:
            ctx.endpoint.arm(ModelFault(fault.model_fault, fault.hold_seconds), on_call=call)
        elif fault.model_fault == "hang":
            ctx.endpoint.arm(ModelFault("hang"), on_call=call)
        elif fault.hold_seconds:
            ctx.endpoint.arm(ModelFault("slow", fault.hold_seconds), on_call=call)


async def fire(ctx: SeedContext, fault: Fault, fired: Fired, limit: float) -> None:
    """Wait for the fault's moment (at most `limit` seconds), then do it."""
    try:
        async with asyncio.timeout(limit):
            ready = await _moment(ctx, fault, fired)
    except TimeoutError:
        fired.note = "moment never came"
        return
    if not ready:
        return
    fired.at = time.monotonic() - ctx.started
    await _act(ctx, fault, fired)


async def _moment(ctx: SeedContext, fault: Fault, fired: Fired) -> bool:
    trigger = fault.trigger
    if trigger.kind == "delay":
        await asyncio.sleep(trigger.seconds)
        return True
    if trigger.kind == "model_call":
        await ctx.endpoint.wait_for_call(ctx.call_base + trigger.call)
        await asyncio.sleep(trigger.seconds)
        return True
    if trigger.kind == "ticket_commit":
        saga = ctx.workflow_ids[trigger.workload]
        previous = PREVIOUS_STEP.get(trigger.step)
        if fault.after_commit_ms and fault.route is not None:
            if previous is not None:
                await ctx.ledger.wait_committed(f"{saga}:{previous}")
            await ctx.tickets.fault(fault.route, after_commit_ms=fault.after_commit_ms)
        await ctx.ledger.wait_committed(f"{saga}:{trigger.step}")
        await asyncio.sleep(trigger.seconds)
        return True
    return True


async def _act(ctx: SeedContext, fault: Fault, fired: Fired) -> None:
    if fault.kind == "kill_worker":
        worker = ctx.workers[fault.role]
        async with worker.lock:
            await worker.kill()
            await asyncio.sleep(fault.down_seconds)
            fired.back_at = await worker.start() - ctx.started
    elif fault.kind == "restart_server":
        async with ctx.server.lock:
            await ctx.server.stop()
            await asyncio.sleep(fault.down_seconds)
            await ctx.server.start()
            fired.back_at = time.monotonic() - ctx.started
    elif fault.kind == "cancel":
        while True:  # the moment may come before the run was even submitted
            if len(ctx.runs) >= fault.target:
                break
            await asyncio.sleep(0.05)
        record = ctx.runs[fault.target - 1]
        if record.ended is not None:
            fired.note = "run had already ended"
            return
        fired.note = await cancel_run(ctx.client, ctx.queues, record, fault.via)
    elif fault.kind == "slow_tickets" and fault.route is not None:
        await ctx.tickets.fault(
            fault.route, hold_ms=fault.hold_ms, after_commit_ms=fault.after_commit_ms
        )
