"""A flow of the user's own, named to worker.py, and every command of client.py on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from activities.fork.history import model_steps
from harness.testing.processes import run_script, worker_process
from harness.testing.stack import new_id, worker_settings
from harness.testing.user_flows import FLOW, brief_input, script
from keel.infra.flows import FlowError, load_flows
from tests.fixtures.flows.brief import BriefFlow


async def test_a_flow_of_ones_own_runs_and_every_command_works_on_it(
    client: Client, server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    folder = tmp_path / "scripts"
    folder.mkdir()
    script(folder, "Keys make a retry a no-op.")
    script(folder, "Too late.", "slow", delay_ms=20_000)
    env = {"KEEL_TASK_QUEUE": settings.task_queue}
    base = ["--address", server_address]
    workflow_id = f"brief-{new_id('own')}"
    slow_id = f"brief-{new_id('slow')}"
    args = ("--flow", FLOW, "--scripted-dir", str(folder))
    async with worker_process(server_address, settings, tmp_path, extra_args=args):
        ran = await run_script(
            "client.py", *base, "run", "BriefFlow", "--input", brief_input(settings.llm_task_queue),
            "--id", workflow_id, "--wait", env=env,
        )  # fmt: skip
        listed = await run_script("client.py", *base, "list", "--type", "BriefFlow", "--json")
        status = await run_script("client.py", *base, "status", workflow_id, env=env)
        result = await run_script("client.py", *base, "result", workflow_id, env=env)
        watched = await run_script("client.py", *base, "watch", workflow_id, env=env)
        script(folder, "Today's model: the key is stored with the result.")
        forked = await run_script(
            "client.py", *base, "fork", workflow_id, "--at", "direct_answer", env=env
        )
        await run_script(
            "client.py", *base, "run", "BriefFlow", "--id", slow_id,
            "--input", brief_input(settings.llm_task_queue, "slow"), env=env,
        )  # fmt: skip
        cancelled = await run_script("client.py", *base, "cancel", slow_id, env=env)
        with pytest.raises(WorkflowFailureError):
            await client.get_workflow_handle(slow_id).result()
    assert ran.code == 0, ran.stderr
    done = json.loads(ran.stdout[ran.stdout.index("\n") + 1 :])
    assert done["answer"] == "Keys make a retry a no-op."
    assert len(done["questions"]) == 2
    rows = json.loads(listed.stdout)
    assert [r["workflow_id"] for r in rows if r["workflow_id"] == workflow_id] == [workflow_id]
    assert json.loads(status.stdout)["type"] == "BriefFlow"
    assert json.loads(status.stdout)["status"] == "COMPLETED"
    assert json.loads(result.stdout)["answer"] == "Keys make a retry a no-op."
    assert watched.code == 0, watched.stderr
    assert "direct_answer" in watched.stdout + watched.stderr
    assert forked.code == 0, forked.stderr
    assert "Today's model" in forked.stdout  # both runs' answers, side by side
    assert "Keys make a retry a no-op." in forked.stdout
    forked_run = (await client.get_workflow_handle(workflow_id).describe()).run_id
    after = await client.get_workflow_handle(workflow_id, run_id=forked_run).result()
    assert after["answer"] == "Today's model: the key is stored with the result."
    assert after["questions"] == done["questions"]
    history = await client.get_workflow_handle(workflow_id, run_id=forked_run).fetch_history()
    reset_at = next(
        e.event_id for e in history.events if e.HasField("workflow_task_failed_event_attributes")
    )
    steps = await model_steps(client, workflow_id, forked_run)
    # The plan was not asked again: only the answer ran on today's model.
    assert [s.label for s in steps if s.task_completed_event_id > reset_at] == ["direct_answer #1"]
    assert cancelled.code == 0, cancelled.stderr
    slow = await client.get_workflow_handle(slow_id).describe()
    assert slow.status == WorkflowExecutionStatus.CANCELED


async def test_a_type_no_worker_runs_is_one_line_and_exit_2(
    server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    env = {"KEEL_TASK_QUEUE": settings.task_queue}
    base = ["--address", server_address]
    async with worker_process(server_address, settings, tmp_path):
        missing = await run_script(
            "client.py", *base, "run", "NoSuchFlow", "--input", "{}", env=env
        )
        not_json = await run_script(
            "client.py", *base, "run", "BriefFlow", "--input", "{topic", env=env
        )
    listed = await run_script("client.py", *base, "list", "--type", "NeverStartedFlow")
    for bad in (missing, not_json, listed):
        assert bad.code == 2, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "runs no workflow type NoSuchFlow; it runs: " in missing.stderr
    assert "AgentWorkflow" in missing.stderr
    assert "--input is not JSON" in not_json.stderr
    assert "unknown type 'NeverStartedFlow'" in listed.stderr


async def test_a_flow_that_cannot_be_loaded_stops_the_worker_with_one_line(
    server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    for spec, cause in (
        ("nosuchmodule:Flow", "cannot import nosuchmodule"),
        ("tests.fixtures.flows.brief:Nope", "has no class Nope"),
        ("tests.fixtures.flows.brief:BriefInput", "is not a @workflow.defn class"),
        ("BriefFlow", "expected module:Class"),
    ):
        async with worker_process(
            server_address, settings, tmp_path, extra_args=("--flow", spec), capture_logs=True
        ) as process:
            assert process.stderr is not None
            code = await process.wait()
            stderr = (await process.stderr.read()).decode()
        assert code == 1
        assert cause in stderr.strip().splitlines()[-1]
    assert load_flows([FLOW]) == [BriefFlow]
    with pytest.raises(FlowError, match="already run"):
        load_flows([FLOW], taken=["BriefFlow"])
