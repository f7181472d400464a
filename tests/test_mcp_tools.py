"""Tools from outside: MCP servers (stdio and HTTP) and Python tools, under keel's policy.

The servers are the real ones: `mcp-server-time` and `mcp-server-git` from PyPI over
stdio, and the SDK's own server over streamable HTTP (harness/testing/mcp_http_server.py).
One agent run calls each kind of tool, then each test reads one behaviour from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer

from activities.contracts.loader import load_contracts
from activities.contracts.source import ContractSource
from activities.documents.activities import DocumentActivities
from activities.documents.store import DocumentStore
from activities.tickets.activities import TicketActivities
from activities.tools.activities import ToolActivities
from harness.testing.mcp_setup import (
    AGENT,
    CANARY_VARIABLE,
    COMMIT_MESSAGE,
    TOKEN_VARIABLE,
    http_server,
    scratch_repository,
    stdio_children,
    turn,
    write_script,
    write_tool_contracts,
)
from harness.testing.processes import run_script, worker_process
from harness.testing.stack import (
    new_id,
    plaintext,
    running_workers,
    scripted_team_input,
    worker_settings,
)
from keel.payloads.agents import AgentInput, AgentResult, Observation
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.errors import UNKNOWN_TOOL
from keel.payloads.tools import ToolInvocation
from keel.routing.tools import route_tool
from tests.fixtures.python_tools import CountWords
from worker import WORKFLOWS
from workflows.agent import AgentWorkflow
from workflows.circuit_breaker import CircuitBreakerWorkflow, breaker_id

CANARY = f"mcp-env-canary-{secrets.token_hex(6)}"
TOKEN = f"mcp-header-token-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Setup:
    contracts_dir: Path
    repo: Path
    snapshot: ContractSnapshot


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The secrets in the worker's environment, the servers, the contracts naming them."""
    base = tmp_path_factory.mktemp("mcp")
    repo = scratch_repository(base / "repo")
    with pytest.MonkeyPatch.context() as patch, http_server(TOKEN) as url:
        patch.setenv(CANARY_VARIABLE, CANARY)
        patch.setenv(TOKEN_VARIABLE, TOKEN)
        folder = write_tool_contracts(base / "contracts", repo, url)
        yield Setup(folder, repo, load_contracts(folder))


def agent_input(script: str, llm_queue: str, **fields: object) -> AgentInput:
    return scripted_team_input(
        AgentInput, script, llm_queue, agent=AGENT, task="What now?", **fields
    )


@dataclass(frozen=True)
class Run:
    workflow_id: str
    result: AgentResult
    history: WorkflowHistory

    def seen(self, tool: str) -> list[Observation]:
        return [o for o in self.result.observations if o.tool == tool]


@pytest.fixture(scope="module")
async def run(
    setup: Setup, client: Client, store: DocumentStore, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """One agent run through the worker calling every kind of tool, in order."""
    scripts = tmp_path_factory.mktemp("mcp-scripts")
    write_script(
        scripts,
        "mcp_every_tool",
        [
            turn("get_current_time", timezone="Europe/Paris"),
            turn("git_log", repo_path=str(setup.repo), max_count=1),
            turn("word_stats", text="durable agents keep going"),
            turn("count_words", text="the cat saw the other cat", word="cat"),
            turn("count_words", text="no word given"),
            turn("count_words", text="over quota", word="quota"),
            turn("fail_loudly", reason="disk on fire"),
            turn("git_commit", repo_path=str(setup.repo), message="sneaky"),
            turn("whoami"),
            turn("huge", kilobytes=1100),
            turn("lying_clock"),
            turn("secret_note", note="q3"),
        ],
    )
    settings = worker_settings(scripted_dir=scripts)
    workflow_id = new_id("agent-mcp")
    async with running_workers(client, store, settings, contracts=setup.snapshot):
        result = await client.execute_workflow(
            AgentWorkflow.run,
            agent_input("mcp_every_tool", settings.llm_task_queue),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return Run(workflow_id, result, history)


def test_discovery_records_each_servers_tools_and_schemas_in_the_snapshot(setup: Setup) -> None:
    tools = setup.snapshot.tools
    assert tools["get_current_time"].source == "mcp:time"
    assert tools["get_current_time"].arguments["required"] == ["timezone"]
    assert tools["get_current_time"].output_schema is not None  # the server's TimeResult
    assert tools["get_current_time"].description == "Get current time in a specific timezone"
    assert tools["git_log"].arguments["properties"]["max_count"]["type"] == "integer"
    assert tools["word_stats"].source == "mcp:web"
    assert tools["word_stats"].capability == "word_stats"  # none given: its own name
    # Every tool a server lists is known, named or not; only the named ones are tools.
    assert "git_commit" in setup.snapshot.discovered["git"]
    assert "git_commit" not in tools
    assert set(setup.snapshot.discovered["time"]) == {"get_current_time", "convert_time"}
    # The declaration is recorded with the names of its secrets, never their values.
    dumped = setup.snapshot.model_dump_json()
    assert CANARY_VARIABLE in dumped
    assert TOKEN_VARIABLE in dumped
    assert CANARY not in dumped
    assert TOKEN not in dumped


def test_a_python_tool_takes_its_schema_from_its_signature(setup: Setup, run: Run) -> None:
    spec = setup.snapshot.tools["count_words"]
    assert spec.source == "python:tests.fixtures.python_tools"
    assert spec.arguments == CountWords.model_json_schema()
    assert spec.description == "Counts a word in a text."  # the contract's, over the docstring
    assert setup.snapshot.tools["secret_note"].description == "Reads a restricted note."
    called, refused, over_quota = run.seen("count_words")
    assert called.text == "'cat' occurs 2 times in 6 words"
    assert "arguments invalid: arguments: 'word' is a required property" in refused.text
    # Its quota holds as a built-in tool's does: two calls per run, then refused.
    assert over_quota.refused
    assert "count_words: quota of 2 per run used" in over_quota.text


def test_an_agent_calls_mcp_tools_over_stdio_and_http_through_the_worker(run: Run) -> None:
    [clock] = run.seen("get_current_time")
    assert '"timezone": "Europe/Paris"' in clock.text
    assert "+01:00" in clock.text
    [log] = run.seen("git_log")
    assert COMMIT_MESSAGE in log.text
    [stats] = run.seen("word_stats")
    assert json.loads(stats.text) == {"words": 4, "longest": "durable"}
    allowed = [d.tool for d in run.result.decisions if d.allowed]
    assert allowed[:3] == ["get_current_time", "git_log", "word_stats"]
    # Each call is its own activity, heartbeating, under the tool's timeout.
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in run.history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "call_tool"
    ]
    assert len(scheduled) == 9  # twelve turns; three refused before any activity
    assert all(s.heartbeat_timeout.seconds == 5 for s in scheduled)
    assert all(s.start_to_close_timeout.seconds == 20 for s in scheduled)


def test_a_tools_own_error_comes_back_to_the_agent_as_a_result(run: Run) -> None:
    [failed] = run.seen("fail_loudly")
    assert failed.text.startswith("the tool reported an error:")
    assert "failing as asked: disk on fire" in failed.text
    assert not failed.refused


def test_a_result_over_one_mebibyte_is_a_clear_error_that_is_not_retried(run: Run) -> None:
    [huge] = run.seen("huge")
    assert huge.text.startswith("error: huge returned")
    assert "over the 1048576-byte limit" in huge.text
    assert "tool_failed" in run.result.flags
    events = list(run.history.events)
    [failed] = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        and e.activity_task_failed_event_attributes.failure.application_failure_info.type
        == "ToolResultTooLarge"
    ]
    started_id = failed.activity_task_failed_event_attributes.started_event_id
    [started] = [e for e in events if e.event_id == started_id]
    assert started.activity_task_started_event_attributes.attempt == 1  # non-retryable


def test_a_result_that_breaks_the_listed_output_schema_is_a_clear_error(run: Run) -> None:
    [lie] = run.seen("lying_clock")
    assert lie.text.startswith("error: lying_clock returned a result that breaks its output")
    assert "'late' is not of type 'integer'" in lie.text
    failed = [
        e.activity_task_failed_event_attributes.failure.application_failure_info
        for e in run.history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert sum(f.type == "ToolResultInvalid" for f in failed) == 1
    assert all(f.non_retryable for f in failed if f.type == "ToolResultInvalid")


async def test_a_discovered_tool_the_contracts_do_not_name_is_refused(
    setup: Setup, run: Run
) -> None:
    # The model may name only declared tools: its proposal of git_commit broke the turn's
    # schema and was asked again, so it never reached the router, let alone the server.
    assert not run.seen("git_commit")
    assert all(d.requested != "git_commit" for d in run.result.decisions)
    assert "turn_schema_failure" not in run.result.flags
    # Had it reached the router, the router would not know it.
    agent = setup.snapshot.agents[AGENT].model_copy(update={"tools": ["git_commit"]})
    decision = route_tool("git_commit", agent, setup.snapshot.tools, calls={}, cost_left_usd=None)
    assert decision.reason == "unknown tool 'git_commit'"
    # Nor can the activity be made to call it, whatever a workflow asks.
    activities = ToolActivities(
        setup.snapshot,
        DocumentActivities(DocumentStore(setup.repo.parent / "unused.db"), {}),
        TicketActivities("http://127.0.0.1:1", "unused-token"),
    )
    call = ToolInvocation(
        tool="git_commit",
        arguments={"repo_path": str(setup.repo), "message": "sneaky"},
        idempotency_key="direct:git_commit",
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.call, call)
    assert refused.value.type == UNKNOWN_TOOL


def test_a_tool_above_the_callers_clearance_is_refused_before_any_call(run: Run) -> None:
    [note] = run.seen("secret_note")
    assert note.refused
    assert "returns restricted results, above clearance public" in note.text
    assert "March" not in json.dumps(run.history.to_json_dict())


async def test_secrets_from_the_environment_never_enter_the_history(
    client: Client, run: Run
) -> None:
    [whoami] = run.seen("whoami")
    # The server got the header (it refuses requests without it) and echoed it back.
    assert whoami.text == "you sent X-Keel-Token: ***"
    raw = json.dumps(run.history.to_json_dict())
    decoded = [(await plaintext(client, p)).data for p in payloads(run.history)]
    assert decoded, "the history's payloads were read"
    for secret in (CANARY, TOKEN):
        assert secret not in raw
        assert all(secret.encode() not in data for data in decoded)
    assert any(b"get_current_time" in data for data in decoded)  # the search can find


def payloads(history: WorkflowHistory) -> Iterator[Payload]:
    """Every payload anywhere in the history's events."""

    def walk(message: object) -> Iterator[Payload]:
        if isinstance(message, Payload):
            yield message
            return
        for field, value in message.ListFields():  # type: ignore[attr-defined]
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                items = list(value.values())
            elif hasattr(value, "ListFields"):
                items = [value]
            else:  # a repeated field
                items = list(value)
            for item in items:
                if not isinstance(item, (str, bytes, int, float, bool)):
                    yield from walk(item)

    for event in history.events:
        yield from walk(event)


async def test_a_killed_stdio_server_is_started_again_and_the_call_retried(
    setup: Setup, client: Client, store: DocumentStore, tmp_path: Path
) -> None:
    write_script(tmp_path, "one_time_call", [turn("get_current_time", timezone="Asia/Tokyo")])
    settings = worker_settings(scripted_dir=tmp_path)
    async with running_workers(client, store, settings, contracts=setup.snapshot):
        first = await client.execute_workflow(
            AgentWorkflow.run,
            agent_input("one_time_call", settings.llm_task_queue),
            id=new_id("agent-mcp"),
            task_queue=settings.task_queue,
        )
        [pid] = stdio_children("mcp-server-time")
        os.kill(pid, signal.SIGKILL)
        workflow_id = new_id("agent-mcp")
        second = await client.execute_workflow(
            AgentWorkflow.run,
            agent_input("one_time_call", settings.llm_task_queue),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        restarted = [p for p in stdio_children("mcp-server-time") if p != pid]
        handle = client.get_workflow_handle_for(
            CircuitBreakerWorkflow.run, breaker_id(settings.task_queue, "tool:get_current_time")
        )
        for _ in range(50):  # a success reaches the breaker within 0.25 s, not awaited
            breaker = await handle.query(CircuitBreakerWorkflow.state)
            if len(breaker.outcomes) >= 3:
                break
            await asyncio.sleep(0.1)
    assert len(restarted) == 1
    # The server's breaker saw each attempt, the one that met the dead server a failure.
    assert breaker.outcomes == [False, True, False]
    assert breaker.state == "closed"
    for result in (first, second):
        [seen] = [o for o in result.observations if o.tool == "get_current_time"]
        assert '"timezone": "Asia/Tokyo"' in seen.text
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    [started] = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.attempt > 1
    ]
    # The first attempt met the dead session and failed as retryable; the retry won.
    assert started.attempt == 2
    assert started.last_failure.application_failure_info.type == "ToolServerUnavailable"
    error = await client.data_converter.decode_failure(started.last_failure)
    assert "MCP server 'time' failed on get_current_time" in str(error)


async def test_client_tools_lists_every_tool_with_its_source_schema_and_policy(
    setup: Setup,
) -> None:
    shown = await run_script("client.py", "tools", "--dir", str(setup.contracts_dir))
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "search_documents  [builtin]  capability search" in lines
    assert "get_current_time  [mcp:time]  capability time" in lines
    assert "word_stats  [mcp:web]  capability word_stats" in lines
    assert "count_words  [python:tests.fixtures.python_tools]  capability count_words" in lines
    at = lines.index("secret_note  [python:tests.fixtures.python_tools]  capability secret_note")
    assert lines[at + 2] == (
        "  policy: roles clock; scopes (none); quota 10/run; cost $0; clearance restricted"
    )
    assert lines[at + 3].startswith('  arguments: {"properties":{"note":')
    assert any(
        line.startswith("not declared, so never called (mcp:git): ") and "git_commit" in line
        for line in lines
    )
    as_json = await run_script("client.py", "tools", "--dir", str(setup.contracts_dir), "--json")
    listed = json.loads(as_json.stdout)
    [time_tool] = [t for t in listed["tools"] if t["tool"] == "get_current_time"]
    assert time_tool["roles"] == ["clock"]
    assert time_tool["scopes"] == ["time:read"]
    assert time_tool["quota_per_run"] == 3
    assert time_tool["arguments"] == setup.snapshot.tools["get_current_time"].arguments
    assert "convert_time" in listed["undeclared"]["time"]
    assert CANARY not in shown.stdout + as_json.stdout


BAD_DECLARATIONS = [
    (
        '[tools.ghost]\nserver = "nowhere"\n',
        "tools.toml [tools.ghost] server: unknown server 'nowhere' (declared: git, time, web)",
    ),
    (
        '[tools.missing]\npython = "no_such_module_here:run"\n',
        "tools.toml [tools.missing] python: cannot import module 'no_such_module_here'",
    ),
    (
        '[tools.sync_one]\npython = "tests.fixtures.python_tools:not_async"\n',
        "tools.toml [tools.sync_one] python: tests.fixtures.python_tools:not_async"
        " is not an async function",
    ),
    (
        '[servers.broken]\ncommand = "/nonexistent/mcp-server"\n',
        "tools.toml [servers.broken]: cannot start (/nonexistent/mcp-server):",
    ),
    (
        '[servers.unset]\ncommand = "mcp-server-time"\nenv = { TOKEN = "KEEL_TEST_UNSET_VAR" }\n',
        "tools.toml [servers.unset]: server 'unset': env TOKEN takes $KEEL_TEST_UNSET_VAR,"
        " which is not set in the worker's environment",
    ),
    (
        '[servers.literal]\nurl = "http://127.0.0.1:1/mcp"\nheaders = { Authorization = "Bearer'
        ' s3cret" }\n',
        "tools.toml [servers.literal]: headers.Authorization: String should match pattern",
    ),
]


@pytest.mark.parametrize(("declaration", "message"), BAD_DECLARATIONS)
async def test_a_bad_tool_declaration_is_one_line_and_exit_2_from_contracts_check(
    setup: Setup, tmp_path: Path, declaration: str, message: str
) -> None:
    folder = tmp_path / "contracts"
    shutil.copytree(setup.contracts_dir, folder)
    with (folder / "tools.toml").open("a") as tools:
        tools.write("\n" + declaration)
    checked = await run_script("client.py", "contracts", "check", "--dir", str(folder))
    assert checked.code == 2
    [line] = checked.stderr.strip().splitlines()
    assert message in line, line


async def test_the_agent_run_over_mcp_tools_replays_on_the_current_code(
    client: Client, run: Run
) -> None:
    replayed = await Replayer(
        workflows=WORKFLOWS, data_converter=client.data_converter
    ).replay_workflow(run.history)
    assert replayed.replay_failure is None


async def test_the_worker_process_starts_its_stdio_servers_and_stops_them_when_it_stops(
    setup: Setup, client: Client, server_address: str, tmp_path: Path
) -> None:
    write_script(tmp_path, "worker_time_call", [turn("get_current_time", timezone="UTC")])
    settings = worker_settings()
    extra = ("--contracts-dir", str(setup.contracts_dir), "--scripted-dir", str(tmp_path))
    log = tmp_path / "worker.log"
    async with worker_process(
        server_address, settings, tmp_path, extra_args=extra, log_file=log
    ) as worker:
        result = await client.execute_workflow(
            AgentWorkflow.run,
            agent_input("worker_time_call", settings.llm_task_queue),
            id=new_id("agent-mcp"),
            task_queue=settings.task_queue,
        )
        servers = stdio_children("mcp-server-time", parent=worker.pid)
    [seen] = [o for o in result.observations if o.tool == "get_current_time"]
    assert '"timezone": "UTC"' in seen.text
    assert len(servers) == 1  # one session, kept open, owned by the worker
    assert worker.returncode == 0  # stopped with SIGTERM
    assert not Path(f"/proc/{servers[0]}").exists()  # and its server with it
    # Its logs (its own and its servers' stderr) hold neither secret it read by name.
    logged = log.read_text()
    assert "worker.started" in logged
    assert CANARY not in logged
    assert TOKEN not in logged


async def test_a_contract_edit_that_names_another_discovered_tool_reaches_the_next_run(
    setup: Setup, tmp_path: Path
) -> None:
    folder = tmp_path / "contracts"
    shutil.copytree(setup.contracts_dir, folder)
    source = ContractSource(folder)
    assert "convert_time" not in source.snapshot().tools
    with (folder / "tools.toml").open("a") as tools:
        tools.write('\n[tools.convert_time]\nserver = "time"\nscopes = ["time:read"]\n')
    edited = source.snapshot()
    assert edited.tools["convert_time"].source == "mcp:time"
    assert edited.tools["convert_time"].arguments["required"] == [
        "source_timezone",
        "time",
        "target_timezone",
    ]
