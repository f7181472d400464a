"""`client.py approvals` and `approve|reject <run> --call N --digest D`: tool calls that
wait for a person, across every run, decided on exactly what was shown."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecution, WorkflowUpdateFailedError
from temporalio.service import RPCError

from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, err
from keel.cli.incident import cmd_decide
from keel.payloads.approvals import CallDecision

WAITING = 'ExecutionStatus = "Running" AND ResearchStatus = "awaiting_approval"'


async def cmd_approvals(ctx: Context, args: argparse.Namespace) -> int:
    """Every run waiting for a person: a tool call with its arguments, or a report."""
    found = [wf async for wf in ctx.client.list_workflows(WAITING, limit=args.limit)]
    rows = await asyncio.gather(*(_row(ctx, wf) for wf in found))
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    for row in rows:
        pending = row["pending"]
        if pending is None:
            wid = row["workflow_id"]
            print(f"{wid}  {row['type']}: its report  (approve|reject {wid})")
            continue
        arguments = json.dumps(pending["arguments"], ensure_ascii=False)
        print(
            f"{row['workflow_id']}  call {pending['call']}: {pending['tool']}({arguments[:200]})"
            f"  digest {pending['digest'][:12]}  until {pending['deadline']} then"
            f" {pending['default']}"
        )
        print(
            f"  approve|reject {row['workflow_id']} --call {pending['call']}"
            f" --digest {pending['digest'][:12]}"
        )
    err(f"{len(rows)} run(s) awaiting a decision")
    return EXIT_OK


async def _row(ctx: Context, wf: WorkflowExecution) -> dict[str, Any]:
    pending = None
    try:
        progress = await ctx.client.get_workflow_handle(wf.id).query(
            "progress", rpc_timeout=timedelta(seconds=5)
        )
        if isinstance(progress, dict):
            pending = progress.get("pending_approval")
    except RPCError:
        pending = None  # no worker answers now: the run is listed, its call is not shown
    return {"workflow_id": wf.id, "type": wf.workflow_type, "pending": pending}


async def cmd_decide_any(ctx: Context, args: argparse.Namespace) -> int:
    """`approve|reject <run>`: a report's decision, or with --call one tool call's."""
    if args.call is None:
        if args.digest is not None:
            err("error: --digest goes with --call N, the call it was shown for")
            return EXIT_USAGE
        return await cmd_decide(ctx, args)
    if args.digest is None:
        err(f"error: --call {args.call} needs --digest, as `client.py approvals` shows it")
        return EXIT_USAGE
    decision = CallDecision(
        call=args.call, digest=args.digest, decision=args.command, by=args.by, reason=args.reason
    )
    handle = ctx.client.get_workflow_handle(args.workflow_id)
    try:
        pending = await handle.execute_update("approve_call", decision)
    except WorkflowUpdateFailedError as failure:
        err(f"{args.command} refused: {failure.cause}")
        return EXIT_FAILED
    except RPCError as error:
        if "already completed" not in error.message:
            raise
        err(f"{args.command} refused: {args.workflow_id} has ended; its calls were decided")
        return EXIT_FAILED
    verb = "approved" if args.command == "approve" else "rejected"
    print(json.dumps({"decision": verb, **pending}, indent=2, default=str))
    return EXIT_OK
