"""The incident saga from the command line: report one, decide on its ticket."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError

from keel.cli.context import EXIT_FAILED, EXIT_OK, Context, err
from keel.cli.start import (
    PROGRESS_POLL_SECONDS,
    model_choice,
    start_asked,
)
from keel.infra.settings import KeelSettings
from keel.payloads.tickets import ApprovalDecision, TicketSagaInput
from workflows.ticket_saga import TicketSagaWorkflow

# How long approve/reject/feedback wait for the flow to act on the decision.
SETTLE_SECONDS = 10.0


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
    workflow_id, run_id, existing = await start_asked(
        ctx,
        args,
        "incident",
        TicketSagaWorkflow.run,
        incident_input(args, ctx.keel),
        args.description,
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
