"""`client.py ask` (the front door) and `client.py feedback` (a person's notes for a report)."""

from __future__ import annotations

import argparse
import asyncio
import json

from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Context, err, failed_run
from keel.cli.incident import after_decision
from keel.cli.live import LiveView
from keel.cli.render import ask_text
from keel.cli.start import (
    budget_input,
    model_choice,
    start_asked,
    wants_tokens,
    watch_run,
)
from keel.payloads.coordinator import CoordinatorProgress, HumanFeedback
from keel.payloads.live import LiveEvent
from keel.payloads.routing import AskInput
from workflows.intent_router import IntentRouterWorkflow


def ask_input(args: argparse.Namespace, llm_task_queue: str) -> AskInput:
    return AskInput(
        request=args.request,
        clearance=args.clearance,
        version=args.corpus_version,
        model=model_choice(args) if args.provider else None,
        llm_task_queue=llm_task_queue,
        budget=budget_input(args),
        approval_timeout_seconds=args.approval_timeout,
        require_approval=args.require_approval,
        stream_tokens=wants_tokens(args),
    )


async def cmd_ask(ctx: Context, args: argparse.Namespace) -> int:
    request = ask_input(args, ctx.keel.llm_task_queue)
    workflow_id, run_id, existing = await start_asked(
        ctx, args, "ask", IntentRouterWorkflow.run, request, args.request
    )
    if existing:
        err(f"request {args.request_id!r} was already submitted; showing its run")
    err(f"workflow {workflow_id} run {run_id}")
    handle = ctx.client.get_workflow_handle_for(
        IntentRouterWorkflow.run, workflow_id, run_id=run_id
    )
    result = asyncio.ensure_future(handle.result())
    view = LiveView(tokens=wants_tokens(args), on_event=_Hints(ctx).show)
    await watch_run(ctx, workflow_id, result, view)
    try:
        answer = await result
    except WorkflowFailureError as failure:
        return failed_run(failure, "ask", ctx.link(workflow_id, run_id))
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        print(ask_text(answer))
        print(f"Web UI: {ctx.link(workflow_id, run_id)}")
    return EXIT_REFUSED if answer.refused else EXIT_OK


class _Hints:
    """What a person can do next: open the flow, decide on an incident or a report."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._flow = ""

    def show(self, event: LiveEvent) -> None:
        if event.kind == "child" and not event.role and not self._flow:
            self._flow = event.workflow_id
            err(f"child workflow {self._flow}; Web UI: {self._ctx.link(self._flow, None)}")
            if self._flow.endswith("-incident"):
                err(f"approve or reject with: client.py approve|reject {self._flow}")
        elif event.kind == "node" and "stage=awaiting_approval" in event.text:
            err(f"approve, reject or send notes: client.py approve|feedback {self._flow}")


async def cmd_feedback(ctx: Context, args: argparse.Namespace) -> int:
    handle = ctx.client.get_workflow_handle(args.workflow_id)
    note = HumanFeedback(text=args.text, by=args.by)
    try:
        progress = await handle.execute_update("feedback", note, result_type=CoordinatorProgress)
    except WorkflowUpdateFailedError as failure:
        err(f"feedback refused: {failure.cause}")
        return EXIT_FAILED
    settled = await after_decision(handle, progress.model_dump(mode="json"))
    print(json.dumps(settled, indent=2, default=str))
    return EXIT_OK
