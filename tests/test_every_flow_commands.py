"""`list`, `status`, `watch`, `result`, `cancel` and `fork` on every kind of run, as typed."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Replayer

from activities.contracts.loader import CONTRACTS_DIR, ContractError, load_contracts
from activities.documents.store import DocumentStore
from activities.fork.history import model_steps
from harness.testing.cli import REQUEST, cli_env, cli_workers, scripts_folder
from harness.testing.processes import Completed, run_script
from harness.testing.stack import ROOT, new_id, running_workers, worker_settings
from keel.cli.kinds import KINDS
from keel.payloads.agents import AgentResult
from keel.payloads.coordinator import MultiAgentReport
from worker import WORKFLOWS

TASK = "How do idempotency keys make retries safe?"


async def run_agent(base: list[str], request_id: str, env: dict[str, str]) -> Completed:
    """`client.py agent researcher` on the team's script, as a user types it."""
    return await run_script(
        "client.py", *base, "agent", "researcher", TASK, "--request-id", request_id,
        "--provider", "scripted", "--model", "team", env=env,
    )  # fmt: skip


async def ask_team(base: list[str], env: dict[str, str]) -> Completed:
    return await run_script(
        "client.py", *base, "ask", REQUEST, "--provider", "scripted", "--model", "team",
        "--json", env=env,
    )  # fmt: skip


def test_the_cli_knows_every_workflow_type_the_worker_runs() -> None:
    names = {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]
    assert {k.workflow_type for k in KINDS.values()} == names


async def test_agent_runs_are_listed_shown_watched_and_their_result_printed(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    request_id = new_id("every")
    settings = worker_settings(scripted_dir=scripts_folder(tmp_path))
    async with cli_workers(client, store, server_address, settings) as (base, env):
        ran = await run_agent(base, request_id, env)
        agent_id = f"agent-{request_id}"
        asked = await ask_team(base, env)
        team_id = json.loads(asked.stdout)["child_workflow_id"]
        listed = await run_script("client.py", *base, "list", "--limit", "500", "--json", env=env)
        agents = await run_script(
            "client.py", *base, "list", "--type", "agent", "--limit", "500", env=env
        )
        tree = await run_script("client.py", *base, "list", "--under", team_id, "--json", env=env)
        status = await run_script("client.py", *base, "status", agent_id, env=env)
        result = await run_script("client.py", *base, "result", agent_id, env=env)
        as_json = await run_script("client.py", *base, "result", agent_id, "--json", env=env)
        team_result = await run_script("client.py", *base, "result", team_id, env=env)
        watched = await run_script("client.py", *base, "watch", agent_id, env=env)
    assert ran.code == 0, ran.stderr
    assert "Agent: researcher (role researcher)" in ran.stdout
    assert "tool search_documents allowed" in ran.stderr  # followed live
    rows = {r["workflow_id"]: r for r in json.loads(listed.stdout)}
    assert rows[agent_id]["type"] == "AgentWorkflow"
    assert rows[agent_id]["research_status"] == "delivered"
    assert not any(k.startswith(f"{team_id}-") for k in rows)  # a team's agents stay inside it
    agent_rows = [line.split() for line in agents.stdout.splitlines()]
    assert agent_rows[0][-2:] == ["PARENT", "STARTED"]
    parents = {row[0]: row[-2] for row in agent_rows[1:]}
    assert parents[agent_id] == "-"
    assert parents[f"{team_id}-researcher-1"] == team_id
    in_tree = {r["workflow_id"] for r in json.loads(tree.stdout)}
    assert {team_id, f"{team_id}-researcher-1", f"{team_id}-writer-1"} <= in_tree
    assert agent_id not in in_tree
    shown = json.loads(status.stdout)
    assert shown["type"] == "AgentWorkflow"
    assert shown["progress"]["agent"] == "researcher"
    assert result.code == 0
    assert result.stdout.startswith("Agent: researcher")
    assert AgentResult.model_validate_json(as_json.stdout).output is not None
    assert team_result.stdout.startswith("Request: ")
    assert watched.code == 0, watched.stderr
    assert "tool search_documents allowed" in watched.stderr


async def test_a_run_with_no_live_channel_is_watched_through_its_history(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with cli_workers(client, store, server_address) as (base, env):
        ingest = await run_script(
            "client.py", *base, "ingest", str(ROOT / "corpus" / "demo"), "--corpus", "demo", env=env
        )
        listed = await run_script(
            "client.py", *base, "list", "--type", "ingest", "--limit", "1", "--json", env=env
        )
        ingest_id = json.loads(listed.stdout)[0]["workflow_id"]
        watched = await run_script("client.py", *base, "watch", ingest_id, env=env)
        status = await run_script("client.py", *base, "status", ingest_id, env=env)
    assert listed.code == 0, listed.stderr + ingest.stderr
    assert watched.code == 0, watched.stderr
    lines = watched.stderr.splitlines()
    assert any(line.startswith("  - ingest ") and line.endswith(": scheduled") for line in lines)
    assert "  - run completed" in lines
    assert json.loads(status.stdout)["progress"] is None
    assert "progress query" not in status.stderr  # a type with none is not asked


async def test_a_running_agent_is_cancelled_and_its_slot_freed(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    folder = scripts_folder(tmp_path, _delay_ms=600_000)
    request_id = new_id("every")
    settings = worker_settings(scripted_dir=folder)
    async with cli_workers(client, store, server_address, settings) as (base, env):
        started = asyncio.create_task(run_agent(base, request_id, env))
        handle = client.get_workflow_handle(f"agent-{request_id}")
        for _ in range(100):
            pending = await _pending(client, handle.id)
            if pending:
                break
            await asyncio.sleep(0.1)
        cancelled = await run_script("client.py", *base, "cancel", handle.id, env=env)
        ran = await started
        description = await handle.describe()
    assert cancelled.code == 0, cancelled.stderr
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert ran.code == 1
    assert "cancel" in ran.stderr.lower()


@dataclass(frozen=True)
class AskedTeam:
    """A team run asked for through `client.py ask`, on workers reading `folder`'s script."""

    base: list[str]
    env: dict[str, str]
    folder: Path
    team_id: str
    original_run: str

    async def fork(self, at: str) -> Completed:
        """`client.py fork <team> --at <call>`, as a user types it."""
        return await run_script(
            "client.py", *self.base, "fork", self.team_id, "--at", at, env=self.env
        )


@asynccontextmanager
async def asked_team(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> AsyncIterator[AskedTeam]:
    """A team asked for on the team's script, its workers running while the test forks it."""
    folder = scripts_folder(tmp_path)
    settings = worker_settings(scripted_dir=folder)
    async with cli_workers(client, store, server_address, settings) as (base, env):
        asked = await ask_team(base, env)
        team_id = json.loads(asked.stdout)["child_workflow_id"]
        original_run = (await client.get_workflow_handle(team_id).describe()).run_id
        yield AskedTeam(base, env, folder, team_id, original_run)


async def _pending(client: Client, workflow_id: str) -> bool:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except Exception:  # not started yet
        return False
    return any(
        p.activity_type.name == "complete_llm" for p in described.raw_description.pending_activities
    )


async def test_a_team_forks_at_a_reviewers_call_and_nothing_before_it_runs_again(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    async with asked_team(client, store, server_address, tmp_path) as team:
        team_id, original_run, folder = team.team_id, team.original_run, team.folder
        before = {
            role: (await client.get_workflow_handle(f"{team_id}-{role}").describe()).run_id
            for role in ("researcher-1", "researcher-2", "writer-1", "reviewer-1", "writer-2")
        }
        # The model worker changed after the run: its second review scores 5 throughout.
        script = json.loads((folder / "team.json").read_text())
        five = {"scores": [{**c, "score": 5} for c in script["reviewer"][-1]["scores"]]}
        script["reviewer"] = [script["reviewer"][0], {**script["reviewer"][-1], **five}]
        (folder / "team.json").write_text(json.dumps(script))
        forked = await team.fork("reviewer-2/reviewer")
        unknown = await team.fork("nope")
    assert forked.code == 0, forked.stderr
    forked_run = (await client.get_workflow_handle(team_id).describe()).run_id
    assert forked_run != original_run
    report = await client.get_workflow_handle(
        team_id, run_id=forked_run, result_type=MultiAgentReport
    ).result()
    original = await client.get_workflow_handle(
        team_id, run_id=original_run, result_type=MultiAgentReport
    ).result(follow_runs=False)
    assert original.rounds[-1].weighted_score == 4.0
    assert report.rounds[-1].weighted_score == 5.0  # the changed worker's review, after the fork
    assert report.answer == original.answer  # the draft it reviewed was not written again
    # Every child before the call kept its run: none was reset or run again.
    for role, run_id in before.items():
        assert (await client.get_workflow_handle(f"{team_id}-{role}").describe()).run_id == run_id
    reviewer = await client.get_workflow_handle(f"{team_id}-reviewer-2").describe()
    steps = await model_steps(client, f"{team_id}-reviewer-2", reviewer.run_id)
    assert [s.label for s in steps] == ["reviewer #2"]
    assert original_run[:12] in forked.stdout
    assert forked_run[:12] in forked.stdout
    assert "passed 4.00" in forked.stdout
    assert "passed 5.00" in forked.stdout
    assert unknown.code == 2
    assert "its calls: decompose #1, researcher-1/researcher_turn #1" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


async def test_a_team_forks_at_a_researchers_second_turn_and_its_first_is_handed_back(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    async with asked_team(client, store, server_address, tmp_path) as team:
        team_id, original_run, folder = team.team_id, team.original_run, team.folder
        first = {role: await _child_result(client, f"{team_id}-{role}") for role in RESEARCHERS}
        # Today's model searches once more at the second turn.
        script = json.loads((folder / "team.json").read_text())
        again = {**script["researcher_turn"][0], "arguments": {"query": "breaker half-open"}}
        turns = script["researcher_turn"]
        script["researcher_turn"] = [turns[0], again, *turns[1:]]
        (folder / "team.json").write_text(json.dumps(script))
        forked = await team.fork("researcher-1/researcher_turn#2")
    assert forked.code == 0, forked.stderr
    forked_run = (await client.get_workflow_handle(team_id).describe()).run_id
    assert forked_run != original_run
    await client.get_workflow_handle(team_id, run_id=forked_run).result()
    # The forked researcher made its calls from the second turn on, and no others.
    run_one = (await client.get_workflow_handle(f"{team_id}-researcher-1").describe()).run_id
    assert run_one != first["researcher-1"][0]
    assert await _activities(client, f"{team_id}-researcher-1", run_one) == [
        "researcher_turn #2", "search_documents(query=breaker half-open) turn 2",
        "researcher_turn #3", "researcher_final #1",
    ]  # fmt: skip
    one = await _child_result(client, f"{team_id}-researcher-1")
    assert one[1].turns == 3
    before = [o.tool for o in first["researcher-1"][1].observations]
    assert [o.tool for o in one[1].observations] == [*before, "search_documents"]
    # Its sibling, started in the same step, was handed all of its outcomes: no call.
    two = await _child_result(client, f"{team_id}-researcher-2")
    assert two[0] != first["researcher-2"][0]
    assert await _activities(client, f"{team_id}-researcher-2", two[0]) == []
    assert two[1] == first["researcher-2"][1]
    assert "researcher-1, researcher-2" in forked.stderr
    original = await client.get_workflow_handle(team_id, run_id=original_run).describe()
    assert original.status == WorkflowExecutionStatus.COMPLETED
    # The reset team (its patch markers and recorded local activities) and the children
    # it handed outcomes to replay from their histories alone.
    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter)
    for workflow_id, run_id in ((team_id, forked_run), (f"{team_id}-researcher-1", run_one)):
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        await replayer.replay_workflow(history)


RESEARCHERS = ("researcher-1", "researcher-2")


async def _child_result(client: Client, workflow_id: str) -> tuple[str, AgentResult]:
    handle = client.get_workflow_handle(workflow_id, result_type=AgentResult)
    return (await handle.describe()).run_id, await handle.result(follow_runs=False)


async def _activities(client: Client, workflow_id: str, run_id: str) -> list[str]:
    """The summaries of the activities the run scheduled itself, in order."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    scheduled = [
        e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
    ]
    return [
        str(s)
        for s in await client.data_converter.decode(
            [e.user_metadata.summary for e in scheduled], [str] * len(scheduled)
        )
    ]


async def test_an_agent_forks_at_its_second_turn(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    request_id = new_id("every")
    folder = scripts_folder(tmp_path)
    settings = worker_settings(scripted_dir=folder)
    async with cli_workers(client, store, server_address, settings) as (base, env):
        ran = await run_agent(base, request_id, env)
        agent_id = f"agent-{request_id}"
        original_run = (await client.get_workflow_handle(agent_id).describe()).run_id
        forked = await run_script(
            "client.py", *base, "fork", agent_id, "--at", "researcher_turn#2", env=env
        )
        saga = await run_script("client.py", *base, "fork", "no-such-run", "--at", "x", env=env)
    assert ran.code == 0, ran.stderr
    assert forked.code == 0, forked.stderr
    forked_run = (await client.get_workflow_handle(agent_id).describe()).run_id
    assert forked_run != original_run
    history = await client.get_workflow_handle(agent_id, run_id=forked_run).fetch_history()
    reset_at = next(
        e.event_id for e in history.events if e.HasField("workflow_task_failed_event_attributes")
    )
    steps = await model_steps(client, agent_id, forked_run)
    assert [s.label for s in steps if s.task_completed_event_id < reset_at] == [
        "researcher_turn #1"
    ]
    assert [s.label for s in steps if s.task_completed_event_id > reset_at] == [
        "researcher_turn #2",
        "researcher_final #1",
    ]
    assert saga.code == 1
    assert "not found" in saga.stderr


FIND_INTENT = """
[intents.find]
flow = "agent"
agent = "{agent}"
description = "Passages about a topic, found by the researcher agent."
keywords = ["find passages"]
"""


async def test_ask_routes_a_request_to_an_agent_the_contracts_name(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    with (folder / "routes.toml").open("a") as routes:
        routes.write(FIND_INTENT.format(agent="researcher"))
    contracts = load_contracts(folder)
    base = ["--address", server_address]
    async with running_workers(client, store, contracts=contracts) as settings:
        asked = await run_script(
            "client.py", *base, "ask", "find passages about idempotency keys",
            "--provider", "scripted", "--model", "ask_everything", env=cli_env(settings),
        )  # fmt: skip
    assert asked.code == 0, asked.stderr
    assert asked.stdout.startswith("Intent: find (rule: keyword 'find passages')")
    assert "Agent: researcher (role researcher)" in asked.stdout
    assert "tool search_documents allowed" in asked.stderr
    with (folder / "routes.toml").open("a") as routes:
        routes.write(FIND_INTENT.replace("find]", "find_more]").format(agent="finder"))
    with pytest.raises(ContractError, match=r"\[intents.find_more\] agent: unknown agent 'finder'"):
        load_contracts(folder)
