"""`client.py fork`: run a research flow again from one of its steps, the durable way.

The fork is Temporal's reset: a new run of the same workflow id whose history is the
original's up to the workflow task that started the chosen step, so the steps before
it are neither run nor paid again. From there the run executes on today's workers,
so a changed prompt template (contracts/prompts.toml, read by the model worker) or
model worker code applies from the fork point on. The original run stays as it was
(a running one is terminated by the reset) and both are shown side by side.
"""

from __future__ import annotations

import argparse
import re
import textwrap
import uuid
from dataclasses import dataclass

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError

from cli.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, err
from cli.render import root_cause
from models.research import ResearchReport

# A model call's summary, as workflows/model_calls.py writes it: "write #2 (re-ask 1)".
_SUMMARY = re.compile(r"^(?P<node>[a-z_]+) #(?P<number>\d+)")


@dataclass(frozen=True)
class Step:
    """A model call of the run, and the workflow task that scheduled it."""

    node: str
    number: int
    task_completed_event_id: int

    @property
    def label(self) -> str:
        return f"{self.node} #{self.number}"


async def model_steps(client: Client, workflow_id: str, run_id: str) -> list[Step]:
    """The run's model calls in order, first attempts only (re-asks belong to their call)."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    steps: list[Step] = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        if not event.user_metadata.HasField("summary"):
            continue
        [summary] = await client.data_converter.decode([event.user_metadata.summary], [str])
        match = _SUMMARY.match(summary)
        if match is None or "re-ask" in summary:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        steps.append(
            Step(match["node"], int(match["number"]), attributes.workflow_task_completed_event_id)
        )
    return steps


def choose(steps: list[Step], at: str) -> Step | None:
    """`write` is the node's first call, `write#2` or `write #2` its second."""
    node, _, number = at.replace(" ", "").partition("#")
    for step in steps:
        if step.node == node and (not number or str(step.number) == number):
            return step
    return None


async def reset(ctx: Context, workflow_id: str, run_id: str, step: Step) -> str:
    """Resets the run to just before `step`; returns the new run id."""
    request = ResetWorkflowExecutionRequest(
        namespace=ctx.client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        reason=f"fork at {step.label}",
        workflow_task_finish_event_id=step.task_completed_event_id,
        request_id=str(uuid.uuid4()),
        # Signals and updates after the reset point belong to the original run only.
        reset_reapply_exclude_types=[
            ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
            ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
        ],
    )
    response = await ctx.client.workflow_service.reset_workflow_execution(request)
    return response.run_id


async def cmd_fork(ctx: Context, args: argparse.Namespace) -> int:
    original = ctx.client.get_workflow_handle(args.workflow_id)
    description = await original.describe()
    if description.workflow_type != "ResearchWorkflow":
        err(f"error: only research runs fork; {args.workflow_id} is a {description.workflow_type}")
        return EXIT_USAGE
    run_id = description.run_id
    steps = await model_steps(ctx.client, args.workflow_id, run_id)
    step = choose(steps, args.at)
    if step is None:
        known = ", ".join(s.label for s in steps) or "none"
        err(f"error: run {run_id} made no model call {args.at!r}; its calls: {known}")
        return EXIT_USAGE
    before = await _report(ctx.client, args.workflow_id, run_id)
    forked_run = await reset(ctx, args.workflow_id, run_id, step)
    err(f"forked {args.workflow_id} at {step.label}: run {forked_run}")
    err(f"Web UI: {ctx.link(args.workflow_id, forked_run)}")
    after = await _report(ctx.client, args.workflow_id, forked_run)
    print(side_by_side(("original", run_id, before), (f"fork at {step.label}", forked_run, after)))
    return EXIT_OK if isinstance(after, ResearchReport) else EXIT_FAILED


async def _report(client: Client, workflow_id: str, run_id: str) -> ResearchReport | str:
    """The run's report, or one line on why there is none."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=ResearchReport)
    try:
        report: ResearchReport = await handle.result(follow_runs=False)
        return report
    except WorkflowFailureError as failure:
        return f"no report: {root_cause(failure)}"


Column = tuple[str, str, ResearchReport | str]


def side_by_side(*columns: Column, width: int = 44) -> str:
    """Two runs as columns: model, verdict, usage, citations, flags, then the answers."""

    def rows(report: ResearchReport | str) -> list[str]:
        if isinstance(report, str):
            return [report, "", "", "", ""]
        u = report.usage
        verdict = "passed" if report.review_passed else "not passed"
        score = f" {report.review_score}/5" if report.review_score is not None else ""
        return [
            f"{report.provider}/{report.model}",
            f"{verdict}{score}",
            f"{u.calls} calls, {u.tokens_in}+{u.tokens_out} tokens, ${u.cost_usd:.6f}",
            ", ".join(c.chunk_id for c in report.citations) or "(none)",
            ", ".join(report.flags) or "-",
        ]

    labels = ["", "run", "model", "verdict", "usage", "citations", "flags"]
    table = [[title, run[:12], *rows(report)] for title, run, report in columns]
    lines = [
        f"{label:<10}" + "".join(f"{col[i]:<{width}}" for col in table)
        for i, label in enumerate(labels)
    ]
    for title, _, report in columns:
        if isinstance(report, ResearchReport):
            lines += ["", f"{title}:"]
            lines += textwrap.wrap(report.answer, 88, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)
