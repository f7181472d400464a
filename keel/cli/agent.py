"""`client.py agent <name> "task"`: one agent of agents.toml on one task, watched live.

The agent runs as its own `AgentWorkflow`, the same workflow a team starts for its
researchers, writer and reviewer: its tool calls go through the ToolRouter, its
model calls through the gateway, and `status`, `watch`, `result`, `cancel` and
`fork` treat the run as they treat research.
"""

from __future__ import annotations

import argparse
import asyncio

from temporalio.client import WorkflowFailureError

from keel.cli import start
from keel.cli.context import EXIT_OK, Context, failed_run
from keel.cli.live import LiveView
from keel.cli.render import agent_text
from keel.payloads.agents import AgentInput
from workflows.agent import AgentWorkflow


def agent_input(args: argparse.Namespace, llm_task_queue: str) -> AgentInput:
    return AgentInput(
        agent=args.name,
        task=args.task,
        namespaces=[args.corpus],
        clearance=args.clearance,
        models=[start.model_choice(args)] if args.provider else [],
        llm_task_queue=llm_task_queue,
        budget=start.budget_input(args),
        max_turns=args.max_turns,
        stream_tokens=start.wants_tokens(args),
    )


async def cmd_agent(ctx: Context, args: argparse.Namespace) -> int:
    task = agent_input(args, ctx.keel.llm_task_queue)
    workflow_id, run_id, _ = await start.start_asked(
        ctx, args, "agent", AgentWorkflow.run, task, f"{args.name}: {args.task}"
    )
    header = [f"workflow {workflow_id} run {run_id}", f"Web UI: {ctx.link(workflow_id, run_id)}"]
    handle = ctx.client.get_workflow_handle_for(AgentWorkflow.run, workflow_id, run_id=run_id)
    result = asyncio.ensure_future(handle.result())
    view = LiveView(tokens=start.wants_tokens(args), preamble=header)
    await start.watch_run(ctx, workflow_id, result, view)
    try:
        answer = await result
    except WorkflowFailureError as failure:
        view.flush_preamble()
        return failed_run(failure, f"agent {args.name}", ctx.link(workflow_id, run_id))
    view.flush_preamble()
    print(answer.model_dump_json(indent=2) if args.json else agent_text(answer))
    if not args.json:
        print(f"Web UI: {ctx.link(workflow_id, run_id)}")
    return EXIT_OK
