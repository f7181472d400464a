"""`client.py fork`: a finished research run again from one of its model calls."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.documents.store import DocumentStore
from activities.fork.history import model_steps
from harness.testing.cli import cli_env
from harness.testing.processes import run_script
from harness.testing.stack import SCRIPTED_DIR, execute_scripted, running_workers, worker_settings
from keel.payloads.research import ResearchReport

QUESTION = "How do idempotency keys make retries safe?"
# The question the never-passing script's drafts are about.
BREAKER_QUESTION = "What states does a circuit breaker have?"
PASSING_REVIEW = {
    "scores": [{"criterion": c, "score": 4} for c in ("relevance", "grounding", "clarity")],
    "feedback": "Clear and supported.",
}


async def test_a_fork_at_the_second_write_reruns_from_there_on_the_workers_of_today(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    # The model worker's script stands for what a fork is for: a prompt or model
    # worker changed after the run. Until the fork it never passes review.
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    script = scripts / "forked.json"
    script.write_text((SCRIPTED_DIR / "never_passes.json").read_text())
    async with running_workers(client, store, worker_settings(scripted_dir=scripts)) as settings:
        workflow_id, original = await execute_scripted(
            client, settings, "forked", BREAKER_QUESTION, max_revisions=2
        )
        original_run = (await client.get_workflow_handle(workflow_id).describe()).run_id
        # The changed worker: the run's own best draft, and a reviewer that passes it.
        changed = json.loads(script.read_text())
        changed["write"] = [changed["write"][1]] * 4
        changed["review"] = [PASSING_REVIEW] * 4
        script.write_text(json.dumps(changed))
        result = await run_script(
            "client.py", "--address", server_address, "fork", workflow_id, "--at", "write#2",
            env=cli_env(settings),
        )  # fmt: skip
    assert result.code == 0, result.stderr
    assert not original.review_passed
    assert "max_revisions_reached" in original.flags

    forked_run = (await client.get_workflow_handle(workflow_id).describe()).run_id
    assert forked_run != original_run
    forked: ResearchReport = await client.get_workflow_handle(
        workflow_id, run_id=forked_run, result_type=ResearchReport
    ).result()
    # From the second write on, the changed worker answered: its revision passes.
    assert forked.review_passed
    # The steps before the fork point were copied, not run again.
    history = await client.get_workflow_handle(workflow_id, run_id=forked_run).fetch_history()
    reset_at = next(
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    )
    steps = await model_steps(client, workflow_id, forked_run)
    assert [s.label for s in steps if s.task_completed_event_id < reset_at] == [
        "plan #1", "write #1", "review #1", "plan #2"
    ]  # fmt: skip
    assert [s.label for s in steps if s.task_completed_event_id > reset_at] == [
        "write #2", "review #2"
    ]  # fmt: skip
    # The original run is kept as it was, and both are shown.
    kept: ResearchReport = await client.get_workflow_handle(
        workflow_id, run_id=original_run, result_type=ResearchReport
    ).result(follow_runs=False)
    assert kept == original
    for shown in (original_run[:12], forked_run[:12], "passed", "not passed"):
        assert shown in result.stdout


async def test_a_fork_at_a_call_the_run_never_made_names_the_calls_it_made(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        workflow_id, _ = await execute_scripted(client, settings, "refine_and_revise", QUESTION)
        result = await run_script(
            "client.py", "--address", server_address, "fork", workflow_id, "--at", "write#9",
            env=cli_env(settings),
        )  # fmt: skip
    assert result.code == 2
    assert "made no model call 'write#9'; its calls: plan #1" in result.stderr
    assert "Traceback" not in result.stderr
