"""The client's commands: each takes a connected client and returns an exit code."""

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
from temporalio.api.common.v1 import Priority as PriorityMessage
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    Priority,
    SearchAttributeKey,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from keel.cli.budgets import budget_gated
from keel.cli.history_watch import follow_history
from keel.cli.kinds import kind_of
from keel.cli.live import LiveView, follow, no_channel
from keel.cli.priority import WorkClass, run_priority
from keel.cli.render import default_ui_url, refusal, report_text, result_text, root_cause, ui_link
from keel.infra.settings import KeelSettings, TemporalSettings
from keel.payloads.documents import IngestRequest, IngestResult
from keel.payloads.live import LiveEvent
from keel.payloads.llm import Budget, ModelChoice
from keel.payloads.research import ResearchInput, ResearchReport
from keel.payloads.tickets import ApprovalDecision, TicketSagaInput
from keel.rules.tenants import TENANT_NAME
from workflows.circuit_breaker import CircuitBreakerWorkflow, breaker_id
from workflows.ingest import IngestWorkflow
from workflows.research import ResearchWorkflow
from workflows.ticket_saga import TicketSagaWorkflow

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4  # the flow refused the caller (clearance, an undeclared namespace, a path)
PROGRESS_POLL_SECONDS = 0.5
NO_WORKER_HINT_SECONDS = 5.0
# After a run's result, how long its watcher may take to read the rest of its channel.
DRAIN_SECONDS = 10.0
# How long approve/reject/feedback wait for the flow to act on the decision.
SETTLE_SECONDS = 10.0
# A run quiet this long is asked whether its model call is still waiting for a slot.
QUEUED_CHECK_SECONDS = 2.0


class Context:
    def __init__(self, client: Client, temporal: TemporalSettings, keel: KeelSettings) -> None:
        # Every run it starts is checked against its tenant's budget first (keel/cli/budgets.py).
        self.client = budget_gated(client, keel)
        self.temporal = temporal
        self.keel = keel

    def link(self, workflow_id: str, run_id: str | None) -> str:
        ui_url = self.keel.ui_url or default_ui_url(self.temporal.address)
        return ui_link(ui_url, self.temporal.namespace, workflow_id, run_id)


def err(message: str) -> None:
    sys.stdout.flush()  # keep the order of stdout and stderr lines on one terminal
    print(message, file=sys.stderr, flush=True)


def failed_run(
    failure: WorkflowFailureError,
    what: str,
    link: str | None = None,
    refused_code: int = EXIT_REFUSED,
) -> int:
    """Say why a run ended in failure and return the exit code: a refusal (the flow
    turned the caller away) or the root cause, then where to look (`link`)."""
    reason = refusal(failure)
    if reason is not None:
        err(f"{what} refused: {reason}")
        return refused_code
    err(f"{what} failed: {root_cause(failure)}")
    if link is not None:
        err(f"Web UI: {link}")
    return EXIT_FAILED


class UsageError(ValueError):
    """Arguments the parser cannot judge alone: one line, exit 2, and no run started."""


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


async def _start(
    ctx: Context, args: argparse.Namespace
) -> tuple[WorkflowHandle[ResearchWorkflow, ResearchReport], bool]:
    workflow_id = f"research-{args.request_id or uuid.uuid4().hex[:12]}"
    run_id, existing = await start_once(
        ctx,
        ResearchWorkflow.run,
        research_input(args, ctx.keel),
        workflow_id,
        args.question,
        priority=priority_for(args, WorkClass.INTERACTIVE, ctx.keel),
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


async def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    """Any flow: its execution status and what its `progress` query says."""
    handle = ctx.client.get_workflow_handle(args.workflow_id)
    description = await handle.describe()
    status = description.status.name if description.status else "UNKNOWN"
    out: dict[str, object] = {"workflow_id": handle.id, "run_id": description.run_id}
    out["type"] = description.workflow_type
    out["status"] = status
    if description.status == WorkflowExecutionStatus.RUNNING:
        out["queued"] = await waiting_for_model(ctx, handle.id)
    kind = kind_of(description.workflow_type)
    out["progress"] = None
    if kind is None or kind.progress:  # a flow of the user's own may answer one too
        try:
            out["progress"] = await handle.query("progress", rpc_timeout=timedelta(seconds=5))
        except WorkflowQueryFailedError as error:
            if kind is not None:
                err(f"progress query failed: {error.message}")
        except RPCError as error:
            err(f"progress query not answered ({error.message}); is a worker running?")
    if description.parent_id:
        out["parent"] = description.parent_id
    out["priority"] = priority_dict(description.raw_description.workflow_execution_info.priority)
    schedule = description.typed_search_attributes.get(SCHEDULED_BY)
    if schedule:
        out["schedule"] = schedule
    if out.get("queued"):
        err("queued: its model call waits for a free model slot (another run holds it)")
    print(json.dumps(out, indent=2, default=str))
    err(f"Web UI: {ctx.link(handle.id, description.run_id)}")
    return EXIT_OK


async def cmd_result(ctx: Context, args: argparse.Namespace) -> int:
    """Any run's result: a flow keel ships as its report, any other type as JSON."""
    description = await ctx.client.get_workflow_handle(args.workflow_id).describe()
    kind = kind_of(description.workflow_type)
    model = kind.result if kind else None
    handle = ctx.client.get_workflow_handle(args.workflow_id, result_type=model)
    try:
        result = await handle.result()
    except WorkflowFailureError as failure:
        return failed_run(failure, args.workflow_id, ctx.link(args.workflow_id, description.run_id))
    if isinstance(result, BaseModel):
        print(result.model_dump_json(indent=2) if args.json else result_text(result))
    else:
        print(json.dumps(result, indent=2, default=str))
    return EXIT_OK


def priority_dict(priority: Priority | PriorityMessage) -> dict[str, object]:
    """A run's priority for `status` and `--json`; None where the server's default applies."""
    weight = priority.fairness_weight
    return {
        "priority_key": priority.priority_key or None,
        "fairness_key": priority.fairness_key or None,
        # The server holds a float32: 2.5 stays 2.5, 0.1 would read 0.10000000149.
        "fairness_weight": round(weight, 6) if weight else None,
    }


MODEL_ACTIVITY = "complete_llm"  # LLMActivities.complete's activity name

SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")


async def waiting_for_model(ctx: Context, workflow_id: str) -> bool:
    """The run's model call is scheduled but no model slot has taken it yet."""
    description = await ctx.client.get_workflow_handle(workflow_id).describe()
    now = datetime.now(UTC).timestamp()
    for pending in description.raw_description.pending_activities:
        retry_at = pending.next_attempt_schedule_time.ToSeconds()
        if (
            pending.activity_type.name == MODEL_ACTIVITY
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            and (not retry_at or retry_at <= now)  # not a retry's backoff
        ):
            return True
    return False


async def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    handle = ctx.client.get_workflow_handle(args.workflow_id)
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        status = description.status.name if description.status else "UNKNOWN"
        err(f"{args.workflow_id} is not running ({status})")
        return EXIT_FAILED
    await handle.cancel()
    err(f"cancellation requested for {args.workflow_id}")
    return EXIT_OK


async def cmd_ingest(ctx: Context, args: argparse.Namespace) -> int:
    folder = str(args.path)  # resolved and checked before connecting, unless on the worker
    workflow_id = f"ingest-{args.corpus}-{uuid.uuid4().hex[:8]}"
    try:
        result: IngestResult = await ctx.client.execute_workflow(
            IngestWorkflow.run,
            IngestRequest(path=folder, namespace=args.corpus),
            id=workflow_id,
            task_queue=ctx.keel.task_queue,
        )
    except WorkflowFailureError as failure:
        # Refused: the namespace or the folder the user named is not allowed; nothing was read.
        return failed_run(failure, "ingest", refused_code=EXIT_USAGE)
    print(result.model_dump_json())
    for skipped in result.skipped:
        err(f"skipped {skipped}")
    return EXIT_OK


def is_not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND


def incident_input(args: argparse.Namespace, keel: KeelSettings) -> TicketSagaInput:
    model = model_choice(args)
    return TicketSagaInput(
        description=args.description,
        assignee=args.assignee,
        model=model,
        llm_task_queue=keel.llm_task_queue,
        approval_timeout_seconds=args.approval_timeout,
        approval_default=args.approval_default,
    )


async def cmd_incident(ctx: Context, args: argparse.Namespace) -> int:
    workflow_id = f"incident-{args.request_id or uuid.uuid4().hex[:12]}"
    run_id, existing = await start_once(
        ctx,
        TicketSagaWorkflow.run,
        incident_input(args, ctx.keel),
        workflow_id,
        args.description,
        priority=priority_for(args, WorkClass.INTERACTIVE, ctx.keel),
    )
    if existing:
        err(f"request {args.request_id!r} was already submitted; this is its saga")
    print(json.dumps({"workflow_id": workflow_id, "run_id": run_id}))
    err(f"approve or reject with: client.py approve|reject {workflow_id}")
    err(f"Web UI: {ctx.link(workflow_id, run_id)}")
    return EXIT_OK


async def cmd_decide(ctx: Context, args: argparse.Namespace) -> int:
    """Any flow waiting for a person (a ticket saga, a team report): the `decide` update."""
    handle = ctx.client.get_workflow_handle(args.workflow_id)
    decision = ApprovalDecision(decision=args.command, by=args.by, reason=args.reason)
    try:
        progress = await handle.execute_update("decide", decision)
    except WorkflowUpdateFailedError as failure:
        err(f"{args.command} refused: {failure.cause}")
        return EXIT_FAILED
    print(json.dumps(await after_decision(handle, progress), indent=2, default=str))
    return EXIT_OK


async def after_decision(handle: WorkflowHandle[Any, Any], progress: Any) -> Any:
    """The flow's progress once it has acted on a decision, not as it was when accepting it.

    An update answers as soon as it is recorded; the flow moves on (notifies, compensates,
    revises) in its next step, so the progress is read again until it has left the wait.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while _waiting(progress) and time.monotonic() < deadline:
        await asyncio.sleep(PROGRESS_POLL_SECONDS / 2)
        try:
            progress = await handle.query("progress", rpc_timeout=timedelta(seconds=5))
        except RPCError:
            break
    return progress


def _waiting(progress: Any) -> bool:
    if not isinstance(progress, dict):
        return False
    return "awaiting_approval" in (progress.get("status"), progress.get("stage"))


async def cmd_breakers(ctx: Context, args: argparse.Namespace) -> int:
    """Every model's breaker in a scope: state, failure rate, refusals, last change."""
    prefix = breaker_id(args.scope, "")
    query = 'WorkflowType = "CircuitBreakerWorkflow" AND ExecutionStatus = "Running"'
    states = []
    async for wf in ctx.client.list_workflows(query):
        if wf.id.startswith(prefix):
            handle = ctx.client.get_workflow_handle_for(CircuitBreakerWorkflow.run, wf.id)
            states.append(await handle.query(CircuitBreakerWorkflow.state))
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in states], indent=2))
        return EXIT_OK
    for s in sorted(states, key=lambda s: s.name):
        change = "no changes"
        if s.transitions:
            last = s.transitions[-1]
            change = f"{last.from_state}->{last.to_state} at {last.at:%H:%M:%S} ({last.reason})"
        print(
            f"{s.name:<36} {s.state:<9} failures {s.failure_rate:>4.0%} of {len(s.outcomes):<3}"
            f" refused {s.rejected:<5} {change}"
        )
    err(f"{len(states)} breaker(s) in scope {args.scope!r}")
    return EXIT_OK


async def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    """`client.py watch <id>`: any run with a live channel, from its start to now and on."""

    handle = ctx.client.get_workflow_handle(args.workflow_id)
    kind = kind_of((await handle.describe()).workflow_type)  # a missing run: one line first
    view = LiveView(tokens=not args.no_tokens)
    try:
        if kind is not None and not kind.live:
            await follow_history(ctx.client, args.workflow_id, view)
        else:
            await follow(ctx.client, args.workflow_id, view)
    except (RPCError, WorkflowUpdateFailedError, WorkflowQueryFailedError) as error:
        # A flow of the user's own may have no channel: its history is what there is.
        if view.events:  # the channel broke off: what was shown stands
            view.close()
            err(f"error: {args.workflow_id}: {no_channel(error)}")
            return EXIT_FAILED
        err(f"{args.workflow_id}: {no_channel(error)}; following its history instead")
        await follow_history(ctx.client, args.workflow_id, view)
    view.close()
    description = await handle.describe()
    status = description.status.name if description.status else "UNKNOWN"
    link = ctx.link(args.workflow_id, description.run_id)
    err(f"{args.workflow_id} {status.lower()}; Web UI: {link}")
    return EXIT_OK if description.status == WorkflowExecutionStatus.COMPLETED else EXIT_FAILED
