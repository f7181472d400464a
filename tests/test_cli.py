"""client.py as a user runs it: a subprocess against the real dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from activities.documents.store import DocumentStore
from harness.testing.cli import SCRIPTED, CliTarget, cli_env, cli_workers, refused
from harness.testing.processes import run_script
from harness.testing.stack import (
    DEMO_CORPUS,
    QUESTION,
    ROOT,
    new_id,
    running_workers,
    worker_settings,
)
from keel.cli.parser import build_parser
from keel.cli.start import research_input
from keel.infra.settings import KeelSettings
from workflows.research import ResearchWorkflow


async def test_unreachable_server_is_one_clear_line_and_exit_code_3() -> None:
    result = await run_script("client.py", "--address", "127.0.0.1:1", "list")
    assert result.code == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "127.0.0.1:1" in lines[0]
    assert "devserver.py start" in lines[0]


async def test_research_shows_live_progress_while_the_model_works(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        result = await run_script(
            "client.py",
            *("--address", server_address, "research", "Why do long activities heartbeat?"),
            *("--provider", "scripted", "--model", "slow_pass"),
            env=cli_env(settings),
        )
    assert result.code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    nodes = [line.split("node=")[1].split()[0] for line in progress]
    # Polled while the run was going, so the nodes it passed through appear in order.
    assert {"plan", "write", "review"} <= set(nodes)
    assert nodes.index("plan") < nodes.index("write") < nodes.index("review")
    assert progress[-1].startswith("[delivered] node=deliver")


async def test_research_prints_report_citations_and_ui_link(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    request_id = new_id("cli")
    async with running_workers(client, store) as settings:
        result = await run_script(
            "client.py",
            "--address",
            server_address,
            "research",
            QUESTION,
            "--request-id",
            request_id,
            *SCRIPTED,
            env=cli_env(settings),
        )
    assert result.code == 0, result.stderr
    assert "Citations:\n  [1] demo/idempotency-keys#" in result.stdout
    assert (
        "Review: passed, rubric answer 4.0 >= 3.5 (relevance 4, grounding 4, clarity 4)"
        in result.stdout
    )
    host, _, port = server_address.rpartition(":")  # the dev server's UI: its port + 1000
    link = f"http://{host}:{int(port) + 1000}/namespaces/default/workflows/research-{request_id}/"
    assert link in result.stdout


async def test_same_request_id_returns_the_same_run(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    request_id = new_id("dup")
    args = ["--address", server_address, "start", QUESTION, "--request-id", request_id, *SCRIPTED]
    async with running_workers(client, store) as settings:
        first = await run_script("client.py", *args, env=cli_env(settings))
        result = await run_script(
            "client.py", "--address", server_address, "result", f"research-{request_id}"
        )
        second = await run_script("client.py", *args, env=cli_env(settings))
    assert first.code == second.code == result.code == 0, first.stderr + second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert "already submitted" in second.stderr
    runs = [wf async for wf in client.list_workflows(f'WorkflowId = "research-{request_id}"')]
    assert len(runs) == 1


async def test_status_list_and_ingest_report_on_real_runs(client: Client, cli: CliTarget) -> None:
    request_id = new_id("st")
    base, env = cli
    started = await run_script(
        "client.py", *base, "research", QUESTION, "--request-id", request_id, *SCRIPTED, env=env
    )
    assert started.code == 0, started.stderr
    status = await run_script("client.py", *base, "status", f"research-{request_id}")
    listed = await run_script("client.py", *base, "list", "--json", "--limit", "50")
    ingested = await run_script(
        "client.py", *base, "ingest", str(DEMO_CORPUS), "--corpus", "demo", env=env
    )
    assert status.code == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["status"] == "COMPLETED"
    assert body["progress"]["node"] == "deliver"
    assert body["progress"]["usage"]["calls"] == 6  # the question found enough: no refine
    rows = {r["workflow_id"]: r for r in json.loads(listed.stdout)}
    assert rows[f"research-{request_id}"]["research_status"] == "delivered"
    assert ingested.code == 0, ingested.stderr
    counts = json.loads(ingested.stdout)
    assert counts["namespace"] == "demo"
    assert counts["documents"] + counts["unchanged"] == len(list(DEMO_CORPUS.glob("*.md")))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["research"], "the following arguments are required: question"),
        (["research", "hi"], "invalid input"),
        (["frobnicate"], "invalid choice"),
        (["research", "What is a saga?", "--clearance", "secret"], "invalid choice: 'secret'"),
        (["ingest", "/no/such/folder"], "is not a folder"),
        (["research", QUESTION, "--budget-seconds", "-5"], "--budget-seconds: must be above 0"),
        (["research", QUESTION, "--budget-seconds", "0"], "--budget-seconds: must be above 0"),
        (["research", QUESTION, "--budget-tokens", "-5"], "--budget-tokens: must be at least 1"),
        (["research", QUESTION, "--provider", "scripted"], "--provider scripted needs --model"),
        (
            ["research", QUESTION, "--provider", "scripted", "--model", "../../etc/passwd"],
            "'../../etc/passwd' is not a script name",
        ),
        (["ask", QUESTION, "--provider", "scripted"], "--provider scripted needs --model"),
        (["agent", "researcher", QUESTION, "--max-turns", "0"], "--max-turns: must be at least 1"),
        (["list", "--type", "bogus"], "unknown type 'bogus': not one of agent, breaker,"),
        (["list", "--type", "no such"], "not a workflow type name: 'no such'"),
        (["list", "--under", 'a"b'], "not a workflow id"),
        (["fork", "research-x"], "the following arguments are required: --at"),
    ],
)
async def test_bad_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, server_address: str
) -> None:
    stderr = await refused(server_address, *args)
    assert message in stderr
    assert "Traceback" not in stderr


def test_clearance_flag_reaches_the_research_input() -> None:
    parser = build_parser()
    cleared = parser.parse_args(
        ["start", QUESTION, "--corpus", "postmortems", "--clearance", "restricted"]
    )
    made = research_input(cleared, KeelSettings())
    assert (made.namespace, made.clearance) == ("postmortems", "restricted")
    default = research_input(parser.parse_args(["research", QUESTION]), KeelSettings())
    assert default.clearance == "public"


async def test_exit_codes_are_reliable_over_repeated_runs(server_address: str) -> None:
    """The native client must not crash interpreter teardown after the work is done."""
    codes = []
    for _ in range(12):
        result = await run_script("client.py", "--address", server_address, "list", "--limit", "1")
        codes.append(result.code)
    assert codes == [0] * 12


async def test_flows_prints_the_transition_table_as_mermaid() -> None:
    result = await run_script("client.py", "flows", "research", "--mermaid")
    assert result.code == 0
    assert result.stdout.startswith("flowchart TD\n")
    assert '  check_evidence -->|"not enough"| refine_query' in result.stdout


async def test_flows_prints_the_team_table_as_mermaid_and_as_text() -> None:
    drawn = await run_script("client.py", "flows", "team", "--mermaid")
    assert drawn.code == 0, drawn.stderr
    assert drawn.stdout.startswith("flowchart TD\n")
    assert '  verdict -->|"held for a person: passed, or the round limit, with approval"|' in (
        drawn.stdout
    )
    listed = await run_script("client.py", "flows", "team")
    assert listed.code == 0, listed.stderr
    assert "relevance       --nothing relevant--> deliver  (the documents do not answer it)" in (
        listed.stdout.splitlines()
    )


async def test_cancel_stops_a_running_flow_and_marks_it_cancelled(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    request_id = new_id("cancel")
    workflow_id = f"research-{request_id}"
    async with cli_workers(client, store, server_address) as (base, env):
        started = await run_script(
            "client.py",
            *(*base, "start", "Will this ever pass review?", "--request-id", request_id),
            *("--provider", "scripted", "--model", "hang"),
            env=env,
        )
        assert started.code == 0, started.stderr
        handle = client.get_workflow_handle(workflow_id)
        for _ in range(50):  # wait until the run is under way
            if (await handle.query(ResearchWorkflow.progress)).visits:
                break
            await asyncio.sleep(0.1)
        cancelled = await run_script("client.py", *base, "cancel", workflow_id)
        assert cancelled.code == 0, cancelled.stderr
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        again = await run_script("client.py", *base, "cancel", workflow_id)
        listed = await run_script(
            "client.py", *base, "list", "--type", "research", "--status", "cancelled", "--json"
        )
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.CANCELED
    rows = {row["workflow_id"]: row for row in json.loads(listed.stdout)}
    assert rows[workflow_id]["research_status"] == "cancelled"
    assert again.code == 1
    assert "is not running (CANCELED)" in again.stderr


async def test_research_without_a_worker_says_so_and_keeps_the_run(
    client: Client, server_address: str
) -> None:
    request_id = new_id("noworker")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "client.py"),
        *("--address", server_address, "research", QUESTION, "--request-id", request_id),
        cwd=ROOT,
        env={**os.environ, "KEEL_TASK_QUEUE": f"nobody-{request_id}"},
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("still waiting for a worker" in line for line in lines):
                lines.append((await process.stderr.readline()).decode())
    finally:
        process.terminate()
        await process.wait()
    assert f"task queue 'nobody-{request_id}'" in lines[-1]
    description = await client.get_workflow_handle(f"research-{request_id}").describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    await client.get_workflow_handle(f"research-{request_id}").terminate("test done")


async def test_a_failed_run_names_its_root_cause_in_one_line(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    key = "sk-canary-0123456789abcdef"
    unreachable = worker_settings(
        openai_base_url="http://127.0.0.1:1/v1", openai_api_key=key, provider_timeout_seconds=2
    )
    async with running_workers(client, store, unreachable) as settings:
        result = await run_script(
            "client.py",
            *("--address", server_address, "research", QUESTION),
            *("--provider", "openai", "--model", "gpt-5-mini"),
            env=cli_env(settings),
        )
    assert result.code != 0
    failed = [line for line in result.stderr.splitlines() if line.startswith("research failed")]
    assert failed == [
        "research failed: ProviderUnavailable: openai: unreachable: Connection error."
        " (in complete_llm)"
    ]
    assert "Web UI: http" in result.stderr
    assert key not in result.stdout + result.stderr


async def test_a_refused_research_run_is_one_line_and_exit_code_4(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        result = await run_script(
            "client.py", "--address", server_address,
            "research", QUESTION, "--corpus", "postmortems", *SCRIPTED,
            env=cli_env(settings),
        )  # fmt: skip
    assert result.code == 4, result.stderr
    assert result.stdout == ""
    # Nothing else: no header, no progress of a run that never started its first node.
    assert result.stderr.splitlines() == [
        "research refused: namespace 'postmortems' is restricted; clearance public may not read it"
    ]
