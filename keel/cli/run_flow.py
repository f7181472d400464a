"""`client.py run <WorkflowType>`: start any flow the worker runs, a user's own included.

The flow is started by its type name on keel's task queue with keel's converter, so
its input and result are encrypted like every other run's. A type no worker has is
caught at its first workflow task: the worker fails that task naming the types it
runs, and the command ends the run and says so in one line (exit 2), instead of
leaving a run that waits forever.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, UsageError, err
from keel.cli.priority import WorkClass
from keel.cli.render import root_cause
from keel.cli.start import priority_for

# How long the command waits to see a worker take the run's first task.
FIRST_TASK_SECONDS = 10.0
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def workflow_type(text: str) -> str:
    """A workflow type name as `run` and `list --type` take it."""
    if not _TYPE_NAME.match(text):
        raise argparse.ArgumentTypeError(f"not a workflow type name: {text!r}")
    return text


def flow_arguments(args: argparse.Namespace) -> list[Any]:
    """--input as the flow's one argument (none without it); `schedule create` reads it too."""
    if args.input is None:
        return []
    try:
        return [json.loads(args.input)]
    except json.JSONDecodeError as error:
        raise UsageError(
            f"--input is not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


async def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    arguments = flow_arguments(args)
    workflow_id = args.id or f"{args.workflow_type.lower()}-{uuid.uuid4().hex[:12]}"
    handle = await ctx.client.start_workflow(
        args.workflow_type,
        args=arguments,
        id=workflow_id,
        task_queue=ctx.keel.task_queue,
        priority=priority_for(args, WorkClass.INTERACTIVE, ctx.keel),
    )
    refused = await _refused_at_first_task(ctx.client, workflow_id, handle.result_run_id or "")
    if refused is not None:
        await handle.terminate(reason=refused)
        err(f"error: {refused}")
        return EXIT_USAGE
    print(json.dumps({"workflow_id": workflow_id, "run_id": handle.result_run_id}))
    err(f"Web UI: {ctx.link(workflow_id, handle.result_run_id or '')}")
    if not args.wait:
        return EXIT_OK
    try:
        result = await handle.result()
    except WorkflowFailureError as failure:
        err(f"{workflow_id} failed: {root_cause(failure)}")
        return EXIT_FAILED
    print(json.dumps(result, indent=2, default=str))
    return EXIT_OK


async def _refused_at_first_task(client: Client, workflow_id: str, run_id: str) -> str | None:
    """Why the worker cannot run this type, if its first task says so; None once a task
    completed, or when no worker took one in time (it may come up later)."""
    deadline = time.monotonic() + FIRST_TASK_SECONDS
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    while time.monotonic() < deadline:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                return None
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
                # The message is sealed with the payloads (keel/infra/codec.py): open it.
                message = str(await client.data_converter.decode_failure(failure))
                if "not registered" in message:
                    known = message.partition("available workflows: ")[2]
                    return f"the worker runs no workflow type {_type_of(message)}; it runs: {known}"
        await asyncio.sleep(0.2)
    err(f"no worker has taken {workflow_id} in {FIRST_TASK_SECONDS:.0f} s; it waits for one")
    return None


def _type_of(message: str) -> str:
    match = re.search(r"[Ww]orkflow class (\S+)", message)
    return match[1] if match else "of that name"
