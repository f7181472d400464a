"""Commands on runs that exist (status, result, cancel, watch), ingest and the breakers."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import timedelta

from pydantic import BaseModel
from temporalio.api.common.v1 import Priority as PriorityMessage
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    Priority,
    SearchAttributeKey,
)
from temporalio.service import RPCError

from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, err, failed_run
from keel.cli.history_watch import follow_history
from keel.cli.kinds import kind_of
from keel.cli.live import LiveView, follow, no_channel
from keel.cli.queued import waiting_for_model
from keel.cli.render import result_text
from keel.payloads.documents import IngestRequest, IngestResult
from workflows.circuit_breaker import CircuitBreakerWorkflow, breaker_id
from workflows.ingest import IngestWorkflow


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


SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")


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
    except (RPCError, WorkflowQueryFailedError) as error:
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
