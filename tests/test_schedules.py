"""`client.py schedule ...` on Temporal Schedules: real runs started by the server's scheduler."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowExecutionStatus

from activities.documents.store import DocumentStore
from harness.testing.cli import SCRIPTED, CliTarget, cli_env
from harness.testing.ports import free_port
from harness.testing.processes import Completed, run_script
from harness.testing.stack import QUESTION, new_id, running_workers, worker_settings
from harness.testing.user_flows import brief_input, script
from keel.cli.commands import SCHEDULED_BY
from keel.cli.parser import FLOW_ARGS, build_parser
from keel.cli.schedules import STARTABLE, schedule_for
from keel.infra.settings import KeelSettings
from keel.payloads.research import ResearchReport
from tests.fixtures.flows.brief import BriefFlow

# New Year's morning: never during a test, so only triggers start runs.
NEVER_NOW = "0 7 1 1 *"
# How long the catch-up test keeps its server down.
OUTAGE_SECONDS = 24


async def schedule(base: list[str], *args: str, env: dict[str, str] | None = None) -> Completed:
    return await run_script("client.py", *base, "schedule", *args, env=env)


async def listed_schedules(base: list[str], wanted: str) -> dict[str, Any]:
    """`schedule list --json` once it shows `wanted` (the list is read from visibility)."""
    for _ in range(50):
        result = await schedule(base, "list", "--json")
        rows = {r["schedule_id"]: r for r in json.loads(result.stdout)}
        if wanted in rows:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"{wanted} never listed")


async def test_a_schedule_starts_its_flow_and_its_run_is_listed_with_the_schedules_id(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    sid = new_id("nightly")
    base = ["--address", server_address]
    create = [
        "create", sid, "--cron", NEVER_NOW, "--overlap", "buffer-one", "--catchup-window", "30m",
        "--note", "new year", "research", QUESTION, *SCRIPTED, "--tenant", "nightly-team",
    ]  # fmt: skip
    async with running_workers(client, store) as settings:
        env = cli_env(settings)
        created = await schedule(base, *create, env=env)
        again = await schedule(base, *create, env=env)
        described = await schedule(base, "describe", sid)
        triggered = await schedule(base, "trigger", sid)
        assert triggered.code == 0, triggered.stderr
        run_id = json.loads(triggered.stdout)["workflow_id"]
        report = await client.get_workflow_handle(run_id, result_type=ResearchReport).result()
        runs = await run_script("client.py", *base, "list", "--schedule", sid, "--json")
        table = await run_script("client.py", *base, "list", "--type", "research", "--limit", "50")
        paused = await schedule(base, "pause", sid, "--note", "holiday")
        rows = await listed_schedules(base, sid)
        await schedule(base, "unpause", sid)
        deleted = await schedule(base, "delete", sid)
        gone = await schedule(base, "describe", sid)
    assert created.code == 0, created.stderr
    assert json.loads(created.stdout) == {"schedule_id": sid, "flow": "research", "state": "active"}
    assert again.code == 2
    assert f"schedule {sid!r} already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    shown = json.loads(described.stdout)
    assert shown["when"] == f"cron {NEVER_NOW!r}"
    assert (shown["overlap"], shown["catchup_window"], shown["note"]) == (
        "buffer-one",
        "30m",
        "new year",
    )
    assert shown["workflow_type"] == "ResearchWorkflow"
    assert shown["task_queue"] == settings.task_queue
    # A scheduled run is batch work, on the tenant it was created for.
    assert shown["priority"] == {
        "priority_key": 4,
        "fairness_key": "nightly-team",
        "fairness_weight": None,
    }
    assert run_id.startswith(f"research-{sid}-")
    assert report.review is not None  # the scripted flow ran to its report
    description = await client.get_workflow_handle(run_id).describe()
    assert description.typed_search_attributes.get(SCHEDULED_BY) == sid
    given = description.raw_description.workflow_execution_info.priority
    assert (given.priority_key, given.fairness_key) == (4, "nightly-team")
    assert [(r["workflow_id"], r["schedule"]) for r in json.loads(runs.stdout)] == [(run_id, sid)]
    header, *lines = table.stdout.splitlines()
    assert header.split()[-2:] == ["SCHEDULE", "STARTED"]
    assert any(line.startswith(run_id) and f" {sid} " in line for line in lines)
    assert paused.code == 0, paused.stderr
    assert rows[sid]["state"] == "paused"
    assert (rows[sid]["flow"], rows[sid]["last_run"]) == ("research", run_id)
    assert deleted.code == 0, deleted.stderr
    assert gone.code == 1
    assert f"no schedule {sid!r}" in gone.stderr


async def test_overlap_skip_starts_nothing_while_the_last_run_runs_and_cancel_other_replaces_it(
    client: Client, cli: CliTarget
) -> None:
    sid = new_id("hourly")
    base, env = cli
    created = await schedule(
        base, "create", sid, "--cron", NEVER_NOW, "research", "Will this ever end?",
        "--provider", "scripted", "--model", "hang", env=env,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    first = json.loads((await schedule(base, "trigger", sid)).stdout)["workflow_id"]
    skipped = await schedule(base, "trigger", sid)
    replaced = await schedule(base, "trigger", sid, "--overlap", "cancel-other")
    second = json.loads(replaced.stdout)["workflow_id"]
    described = json.loads((await schedule(base, "describe", sid)).stdout)
    await client.get_workflow_handle(second).cancel()
    await schedule(base, "delete", sid)
    assert first is not None
    assert first.startswith(f"research-{sid}-")
    assert json.loads(skipped.stdout)["workflow_id"] is None
    assert "skipped: its last run" in skipped.stderr
    assert first in skipped.stderr
    assert second is not None
    assert second != first
    status = (await client.get_workflow_handle(first).describe()).status
    assert status == WorkflowExecutionStatus.CANCELED  # cancelled, not terminated
    assert described["skipped_overlap"] == 1
    assert described["running"] == [second]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 7 * * * *", "research", QUESTION], "not a cron expression: '0 7 * * * *'"),
        (["--cron", "61 * * * *", "research", QUESTION], "not a cron expression: '61 * * * *'"),
        (["--cron", "at seven", "research", QUESTION], "five fields: minute hour day-of-month"),
        (["--cron", "@every 5m", "research", QUESTION], "use --every for an interval"),
        (["--every", "0s", "research", QUESTION], "--every: must be longer than 0"),
        (["--every", "soon", "research", QUESTION], "not a duration: 'soon'"),
        (["--every", "1h", "--catchup-window", "5s", "research", QUESTION], "at least 10s"),
        (["--cron", "@daily", "--time-zone", "Mars/Olympus", "ask", QUESTION], "not a time zone"),
        (["--every", "1h", "bogus", QUESTION], "invalid choice: 'bogus'"),
        (["--every", "1h", "--overlap", "sometimes", "agent", "x", "y"], "invalid choice"),
        (["research", QUESTION], "a schedule needs --cron EXPRESSION or --every DURATION"),
        (["--every", "1h", "research", QUESTION, "--request-id", "r1"], "--request-id does not"),
        (["--every", "1h", "research", QUESTION, "--budget-seconds", "60"], "--budget-seconds"),
        (["--every", "1h", "research", QUESTION, "--priority", "9"], "--priority: must be 1"),
        (["--every", "1h", "research", QUESTION, "--tenant", "a/b"], "not a tenant name"),
    ],
)
async def test_a_schedule_that_cannot_be_made_is_one_line_and_exit_2(
    args: list[str], message: str, server_address: str
) -> None:
    result = await run_script(
        "client.py", "--address", server_address, "schedule", "create", new_id("bad"), *args
    )
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


async def test_a_schedule_id_that_is_not_one_is_refused_before_anything_is_sent() -> None:
    result = await run_script("client.py", "schedule", "trigger", "a b")
    assert result.code == 2
    assert "not a schedule id: 'a b'" in result.stderr


FLOW_ARGUMENTS = {
    "research": [QUESTION, *SCRIPTED, "--corpus", "postmortems", "--clearance", "restricted"],
    "ask": [QUESTION, "--provider", "scripted", "--model", "team", "--require-approval"],
    "agent": ["researcher", QUESTION, "--max-turns", "3", "--budget-tokens", "900"],
    "incident": ["Checkout returns 500", "--assignee", "sre", "--approval-default", "approve"],
    "run": ["BriefFlow", "--input", '{"topic": "idempotency keys"}', "--tenant", "own"],
}
WORKFLOW_TYPES = {
    "research": "ResearchWorkflow",
    "ask": "IntentRouterWorkflow",
    "agent": "AgentWorkflow",
    "incident": "TicketSagaWorkflow",
    "run": "BriefFlow",
}


@pytest.mark.parametrize("flow", sorted(FLOW_ARGUMENTS))
def test_a_scheduled_flow_starts_with_the_input_its_own_command_builds(flow: str) -> None:
    parser = build_parser()
    keel = KeelSettings()
    scheduled = parser.parse_args(
        ["schedule", "create", "s1", "--every", "1h", flow, *FLOW_ARGUMENTS[flow]]
    )
    direct = parser.parse_args([flow, *FLOW_ARGUMENTS[flow]])
    action = schedule_for(scheduled, keel).action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.args == STARTABLE[flow].build(direct, keel)
    assert len(action.args) == 1
    assert action.workflow == WORKFLOW_TYPES[flow]
    assert action.priority.priority_key == 4  # batch, where the command's own run is 2


def test_every_flow_a_schedule_can_start_has_its_commands_arguments() -> None:
    assert set(STARTABLE) == set(FLOW_ARGS) == set(FLOW_ARGUMENTS)


async def test_a_flow_of_ones_own_runs_on_a_schedule_with_its_json_input(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    folder = tmp_path / "scripts"
    folder.mkdir()
    script(folder, "Keys make a retry a no-op.")
    sid = new_id("own")
    base = ["--address", server_address]
    settings = worker_settings(scripted_dir=folder)
    async with running_workers(client, store, settings, extra_workflows=[BriefFlow]):
        env = cli_env(settings)
        created = await schedule(
            base, "create", sid, "--every", "1d", "run", "BriefFlow",
            "--input", brief_input(settings.llm_task_queue), env=env,
        )  # fmt: skip
        bad_json = await schedule(
            base, "create", new_id("own"), "--every", "1d", "run", "BriefFlow", "--input", "{",
            env=env,
        )  # fmt: skip
        triggered = await schedule(base, "trigger", sid)
        run_id = json.loads(triggered.stdout)["workflow_id"]
        answer = await client.get_workflow_handle(run_id).result()
        await schedule(base, "delete", sid)
    assert created.code == 0, created.stderr
    assert json.loads(created.stdout)["flow"] == "BriefFlow"
    assert run_id.startswith(f"briefflow-{sid}-")
    assert answer["answer"] == "Keys make a retry a no-op."
    described = await client.get_workflow_handle(run_id).describe()
    assert described.typed_search_attributes.get(SCHEDULED_BY) == sid
    assert bad_json.code == 2
    assert "--input is not JSON" in bad_json.stderr


async def test_after_an_outage_only_times_inside_the_catchup_window_are_started(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = ["--data-dir", str(tmp_path), "--port", str(port), "--ui-port", str(free_port())]
    server += ["--codec-port", str(free_port()), "--tickets-port", str(free_port())]
    base = ["--address", f"127.0.0.1:{port}"]
    # No worker: the first run stays open, so every later time meets the overlap policy
    # (counted as skipped) unless it is older than the window (counted as missed).
    env = {"KEEL_TASK_QUEUE": f"nobody-{new_id()}"}
    started = await run_script("devserver.py", "start", *server)
    assert started.code == 0, started.stdout + started.stderr
    try:
        for sid, window in (("short", "10s"), ("long", "1h")):
            created = await schedule(
                base, "create", sid, "--every", "2s", "--catchup-window", window,
                "research", QUESTION, env=env,
            )  # fmt: skip
            assert created.code == 0, created.stderr
        await asyncio.sleep(3)
        before = json.loads((await schedule(base, "describe", "short")).stdout)
        await run_script("devserver.py", "stop", *server)
        await asyncio.sleep(OUTAGE_SECONDS)
        restarted = await run_script("devserver.py", "start", *server)
        assert restarted.code == 0, restarted.stdout + restarted.stderr
        await asyncio.sleep(5)  # the scheduler's timers fire late, once
        short = json.loads((await schedule(base, "describe", "short")).stdout)
        long = json.loads((await schedule(base, "describe", "long")).stdout)
    finally:
        await run_script("devserver.py", "stop", *server)
    assert before["missed_catchup_window"] == 0
    # About OUTAGE_SECONDS / 2 times passed while the server was down: those more than
    # 10 s back are dropped, the rest meet the overlap policy as if on time.
    assert short["missed_catchup_window"] >= (OUTAGE_SECONDS - 10) // 2 - 2
    assert long["missed_catchup_window"] == 0
    assert long["skipped_overlap"] >= OUTAGE_SECONDS // 2 - 2
    assert short["runs"] == long["runs"] == 1  # the first run still holds the overlap
