"""`client.py message <workflow-id> "text"`: a message to an agent run that is still working.

The agent's contract (`on_message` in agents.toml) decides: the message is queued and
answered after the current request, it interrupts the current request, or it is
refused. Delivered as the run's `send_message` update under the message's id, so a
resend with the same `--id` is answered with the first outcome and applied once.
"""

from __future__ import annotations

import argparse
import uuid

from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from keel.cli.context import EXIT_OK, EXIT_USAGE, Context, err, is_not_found
from keel.payloads.agents import AgentMessage, MessageOutcome
from workflows.agent import AgentWorkflow


async def cmd_message(ctx: Context, args: argparse.Namespace) -> int:
    message = AgentMessage(id=args.id or uuid.uuid4().hex[:12], text=args.text)
    handle = ctx.client.get_workflow_handle_for(AgentWorkflow.run, args.workflow_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if not is_not_found(error):
            raise
        err(f"error: no agent run {args.workflow_id}")
        return EXIT_USAGE
    if description.workflow_type != "AgentWorkflow":
        err(f"error: {args.workflow_id} is a {description.workflow_type}, not an agent run")
        return EXIT_USAGE
    if description.status != WorkflowExecutionStatus.RUNNING:
        status = description.status.name if description.status else "UNKNOWN"
        err(f"error: agent run {args.workflow_id} has ended ({status}); start a new one")
        return EXIT_USAGE
    try:
        outcome = await handle.execute_update(
            "send_message", message, id=f"message-{message.id}", result_type=MessageOutcome
        )
    except WorkflowUpdateFailedError as failure:
        cause = str(failure.cause or failure)
        err(f"error: agent run {args.workflow_id} refused the message: {cause}")
        return EXIT_USAGE
    except RPCError as error:
        if not is_not_found(error):
            raise
        err(f"error: agent run {args.workflow_id} has ended; start a new one")
        return EXIT_USAGE
    print(outcome.model_dump_json(indent=2) if args.json else outcome_line(outcome))
    return EXIT_OK


def outcome_line(outcome: MessageOutcome) -> str:
    if outcome.status == "queued":
        return f"message {outcome.id}: queued at position {outcome.position}"
    if outcome.status == "interrupted":
        return f"message {outcome.id}: interrupted the current request, which starts again"
    if outcome.status == "rejected":
        return f"message {outcome.id}: rejected: {outcome.reason}"
    return f"message {outcome.id}: {outcome.status}"
