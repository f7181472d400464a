"""One scripted agent, as tests start it."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle

from harness.testing.stack import scripted_team_input
from keel.infra.settings import WorkerSettings
from keel.payloads.agents import AgentInput, AgentResult
from workflows.agent import AgentWorkflow


def agent_input(agent: str, script: str, llm_task_queue: str, **overrides: object) -> AgentInput:
    fields: dict[str, object] = {
        "agent": agent,
        "task": "How should retries back off?",
        "namespaces": ["demo"],
        **overrides,
    }
    return scripted_team_input(AgentInput, script, llm_task_queue, **fields)


async def start_agent(
    client: Client,
    settings: WorkerSettings,
    agent: str,
    script: str,
    workflow_id: str,
    **overrides: object,
) -> WorkflowHandle[AgentWorkflow, AgentResult]:
    """One scripted agent, started on the queues of `settings`."""
    return await client.start_workflow(
        AgentWorkflow.run,
        agent_input(agent, script, settings.llm_task_queue, **overrides),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
