"""Starting a run from the command line: its input from the flags, started once, watched."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    Priority,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Context, UsageError, err
from keel.cli.live import LiveView, follow, no_channel
from keel.cli.priority import WorkClass, run_priority
from keel.cli.queued import waiting_for_model
from keel.cli.render import refusal, report_text, root_cause
from keel.infra.settings import KeelSettings
from keel.payloads.live import LiveEvent
from keel.payloads.llm import Budget, ModelChoice
from keel.payloads.research import ResearchInput, ResearchReport
from keel.rules.tenants import TENANT_NAME
from workflows.research import ResearchWorkflow

PROGRESS_POLL_SECONDS = 0.5


NO_WORKER_HINT_SECONDS = 5.0


# After a run's result, how long its watcher may take to read the rest of its channel.
DRAIN_SECONDS = 10.0


# A run quiet this long is asked whether its model call is still waiting for a slot.
QUEUED_CHECK_SECONDS = 2.0


# A script of the scripted provider is a file stem in the worker's scripted folder.
SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def checked_model(provider: str, model: str | None) -> ModelChoice:
    """A provider and model, refused here when the worker could only fail on them."""
    if provider == "scripted" and not model:
        raise UsageError(
            "--provider scripted needs --model <script> (a file stem of tests/fixtures/scripted/)"
        )
    if provider == "scripted" and model and not SCRIPT_NAME.match(model):
        raise UsageError(f"--model {model!r} is not a script name (letters, digits, _ and -)")
    return ModelChoice.model_validate({"provider": provider, **({"model": model} if model else {})})


def model_choice(args: argparse.Namespace) -> ModelChoice:
    """--provider and --model; the provider's default model when --model is left out."""
    return checked_model(args.provider, args.model)


def priority_for(args: argparse.Namespace, work: WorkClass, keel: KeelSettings) -> Priority:
    """--tenant, --priority and --fairness-weight; what is left out, from `work` and KEEL_TENANT."""
    tenant = getattr(args, "tenant", None) or keel.tenant
    if not TENANT_NAME.match(tenant):
        raise UsageError(
            f"KEEL_TENANT={tenant!r} is not a tenant name (1-64 letters, digits, '.', '_', '-')"
        )
    return run_priority(
        work, tenant, getattr(args, "priority", None), getattr(args, "fairness_weight", None)
    )


def research_input(args: argparse.Namespace, keel: KeelSettings) -> ResearchInput:
    model = model_choice(args)
    fallbacks = []
    for spec in args.fallback:
        provider, _, name = spec.partition("/")
        fallbacks.append(checked_model(provider, name or None))
    return ResearchInput(
        question=args.question,
        namespace=args.corpus,
        clearance=args.clearance,
        model=model,
        fallback_models=fallbacks,
        llm_task_queue=keel.llm_task_queue,
        max_refinements=args.max_refinements,
        max_revisions=args.max_revisions,
        budget=budget_input(args),
        stream_tokens=wants_tokens(args),
    )


def wants_tokens(args: argparse.Namespace) -> bool:
    """--stream/--no-stream; by default only a command that prints to a terminal streams.

    Token deltas reach the run as batched signals, so a run nobody watches live
    (`start`, a pipe, an API caller) keeps its history short.
    """
    choice: bool | None = getattr(args, "stream", None)
    if choice is not None:
        return choice
    return args.command in ("research", "ask", "agent") and sys.stderr.isatty()


async def watch_run(
    ctx: Context, workflow_id: str, result: asyncio.Future[Any], view: LiveView
) -> None:
    """Show the run's channel while its result is awaited; say so when no worker has it."""
    watcher = asyncio.ensure_future(follow(ctx.client, workflow_id, view))
    started = time.monotonic()
    seen, quiet_since, told_queued = 0, time.monotonic(), -1
    while not result.done():
        await asyncio.wait([result, watcher], timeout=PROGRESS_POLL_SECONDS)
        if watcher.done() and not result.done():
            break  # the channel cannot be read; the result is still awaited below
        if view.events != seen:
            seen, quiet_since = view.events, time.monotonic()
        elif (
            seen
            and told_queued != seen
            and time.monotonic() - quiet_since > QUEUED_CHECK_SECONDS
            and await waiting_for_model(ctx, workflow_id)
        ):
            view.show("", LiveEvent(kind="step", text="queued: waiting for a free model slot"))
            told_queued = seen = view.events
        if not view.events and time.monotonic() - started > NO_WORKER_HINT_SECONDS:
            view.flush_preamble()
            err(
                f"still waiting for a worker on task queue {ctx.keel.task_queue!r};"
                " start one with `python worker.py` (the run is kept meanwhile)"
            )
            started = float("inf")
    await asyncio.wait([result])
    try:
        await asyncio.wait_for(watcher, DRAIN_SECONDS)
    except TimeoutError:
        watcher.cancel()
    except Exception as error:  # the live view is a side channel; the result stands
        view.close()
        err(f"{workflow_id}: {no_channel(error)}")
    view.close()


def budget_input(args: argparse.Namespace) -> Budget:
    """--budget-tokens/--budget-cost/--budget-seconds; the deadline is fixed at submission."""
    return Budget(
        max_tokens=args.budget_tokens,
        max_cost_usd=args.budget_cost,
        deadline=datetime.now(UTC) + timedelta(seconds=args.budget_seconds)
        if args.budget_seconds
        else None,
    )


async def start_once(
    ctx: Context,
    run: Any,
    arg: BaseModel,
    workflow_id: str,
    summary: str,
    search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
    priority: Priority = Priority.default,
) -> tuple[str, bool]:
    """Start a flow under this id, or find the run that id already started.

    Returns the run id and whether it already existed: the same request id never
    starts a second run, whether the first is still running or has finished. The
    priority holds for every activity and child workflow the run schedules.
    """
    try:
        handle = await ctx.client.start_workflow(
            run,
            arg,
            id=workflow_id,
            task_queue=ctx.keel.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summary[:200],
            search_attributes=search_attributes,
            priority=priority,
        )
        return handle.result_run_id or handle.run_id or "", False
    except WorkflowAlreadyStartedError:
        description = await ctx.client.get_workflow_handle(workflow_id).describe()
        return description.run_id, True


async def start_asked(
    ctx: Context, args: argparse.Namespace, prefix: str, run: Any, arg: BaseModel, summary: str
) -> tuple[str, str, bool]:
    """A run a person asked for: `<prefix>-<--request-id or a new id>`, started once, ahead
    of batch work. Returns its workflow id, run id and whether it already existed."""
    workflow_id = f"{prefix}-{args.request_id or uuid.uuid4().hex[:12]}"
    priority = priority_for(args, WorkClass.INTERACTIVE, ctx.keel)
    run_id, existing = await start_once(ctx, run, arg, workflow_id, summary, priority=priority)
    return workflow_id, run_id, existing


async def _start(
    ctx: Context, args: argparse.Namespace
) -> tuple[WorkflowHandle[ResearchWorkflow, ResearchReport], bool]:
    workflow_id, run_id, existing = await start_asked(
        ctx, args, "research", ResearchWorkflow.run, research_input(args, ctx.keel), args.question
    )
    handle = ctx.client.get_workflow_handle_for(ResearchWorkflow.run, workflow_id, run_id=run_id)
    return handle, existing


async def cmd_start(ctx: Context, args: argparse.Namespace) -> int:
    handle, existing = await _start(ctx, args)
    if existing:
        err(f"request {args.request_id!r} was already submitted; this is its run")
    print(json.dumps({"workflow_id": handle.id, "run_id": handle.run_id}))
    err(f"Web UI: {ctx.link(handle.id, handle.run_id)}")
    return EXIT_OK


async def cmd_research(ctx: Context, args: argparse.Namespace) -> int:
    handle, existing = await _start(ctx, args)
    run_id = handle.run_id
    header = [f"workflow {handle.id} run {run_id}", f"Web UI: {ctx.link(handle.id, run_id)}"]
    if existing:
        header.insert(0, f"request {args.request_id!r} was already submitted; showing its run")
    result = asyncio.ensure_future(handle.result())
    view = LiveView(tokens=wants_tokens(args), preamble=header)
    await watch_run(ctx, handle.id, result, view)
    try:
        report = result.result()
    except WorkflowFailureError as failure:
        reason = refusal(failure)
        if reason is not None:
            err(f"research refused: {reason}")
            return EXIT_REFUSED
        view.flush_preamble()
        err(f"research failed: {root_cause(failure)}")
        err(f"Web UI: {ctx.link(handle.id, run_id)}")
        return EXIT_FAILED
    view.flush_preamble()
    print(report.model_dump_json(indent=2) if args.json else report_text(report))
    if not args.json:
        print(f"Web UI: {ctx.link(handle.id, run_id)}")
    return EXIT_OK
