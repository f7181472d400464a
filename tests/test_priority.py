"""Priority and fairness: a run's priority and tenant, from the CLI down to every activity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.contracts.loader import CONTRACTS_DIR, load_contracts
from activities.documents.store import DocumentStore
from harness.testing.cli import REQUEST, SCRIPTED, cli_env, refused, scripts_folder
from harness.testing.processes import run_script
from harness.testing.stack import QUESTION, new_id, running_workers, worker_settings


class _Seen(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, seen: list[tuple[str, str, Any]]) -> None:
        super().__init__(next)
        self._seen = seen

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if not info.is_local:  # a local activity runs inside its workflow's task: no queue
            self._seen.append((info.workflow_id or "", info.activity_type, info.priority))
        return await self.next.execute_activity(input)


class ActivityPriorities(Interceptor):
    """Every activity the workers took from a queue: its run, its type, the priority it was
    dispatched with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Seen(next, self.seen)


def with_tenants(tmp_path: Path, *names: str) -> Path:
    """contracts/ with these tenants declared: a run's tenant must be one (tenants.toml)."""
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    with (folder / "tenants.toml").open("a") as tenants:
        tenants.writelines(f'\n[tenants.{name}]\ndescription = "{name}"\n' for name in names)
    return folder


async def _priority(client: Client, workflow_id: str) -> tuple[int, str, float]:
    described = await client.get_workflow_handle(workflow_id).describe()
    given = described.raw_description.workflow_execution_info.priority
    return given.priority_key, given.fairness_key, round(given.fairness_weight, 3)


async def test_an_ask_its_team_its_agents_and_every_activity_share_its_priority_and_tenant(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    recorder = ActivityPriorities()
    settings = worker_settings(scripted_dir=scripts_folder(tmp_path))
    folder = with_tenants(tmp_path, "acme")
    env = {**cli_env(settings), "KEEL_CONTRACTS_DIR": str(folder)}
    async with running_workers(
        client, store, settings, extra_interceptors=[recorder], contracts=load_contracts(folder)
    ):
        asked = await run_script(
            "client.py", "--address", server_address, "ask", REQUEST, "--provider", "scripted",
            "--model", "team", "--tenant", "acme", "--json", env=env,
        )  # fmt: skip
        assert asked.code == 0, asked.stderr
        team_id = json.loads(asked.stdout)["child_workflow_id"]
        tree = [
            wf.id
            async for wf in client.list_workflows(
                f'WorkflowId = "{team_id}" OR ParentWorkflowId = "{team_id}"'
            )
        ]
        router_id = (await client.get_workflow_handle(team_id).describe()).parent_id
    assert router_id is not None
    # Started from a terminal: interactive (2), the tenant its fairness key.
    assert await _priority(client, router_id) == (2, "acme", 0.0)
    agents = [wf for wf in tree if wf != team_id]
    assert len(agents) >= 3  # researchers, a writer, a reviewer
    for run in [team_id, *agents]:  # children and grandchildren inherit it from the server
        assert await _priority(client, run) == (2, "acme", 0.0), run
    # Written on the commands too, so the history and the Web UI show it on every step.
    history = await client.get_workflow_handle(team_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.priority
        if e.HasField("activity_task_scheduled_event_attributes")
        else e.start_child_workflow_execution_initiated_event_attributes.priority
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        or e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    assert len(scheduled) >= 4
    assert {(p.priority_key, p.fairness_key) for p in scheduled} == {(2, "acme")}
    ran = [(wf, kind, p) for wf, kind, p in recorder.seen if wf in {router_id, team_id, *agents}]
    assert {kind for _, kind, _ in ran} >= {"complete_llm", "call_tool"}
    for wf, kind, priority in ran:  # model calls on the llm queue, tools on the other
        assert (priority.priority_key, priority.fairness_key) == (2, "acme"), (wf, kind)


async def test_priority_and_weight_given_on_the_command_line_reach_the_run_and_its_calls(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    recorder = ActivityPriorities()
    request_id = new_id("prio")
    folder = with_tenants(tmp_path, "ops", "team-b")
    async with running_workers(
        client, store, extra_interceptors=[recorder], contracts=load_contracts(folder)
    ) as settings:
        env = {**cli_env(settings), "KEEL_CONTRACTS_DIR": str(folder)}
        ran = await run_script(
            "client.py", "--address", server_address, "research", QUESTION, *SCRIPTED,
            "--request-id", request_id, "--priority", "1", "--tenant", "ops",
            "--fairness-weight", "2.5", env={**env, "KEEL_TENANT": "ignored"},
        )  # fmt: skip
        status = await run_script(
            "client.py", "--address", server_address, "status", f"research-{request_id}"
        )
        default = await run_script(
            "client.py", "--address", server_address, "start", QUESTION, *SCRIPTED,
            env={**env, "KEEL_TENANT": "team-b"},
        )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert json.loads(status.stdout)["priority"] == {
        "priority_key": 1,
        "fairness_key": "ops",
        "fairness_weight": 2.5,
    }
    calls = [
        (p.priority_key, p.fairness_key, p.fairness_weight)
        for wf, _, p in recorder.seen
        if wf == f"research-{request_id}"
    ]
    assert calls
    assert set(calls) == {(1, "ops", 2.5)}
    # Without flags: interactive, and the tenant of KEEL_TENANT.
    started = json.loads(default.stdout)["workflow_id"]
    assert await _priority(client, started) == (2, "team-b", 0.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["research", QUESTION, "--priority", "0"], "--priority: must be 1 (first) to 5 (last)"),
        (["ask", QUESTION, "--priority", "6"], "--priority: must be 1 (first) to 5 (last), not 6"),
        (["agent", "researcher", QUESTION, "--priority", "high"], "not a whole number: 'high'"),
        (["research", QUESTION, "--fairness-weight", "0"], "--fairness-weight: must be 0.001"),
        (["research", QUESTION, "--fairness-weight", "5000"], "must be 0.001 to 1000, not 5000"),
        (["research", QUESTION, "--tenant", "a b"], "not a tenant name: 'a b'"),
        (["incident", "down", "--tenant", "x" * 65], "not a tenant name"),
    ],
)
async def test_a_priority_weight_or_tenant_out_of_range_is_one_line_and_exit_2(
    args: list[str], message: str, server_address: str
) -> None:
    assert message in await refused(server_address, *args)


async def test_a_tenant_setting_that_is_not_a_name_is_one_line_and_exit_2(
    server_address: str,
) -> None:
    result = await run_script(
        "client.py", "--address", server_address, "start", QUESTION, *SCRIPTED,
        env={"KEEL_TENANT": "no spaces please", "KEEL_TASK_QUEUE": f"nobody-{new_id()}"},
    )  # fmt: skip
    assert result.code == 2
    assert "KEEL_TENANT='no spaces please' is not a tenant name" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
