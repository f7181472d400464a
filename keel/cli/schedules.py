"""`client.py schedule create|list|describe|pause|unpause|trigger|delete`: Temporal Schedules.

A schedule holds one flow's start, built by the same code as the flow's own command
(`research`, `ask`, `agent`, `incident`, or `run` for a flow of the user's own) from the
same arguments, and the server starts it at each time of its spec: the server keeps the
times, the overlap policy and the catch-up after an outage, so no worker or cron daemon
of ours has to be up to keep them.
Its runs are batch work (priority 4 unless --priority says otherwise), carry the
schedule's id as the `TemporalScheduledById` search attribute (`list` shows it, the
Web UI filters on it) and are named `<flow>-<schedule id>-<time>` (for `run`, the
type name in lower case).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Schedule,
    ScheduleActionExecution,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleListActionStartWorkflow,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from keel.cli.agent import agent_input
from keel.cli.ask import ask_input
from keel.cli.commands import priority_dict
from keel.cli.context import EXIT_FAILED, EXIT_OK, Context, UsageError, err
from keel.cli.incident import incident_input
from keel.cli.priority import WorkClass
from keel.cli.run_flow import flow_arguments
from keel.cli.schedule_spec import OVERLAP_POLICIES, Overlap, describe_interval, schedule_spec
from keel.cli.start import priority_for, research_input
from keel.infra.settings import KeelSettings
from workflows.agent import AgentWorkflow
from workflows.intent_router import IntentRouterWorkflow
from workflows.research import ResearchWorkflow
from workflows.ticket_saga import TicketSagaWorkflow

OVERLAP_NAMES = {policy: name.value for name, policy in OVERLAP_POLICIES.items()}
# How long `trigger` waits to name the run the schedule started.
TRIGGER_WAIT_SECONDS = 10.0


Args = argparse.Namespace


@dataclass(frozen=True)
class Startable:
    """A flow as a schedule starts it: the workflow and arguments its own command starts."""

    workflow: Callable[[Args], Any]  # a workflow's run method, or a type name
    build: Callable[[Args, KeelSettings], list[Any]]
    summary: Callable[[Args], str]
    prefix: Callable[[Args], str]  # its runs are <prefix>-<schedule id>-<time>


def _keel_flow(
    name: str,
    run: Callable[..., Any],
    build: Callable[[Args, KeelSettings], BaseModel],
    summary: Callable[[Args], str],
) -> Startable:
    return Startable(lambda _: run, lambda a, k: [build(a, k)], summary, lambda _: name)


STARTABLE: dict[str, Startable] = {
    "research": _keel_flow("research", ResearchWorkflow.run, research_input, lambda a: a.question),
    "ask": _keel_flow(
        "ask",
        IntentRouterWorkflow.run,
        lambda a, k: ask_input(a, k.llm_task_queue),
        lambda a: a.request,
    ),
    "agent": _keel_flow(
        "agent",
        AgentWorkflow.run,
        lambda a, k: agent_input(a, k.llm_task_queue),
        lambda a: f"{a.name}: {a.task}",
    ),
    "incident": _keel_flow(
        "incident", TicketSagaWorkflow.run, incident_input, lambda a: a.description
    ),
    # A flow of the user's own, by the type name its worker registers (worker.py --flow).
    "run": Startable(
        lambda a: a.workflow_type,
        lambda a, _: flow_arguments(a),
        lambda a: a.workflow_type,
        lambda a: a.workflow_type.lower(),
    ),
}


def _refuse_per_run_flags(args: argparse.Namespace) -> None:
    """Flags that only mean something for one run started now."""
    for flag, given in (
        ("--request-id", getattr(args, "request_id", None)),
        ("--id", getattr(args, "id", None)),
    ):
        if given:
            prefix = STARTABLE[args.flow].prefix(args)
            raise UsageError(
                f"{flag} does not apply to a schedule: its runs are named"
                f" {prefix}-{args.schedule_id}-<time>"
            )
    if getattr(args, "wait", False):
        raise UsageError("--wait does not apply to a schedule: `schedule trigger` starts a run")
    if getattr(args, "budget_seconds", None):
        raise UsageError(
            "--budget-seconds fixes one deadline at submission, which every scheduled run"
            " would share; use --budget-tokens or --budget-cost"
        )


def _when(args: argparse.Namespace) -> str:
    """The schedule's times as the user gave them, kept in its memo for `list`."""
    parts = [f"cron {c!r}" for c in args.cron]
    parts += [f"every {describe_interval(e)}" for e in args.every]
    zone = f" {args.time_zone}" if args.time_zone else ""
    return ", ".join(parts) + zone


def schedule_for(args: argparse.Namespace, keel: KeelSettings) -> Schedule:
    flow = STARTABLE[args.flow]
    action = ScheduleActionStartWorkflow(
        flow.workflow(args),
        args=flow.build(args, keel),
        id=f"{flow.prefix(args)}-{args.schedule_id}",
        task_queue=keel.task_queue,
        static_summary=flow.summary(args)[:200],
        priority=priority_for(args, WorkClass.BATCH, keel),
    )
    return Schedule(
        action=action,
        spec=schedule_spec(args.cron, args.every, args.time_zone),
        policy=SchedulePolicy(
            overlap=OVERLAP_POLICIES[Overlap(args.overlap)], catchup_window=args.catchup_window
        ),
        state=ScheduleState(note=args.note, paused=args.paused),
    )


async def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    if not args.cron and not args.every:
        raise UsageError("a schedule needs --cron EXPRESSION or --every DURATION")
    _refuse_per_run_flags(args)
    schedule = schedule_for(args, ctx.keel)
    flow = args.workflow_type if args.flow == "run" else args.flow
    try:
        await ctx.client.create_schedule(
            args.schedule_id, schedule, memo={"flow": flow, "when": _when(args)}
        )
    except ScheduleAlreadyRunningError:
        raise UsageError(
            f"schedule {args.schedule_id!r} already exists; choose another id, or"
            f" `client.py schedule delete {args.schedule_id}` first"
        ) from None
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            raise UsageError(f"the server refused the schedule: {error.message}") from None
        raise
    state = "paused" if args.paused else "active"
    print(json.dumps({"schedule_id": args.schedule_id, "flow": flow, "state": state}))
    err(f"{flow} {_when(args)}, overlap {args.overlap}; runs show in `client.py list`")
    return EXIT_OK


async def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    rows = []
    async for entry in await ctx.client.list_schedules():
        memo = await entry.memo()
        info, listed = entry.info, entry.schedule
        recent = info.recent_actions[-1].action if info and info.recent_actions else None
        upcoming = info.next_action_times if info else []
        workflow_type = None
        if listed and isinstance(listed.action, ScheduleListActionStartWorkflow):
            workflow_type = listed.action.workflow
        rows.append(
            {
                "schedule_id": entry.id,
                "flow": memo.get("flow") or workflow_type,
                "when": memo.get("when") or (_spec_text(listed.spec) if listed else None),
                "state": ("paused" if listed.state.paused else "active") if listed else None,
                "next": _iso(upcoming[0]) if upcoming else None,
                "last_run": _workflow_id(recent),
            }
        )
    rows.sort(key=lambda r: str(r["schedule_id"]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    keys = ("schedule_id", "flow", "state", "next", "last_run", "when")
    table: list[tuple[str, ...]] = [("SCHEDULE", "FLOW", "STATE", "NEXT", "LAST RUN", "WHEN")]
    table += [tuple(str(r[k] or "-") for k in keys) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(keys) - 1)]
    for row in table:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    err(f"{len(rows)} schedule(s)")
    return EXIT_OK


def _spec_text(spec: ScheduleSpec) -> str:
    """A schedule made elsewhere (no memo): its intervals, or that it has calendars."""
    parts = [f"every {describe_interval(i.every)}" for i in spec.intervals]
    parts += [f"cron {c!r}" for c in spec.cron_expressions]
    if spec.calendars:
        parts.append("calendar")
    return ", ".join(parts)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _workflow_id(action: ScheduleActionExecution | None) -> str | None:
    return action.workflow_id if isinstance(action, ScheduleActionExecutionStartWorkflow) else None


Command = Callable[[Context, argparse.Namespace], Awaitable[int]]


def _one_schedule(command: Command) -> Command:
    """A command on one schedule by id: a missing one is one line naming it, exit 1."""

    @functools.wraps(command)
    async def run(ctx: Context, args: argparse.Namespace) -> int:
        try:
            return await command(ctx, args)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            err(f"error: no schedule {args.schedule_id!r} (see `client.py schedule list`)")
            return EXIT_FAILED

    return run


@_one_schedule
async def cmd_describe(ctx: Context, args: argparse.Namespace) -> int:
    description = await ctx.client.get_schedule_handle(args.schedule_id).describe()
    print(json.dumps(await _described(description), indent=2, default=str))
    return EXIT_OK


async def _described(description: ScheduleDescription) -> dict[str, object]:
    schedule, info = description.schedule, description.info
    memo = await description.memo()
    action = schedule.action
    out: dict[str, object] = {
        "schedule_id": description.id,
        "flow": memo.get("flow"),
        "when": memo.get("when") or _spec_text(schedule.spec),
        "state": "paused" if schedule.state.paused else "active",
        "note": schedule.state.note,
    }
    policy = schedule.policy
    out["overlap"] = OVERLAP_NAMES.get(policy.overlap, policy.overlap.name.lower())
    window = policy.catchup_window
    out["catchup_window"] = describe_interval(window) if window else None
    if isinstance(action, ScheduleActionStartWorkflow):
        out["workflow_type"] = action.workflow
        out["task_queue"] = action.task_queue
        out["priority"] = priority_dict(action.priority)
    out["runs"] = info.num_actions
    out["skipped_overlap"] = info.num_actions_skipped_overlap
    out["missed_catchup_window"] = info.num_actions_missed_catchup_window
    out["running"] = [_workflow_id(a) for a in info.running_actions]
    out["recent"] = [
        {"workflow_id": _workflow_id(r.action), "scheduled_at": _iso(r.scheduled_at)}
        for r in info.recent_actions
    ]
    out["next"] = [_iso(t) for t in info.next_action_times[:3]]
    return out


@_one_schedule
async def cmd_pause(ctx: Context, args: argparse.Namespace) -> int:
    handle = ctx.client.get_schedule_handle(args.schedule_id)
    if args.action == "pause":
        await handle.pause(note=args.note or "paused from client.py")
    else:
        await handle.unpause(note=args.note or "unpaused from client.py")
    print(json.dumps({"schedule_id": args.schedule_id, "state": f"{args.action}d"}))
    return EXIT_OK


@_one_schedule
async def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.get_schedule_handle(args.schedule_id).delete()
    err(f"schedule {args.schedule_id} deleted; the runs it started are kept")
    return EXIT_OK


@_one_schedule
async def cmd_trigger(ctx: Context, args: argparse.Namespace) -> int:
    """Start the schedule's flow now, then name the run it started (or say it was skipped)."""
    handle = ctx.client.get_schedule_handle(args.schedule_id)
    before = (await handle.describe()).info
    overlap = OVERLAP_POLICIES[Overlap(args.overlap)] if args.overlap else None
    await handle.trigger(overlap=overlap)
    deadline = time.monotonic() + TRIGGER_WAIT_SECONDS
    while time.monotonic() < deadline:
        info = (await handle.describe()).info
        started = _workflow_id(info.recent_actions[-1].action) if info.recent_actions else None
        if info.num_actions > before.num_actions and started:
            print(json.dumps({"schedule_id": args.schedule_id, "workflow_id": started}))
            err(f"Web UI: {ctx.link(started, None)}")
            return EXIT_OK
        if info.num_actions_skipped_overlap > before.num_actions_skipped_overlap:
            running = ", ".join(filter(None, map(_workflow_id, info.running_actions)))
            err(f"skipped: its last run {running or ''} still runs (overlap skip)")
            break
        await asyncio.sleep(0.2)
    else:
        err(f"triggered {args.schedule_id}; no run started in {TRIGGER_WAIT_SECONDS:.0f} s")
    print(json.dumps({"schedule_id": args.schedule_id, "workflow_id": None}))
    return EXIT_OK
