"""client.py list: recent runs of every flow, with their state and node, filtered as asked."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta

from temporalio.client import (
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from keel.cli.commands import SCHEDULED_BY
from keel.cli.context import EXIT_OK, EXIT_USAGE, Context, err
from keel.cli.kinds import DEFAULT_QUERY, KINDS, TYPE_NAMES, by_name, kind_of
from keel.cli.queued import waiting_for_model
from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS

# Set by the server on every run a schedule starts: the schedule's id.


LIST_HEADER = ("WORKFLOW ID", "TYPE", "STATUS", "STATE", "NODE", "STARTED")


# The node a delivered run ends in, by type: the only ones that show progress.
FINAL_NODES = {k.workflow_type: k.final_node for k in KINDS.values() if k.final_node}


# `list --status` over the execution status every run has.
STATE_FILTERS = {
    "queued": "Running",
    "running": "Running",
    "delivered": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
}


CLOSED_STATES = {
    WorkflowExecutionStatus.COMPLETED: "delivered",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}


def list_query(args: argparse.Namespace) -> str:
    """`--type`, `--under` and `--all` as a visibility query; by default what people start."""
    if args.type:
        kinds = dict.fromkeys(type_name(k) for k in args.type)
        query = "(" + " OR ".join(f'WorkflowType = "{t}"' for t in kinds) + ")"
    elif args.all or args.under:
        query = 'WorkflowType != "CircuitBreakerWorkflow"'
    else:
        query = f"({DEFAULT_QUERY})"
    if args.status:
        query += f' AND ExecutionStatus = "{STATE_FILTERS[args.status]}"'
    if getattr(args, "schedule", None):
        query += f' AND TemporalScheduledById = "{args.schedule}"'
    return query


async def runs_under(ctx: Context, root: str, query: str, limit: int) -> list[WorkflowExecution]:
    """The run and everything it started, level by level (its children, theirs, ...)."""
    found: list[WorkflowExecution] = []
    level = f'WorkflowId = "{root}"'
    while level and len(found) < limit:
        page = [wf async for wf in ctx.client.list_workflows(f"{query} AND ({level})", limit=limit)]
        found += page
        parents = ", ".join(f'"{wf.id}"' for wf in page)
        level = f"ParentWorkflowId IN ({parents})" if page else ""
    return found[:limit]


def type_name(name: str) -> str:
    """A kind's workflow type (`team` -> CoordinatorWorkflow), or the name as given."""
    return by_name(name).workflow_type if name in TYPE_NAMES else name


async def unknown_types(ctx: Context, names: list[str]) -> list[str]:
    """Names that are no kind of keel's and no type of any run the server holds."""
    unknown = []
    for name in names:
        if name not in TYPE_NAMES and kind_of(name) is None:
            count = await ctx.client.count_workflows(f'WorkflowType = "{name}"')
            if not count.count:
                unknown.append(name)
    return unknown


async def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    if unknown := await unknown_types(ctx, args.type or []):
        err(
            f"error: unknown type {', '.join(map(repr, unknown))}: not one of"
            f" {', '.join(TYPE_NAMES)}, and no run of that workflow type"
        )
        return EXIT_USAGE
    query = list_query(args)
    rows = []
    if args.under:
        found = await runs_under(ctx, args.under, query, args.limit)
    else:
        found = [wf async for wf in ctx.client.list_workflows(query, limit=args.limit)]
    # Asked all at once: a running run with no worker costs its query's 2 s once, not per row.
    states = await asyncio.gather(*(_state_and_node(ctx, wf) for wf in found))
    for wf, (state, node) in zip(found, states, strict=True):
        if args.status in ("queued", "running") and state != args.status:
            continue
        rows.append(
            {
                "workflow_id": wf.id,
                "run_id": wf.run_id,
                "type": wf.workflow_type,
                "status": wf.status.name if wf.status else "UNKNOWN",
                "parent": wf.parent_id,
                "node": node,
                "research_status": state,
                "schedule": wf.typed_search_attributes.get(SCHEDULED_BY),
                "started": wf.start_time.isoformat(),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    keys: tuple[str, ...] = ("workflow_id", "type", "status", "research_status", "node", "started")
    header: tuple[str, ...] = LIST_HEADER
    # Asked for children (a team's agents, a tree): say whose each is.
    if (args.all or args.under or args.type) and any(r["parent"] for r in rows):
        keys, header = (*keys[:-1], "parent", keys[-1]), (*header[:-1], "PARENT", header[-1])
    # Runs a schedule started: say which.
    if any(r["schedule"] for r in rows):
        keys, header = (*keys[:-1], "schedule", keys[-1]), (*header[:-1], "SCHEDULE", header[-1])
    table = [header] + [tuple(str(r[k] or "-") for k in keys) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    err(f"{len(rows)} run(s)")
    return EXIT_OK


async def _state_and_node(ctx: Context, wf: WorkflowExecution) -> tuple[str | None, str | None]:
    """A run's state and node.

    Runs started before progress moved to the current details carry both as search
    attributes; newer runs are told by their execution status, and a running research
    or team run answers its `progress` query (briefly: a run with no worker shows "-").
    """
    attrs = wf.typed_search_attributes
    state, node = attrs.get(RESEARCH_STATUS), attrs.get(RESEARCH_NODE)
    if wf.workflow_type not in FINAL_NODES:
        if state is None and wf.status is not None:
            state = CLOSED_STATES.get(wf.status, wf.status.name.lower())
        return state, node
    running = wf.status == WorkflowExecutionStatus.RUNNING
    if state is None and wf.status is not None:
        state = "running" if running else CLOSED_STATES.get(wf.status, wf.status.name.lower())
    if running and await waiting_for_model(ctx, wf.id):
        state = "queued"  # for the one model slot, not yet running its node
    if node is None and wf.status == WorkflowExecutionStatus.COMPLETED:
        node = FINAL_NODES[wf.workflow_type]
    if node is None and running:
        try:
            progress = await ctx.client.get_workflow_handle(wf.id).query(
                "progress", rpc_timeout=timedelta(seconds=2)
            )
            node = progress.get("node") or progress.get("stage")
        except (RPCError, WorkflowQueryFailedError):
            node = None
    return state, node
