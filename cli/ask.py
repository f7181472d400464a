"""`client.py ask` (the front door) and `client.py feedback` (a person's notes for a report)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import timedelta

from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from cli.commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    PROGRESS_POLL_SECONDS,
    Context,
    budget_input,
    err,
    model_choice,
    start_once,
)
from cli.render import refusal, report_text, root_cause, team_progress_line, team_report_text
from models.coordinator import CoordinatorProgress, HumanFeedback, MultiAgentReport
from models.research import ResearchReport
from models.routing import AskInput, AskProgress, AskResult, IntentDecision
from models.tickets import TicketSagaResult
from workflows.intent_router import IntentRouterWorkflow

QUERY_TIMEOUT = timedelta(seconds=5)


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
    )


async def cmd_ask(ctx: Context, args: argparse.Namespace) -> int:
    workflow_id = f"ask-{args.request_id or uuid.uuid4().hex[:12]}"
    run_id, existing = await start_once(
        ctx,
        IntentRouterWorkflow.run,
        ask_input(args, ctx.keel.llm_task_queue),
        workflow_id,
        args.request,
    )
    if existing:
        err(f"request {args.request_id!r} was already submitted; showing its run")
    err(f"workflow {workflow_id} run {run_id}")
    handle = ctx.client.get_workflow_handle_for(
        IntentRouterWorkflow.run, workflow_id, run_id=run_id
    )
    result = asyncio.ensure_future(handle.result())
    told = await _follow(ctx, handle, result)
    try:
        answer = await result
    except WorkflowFailureError as failure:
        reason = refusal(failure)
        if reason is not None:
            err(f"ask refused: {reason}")
            return EXIT_REFUSED
        err(f"ask failed: {root_cause(failure)}")
        err(f"Web UI: {ctx.link(workflow_id, run_id)}")
        return EXIT_FAILED
    if not told:  # done before the first look
        err(_route_line(answer.decision))
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        print(ask_text(answer))
        print(f"Web UI: {ctx.link(workflow_id, run_id)}")
    return EXIT_REFUSED if answer.refused else EXIT_OK


async def _follow(
    ctx: Context,
    handle: WorkflowHandle[IntentRouterWorkflow, AskResult],
    result: asyncio.Future[AskResult],
) -> bool:
    """Print the routing decision, the child it started, and the child's progress."""
    told_route = told_child = False
    last = ""
    while True:
        # One more look after the result is in, so a fast run still shows where it ended.
        finished = result.done()
        try:
            progress = await handle.query(IntentRouterWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
        except RPCError:
            progress = AskProgress()
        decision = progress.decision
        if decision and not told_route:
            err(_route_line(decision))
            told_route = True
        child = progress.child_workflow_id
        if child and not told_child:
            err(f"child workflow {child}; Web UI: {ctx.link(child, None)}")
            if decision and decision.flow == "incident":
                err(f"approve or reject with: client.py approve|reject {child}")
            told_child = True
        if child and decision and decision.flow == "report":
            line = await _team_line(ctx, child)
            if line and line != last:
                err(line)
                last = line
                if "stage=awaiting_approval" in line:
                    err(f"approve, reject or send notes: client.py approve|feedback {child}")
        if finished:
            return told_route
        await asyncio.wait([result], timeout=PROGRESS_POLL_SECONDS)


def _route_line(decision: IntentDecision) -> str:
    how = f"by {decision.rule}" if decision.rule else f"by the {decision.method}"
    if not decision.allowed:
        return f"intent {decision.intent or '-'} refused ({how}): {decision.reason}"
    return f"intent {decision.intent} -> flow {decision.flow} ({how})"


async def _team_line(ctx: Context, workflow_id: str) -> str:
    try:
        progress = await ctx.client.get_workflow_handle(workflow_id).query(
            "progress", result_type=CoordinatorProgress, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError:
        return ""
    return team_progress_line(progress)


def ask_text(answer: AskResult) -> str:
    decision = answer.decision
    rule = f": {decision.rule}" if decision.rule else ""
    head = f"Intent: {decision.intent or '-'} ({decision.method}{rule})"
    if answer.refused:
        return f"{head}\nRefused: {answer.message}"
    body = ""
    data = answer.result or {}
    if decision.flow == "research" and data:
        body = report_text(ResearchReport.model_validate(data))
    elif decision.flow == "report" and data:
        body = team_report_text(MultiAgentReport.model_validate(data))
    elif decision.flow == "incident" and data:
        saga = TicketSagaResult.model_validate(data)
        body = (
            f"Incident ticket {saga.ticket_id}: {saga.outcome} ({saga.triage.severity},"
            f" {saga.triage.title}); subtasks {saga.subtask_ids};"
            f" decision {saga.decision.decision} by {saga.decision.by}"
        )
    else:
        body = f"Answer: {answer.message}"
    return f"{head}\n{body}"


async def cmd_feedback(ctx: Context, args: argparse.Namespace) -> int:
    handle = ctx.client.get_workflow_handle(args.workflow_id)
    note = HumanFeedback(text=args.text, by=args.by)
    try:
        progress = await handle.execute_update("feedback", note, result_type=CoordinatorProgress)
    except WorkflowUpdateFailedError as failure:
        err(f"feedback refused: {failure.cause}")
        return EXIT_FAILED
    print(json.dumps(progress.model_dump(mode="json"), indent=2))
    return EXIT_OK
