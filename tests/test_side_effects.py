"""Side effects exactly once, or fail closed, with real worker processes killed mid-call.

A tool without an idempotency key is sent at most once: after kill -9 of the worker
while it is in flight, the run waits in needs_reconciliation and nothing sends it
again until an operator says so (`client.py reconcile`). A tool that takes keel's
key may be sent again, and applies it once.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities.contracts.loader import ContractError, load_contracts
from activities.documents.store import DocumentStore
from harness.testing.mcp_setup import TIME_SERVER, http_server
from harness.testing.processes import Completed, run_script, worker_process
from harness.testing.side_effects import turn, write_contracts, write_script
from harness.testing.stack import (
    current_details,
    new_id,
    running_workers,
    scripted_team_input,
    waiting_in_progress,
    worker_settings,
)
from harness.testing.ticket_service import TicketService
from keel.payloads.agents import AgentInput, AgentResult
from keel.payloads.side_effects import Reconciliation, SideEffectCall, reconcile_refusal
from workflows.agent import AgentWorkflow

BOARD_TOKEN = "board-token-1234"  # what the board's MCP server asks of every request


class Board:
    """The notice board's database, read as the tests' server of record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        if not self.path.exists():
            return []
        with sqlite3.connect(self.path) as db:
            try:
                return list(db.execute(sql))
            except sqlite3.OperationalError:  # no table yet: nothing arrived
                return []

    def arrivals(self, tool: str) -> list[tuple[object, ...]]:
        return self.rows(f"SELECT text, key, pid FROM arrivals WHERE tool = '{tool}'")


class Scenario:
    def __init__(
        self,
        tmp_path: Path,
        server_address: str,
        turns: list[dict[str, object]],
        board_url: str | None = None,
    ):
        self.tmp_path = tmp_path
        self.address = server_address
        self.settings = worker_settings()
        self.board = Board(tmp_path / "board" / "board.db")
        self.board.path.parent.mkdir()
        self.hold = self.board.path.parent / "hold"
        contracts = write_contracts(tmp_path, board_url=board_url)
        scripts = write_script(tmp_path, turns)
        self.worker_args = ("--contracts-dir", str(contracts), "--scripted-dir", str(scripts))
        self.env = {
            "KEEL_TASK_QUEUE": self.settings.task_queue,
            "KEEL_LLM_TASK_QUEUE": self.settings.llm_task_queue,
        }
        self.request_id = new_id("herald")
        self.workflow_id = f"agent-{self.request_id}"

    async def cli(self, *words: str) -> Completed:
        return await run_script("client.py", "--address", self.address, *words, env=self.env)

    def start_agent(self) -> asyncio.Task[Completed]:
        return asyncio.create_task(self.cli(
            "agent", "herald", "Post the release notices", "--provider", "scripted",
            "--model", "herald", "--request-id", self.request_id,
        ))  # fmt: skip

    @asynccontextmanager
    async def worker(self, name: str) -> AsyncIterator[asyncio.subprocess.Process]:
        data = self.tmp_path / name
        data.mkdir()
        async with worker_process(
            self.address,
            self.settings,
            data,
            extra_args=self.worker_args,
            log_file=data / "worker.log",
        ) as process:
            yield process

    async def listed(self) -> Completed:
        """`client.py reconcile` once it names the run: the list reads the search
        attribute from visibility, which lags the run by seconds on the dev server."""
        for _ in range(60):
            listed = await self.cli("reconcile")
            if listed.code != 0 or self.workflow_id in listed.stdout:
                break
            await asyncio.sleep(0.5)
        return listed

    async def kill_when_arrived(
        self, process: asyncio.subprocess.Process, tool: str, n: int
    ) -> None:
        """kill -9 of the worker once the n-th call of `tool` is in flight on it."""
        for _ in range(600):
            if len(self.board.arrivals(tool)) >= n:
                process.kill()
                await process.wait()
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{tool} call {n} never arrived")


async def waiting_call(client: Client, workflow_id: str, call: int) -> dict[str, object]:
    return await waiting_in_progress(client, workflow_id, "needs_reconciliation", call, tries=600)


@asynccontextmanager
async def held_herald(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> AsyncIterator[tuple[Board, WorkflowHandle[AgentWorkflow, AgentResult]]]:
    """The herald posting `text` once on in-process workers, its call held (1 s limit)
    until `tmp_path / "hold"` goes; its board and the run's handle while the workers run."""
    board = Board(tmp_path / "board.db")
    monkeypatch.setenv("KEEL_TEST_BOARD", str(board.path))
    (tmp_path / "hold").touch()
    contracts = load_contracts(write_contracts(tmp_path, timeout_seconds=1))
    settings = worker_settings(
        scripted_dir=write_script(tmp_path, [turn("post_notice", text), turn(None)])
    )
    store = DocumentStore(tmp_path / "documents.db")
    async with running_workers(client, store, settings, contracts=contracts):
        handle = await client.start_workflow(
            AgentWorkflow.run,
            scripted_team_input(
                AgentInput, "herald", settings.llm_task_queue, agent="herald", task="Post it"
            ),
            id=new_id("agent-herald"),
            task_queue=settings.task_queue,
        )
        yield board, handle


async def test_kill_9_mid_call_waits_for_reconciliation_and_never_sends_again(
    client: Client, server_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [turn("post_notice", "first"), turn("post_notice", "second"), turn(None)]
    s = Scenario(tmp_path, server_address, turns)
    monkeypatch.setenv("KEEL_TEST_BOARD", str(s.board.path))
    s.hold.touch()
    agent = s.start_agent()
    async with s.worker("a") as first:
        await s.kill_when_arrived(first, "post_notice", 1)
    async with s.worker("b") as second:
        waiting = await waiting_call(client, s.workflow_id, 1)
        # The replacement worker has had the run for a while: it did not send it again.
        await asyncio.sleep(3)
        assert len(s.board.arrivals("post_notice")) == 1
        listed, shown = await asyncio.gather(s.listed(), s.cli("reconcile", s.workflow_id))
        no_call, no_run = await asyncio.gather(
            s.cli("reconcile", s.workflow_id, "--call", "3", "done"),
            s.cli("reconcile", "--call", "1", "done"),
        )
        done = await s.cli("reconcile", s.workflow_id, "--call", "1", "done", "--by", "ops")
        again = await s.cli("reconcile", s.workflow_id, "--call", "1", "retry")
        await s.kill_when_arrived(second, "post_notice", 2)
    s.hold.unlink()
    async with s.worker("c"):
        await waiting_call(client, s.workflow_id, 2)
        undone = await s.cli("reconcile", s.workflow_id, "--call", "2", "undo")
        ran = await agent
    assert waiting["tool"] == "post_notice"
    assert waiting["arguments"] == {"text": "first"}
    assert listed.code == 0, listed.stderr
    assert f"{s.workflow_id}  call 1: post_notice" in listed.stdout, listed.stderr
    assert f"client.py reconcile {s.workflow_id} --call 1 done|retry|undo" in listed.stdout
    assert "needs_reconciliation" in shown.stdout, shown.stderr
    for refused in (no_call, no_run, again):
        assert refused.code == 2, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "no at-most-once call 3 in this run" in no_call.stderr
    assert "call 1 (post_notice) is done, not waiting for reconciliation" in again.stderr
    assert done.code == 0, done.stderr
    assert undone.code == 0, undone.stderr
    assert ran.code == 0, ran.stderr
    # Each call arrived once, each on the worker that was killed under it; the one
    # undone at the operator's word was retracted by its key, once.
    arrivals = s.board.arrivals("post_notice")
    assert [a[0] for a in arrivals] == ["first", "second"]
    assert arrivals[0][2] == first.pid
    assert arrivals[1][2] == second.pid
    result = await client.get_workflow_handle(s.workflow_id, result_type=AgentResult).result()
    assert [(c.call, c.status, c.resolutions) for c in result.side_effects] == [
        (1, "done", ["done"]),
        (2, "undone", ["undo"]),
    ]
    assert result.side_effects[0].by == "ops"
    assert s.board.rows("SELECT key FROM retractions") == [(result.side_effects[1].key,)]


@pytest.mark.parametrize("tool", ["post_keyed_notice", "post_header_notice"])
async def test_kill_9_mid_call_of_a_keyed_tool_sends_the_same_key_and_applies_once(
    client: Client,
    server_address: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tool: str,
) -> None:
    """`post_keyed_notice` (a Python tool) takes the key as an argument;
    `post_header_notice`, on the board's MCP server over streamable HTTP in a process of
    its own, in its request's Idempotency-Key header. The model sees neither."""
    monkeypatch.setenv("KEEL_TEST_BOARD", str(tmp_path / "board" / "board.db"))
    monkeypatch.setenv("MCP_TEST_TOKEN", BOARD_TOKEN)
    with http_server(BOARD_TOKEN) as url:
        s = Scenario(tmp_path, server_address, [turn(tool, "keyed"), turn(None)], board_url=url)
        s.hold.touch()
        agent = s.start_agent()
        async with s.worker("a") as first:
            await s.kill_when_arrived(first, tool, 1)
        s.hold.unlink()
        async with s.worker("b"):
            ran = await agent
    assert ran.code == 0, ran.stderr
    arrivals = s.board.arrivals(tool)
    # The server saw the call twice, under one key derived from the run and the step,
    # and applied it once; the run needed no operator.
    assert len(arrivals) == 2
    assert arrivals[0][1] == arrivals[1][1]
    assert arrivals[0][1] == f"{s.workflow_id}:turn-1:{tool}"
    assert s.board.rows("SELECT text FROM notices") == [("keyed",)]
    result = await client.get_workflow_handle(s.workflow_id, result_type=AgentResult).result()
    assert result.side_effects == []


def test_a_reconciliation_for_another_or_a_settled_call_is_refused_with_its_reason() -> None:
    calls = [
        SideEffectCall(call=1, tool="post_notice", key="run:turn-1:post_notice", status="done"),
        SideEffectCall(
            call=2, tool="post_notice", key="run:turn-2:post_notice",
            status="needs_reconciliation",
        ),
    ]  # fmt: skip

    def refused(call: int) -> str | None:
        return reconcile_refusal(calls, Reconciliation(call=call, resolution="done"))

    assert refused(2) is None
    assert refused(1) == "call 1 (post_notice) is done, not waiting for reconciliation"
    assert "no at-most-once call 3 in this run (it has 2" in str(refused(3))


def keyed_contracts(tmp_path: Path, tools: str) -> Path:
    contracts = write_contracts(tmp_path)
    with (contracts / "tools.toml").open("a") as file:
        file.write(tools)
    return contracts


def test_the_key_argument_is_keels_to_fill_and_hidden_from_the_model(tmp_path: Path) -> None:
    snapshot = load_contracts(write_contracts(tmp_path))
    keyed = snapshot.tools["post_keyed_notice"]
    assert keyed.key_argument == "key"
    assert not keyed.at_most_once
    assert "key" not in keyed.arguments["properties"]
    assert "key" not in keyed.arguments.get("required", [])
    assert snapshot.tools["post_notice"].at_most_once
    # Built-in side effects send their key as a header, whatever an old snapshot says.
    assert not snapshot.tools["create_ticket"].at_most_once


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ('idempotency_key = "argument:nope"', "the tool takes no argument 'nope'"),
        ('idempotency_key = "header:Idempotency-Key"', "a Python tool takes its key as an"),
        ('idempotency_key = "header:Bad Header"', "'Bad Header' is not an HTTP header name"),
        ('idempotency_key = "key"', "is not written argument:<name> or header:<name>"),
    ],
)
def test_a_key_place_the_tool_cannot_take_is_refused_when_the_contracts_load(
    tmp_path: Path, table: str, complaint: str
) -> None:
    tools = f"""
[tools.post_bad]
python = "tests.fixtures.side_effect_tools:post_keyed_notice"
side_effect = true
compensation = "cancel_ticket"
{table}
"""
    with pytest.raises(Exception, match=re.escape(complaint)):
        load_contracts(keyed_contracts(tmp_path, tools))


def test_a_key_header_on_a_stdio_server_is_refused_when_the_contracts_load(
    tmp_path: Path,
) -> None:
    """mcp-server-time over stdio: a pipe has no headers to carry the key in."""
    tools = f"""{TIME_SERVER}
[tools.post_bad]
server = "time"
server_tool = "get_current_time"
side_effect = true
compensation = "retract_notice"
idempotency_key = "header:Idempotency-Key"
"""
    with pytest.raises(ContractError) as refused:
        load_contracts(keyed_contracts(tmp_path, tools))
    assert str(refused.value).endswith(
        "[tools.post_bad] idempotency_key: server 'time' is a command (stdio), whose calls"
        " carry no headers; take the key as an argument (argument:<name>)"
    )


async def test_a_lost_outcome_is_sent_again_only_at_the_operators_word(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process workers; the outcome is lost to the call's own 1 s limit (it hangs)."""
    async with held_herald(client, tmp_path, monkeypatch, "once more") as (board, handle):
        workflow_id = handle.id
        waiting = await waiting_call(client, workflow_id, 1)
        details = await current_details(client, workflow_id)
        await asyncio.sleep(2)  # two more of its limits: still one send
        sends_while_waiting = len(board.arrivals("post_notice"))
        (tmp_path / "hold").unlink()
        retry = Reconciliation(call=1, resolution="retry", by="ops")
        resolved = await handle.execute_update("reconcile_call", retry, result_type=SideEffectCall)
        result = await handle.result()
        details_after = await current_details(client, workflow_id)
    assert "timed out" in str(waiting["error"]).lower() or "timeout" in str(waiting["error"])
    assert "needs reconciliation" in details
    assert f"client.py reconcile {workflow_id} --call 1 done|retry|undo" in details
    assert sends_while_waiting == 1
    assert resolved.status == "needs_reconciliation"  # as it was when the answer came
    assert [a[0] for a in board.arrivals("post_notice")] == ["once more", "once more"]
    assert [(c.status, c.attempts, c.resolutions) for c in result.side_effects] == [
        ("done", 2, ["retry"])
    ]
    assert details_after == ""


async def test_reconcile_of_a_run_that_is_not_there_is_one_line_exit_2(
    server_address: str,
) -> None:
    missing = await run_script(
        "client.py",
        "--address",
        server_address,
        "reconcile",
        "agent-nobody-1",
        "--call",
        "1",
        "done",
    )
    assert missing.code == 2, missing.stderr
    assert missing.stderr.strip() == "error: no run 'agent-nobody-1'"


async def test_a_cancel_while_a_call_waits_undoes_it_by_its_key_and_sends_nothing(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with held_herald(client, tmp_path, monkeypatch, "cancelled") as (board, handle):
        waiting = await waiting_call(client, handle.id, 1)
        (tmp_path / "hold").unlink()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert len(board.arrivals("post_notice")) == 1
    assert board.rows("SELECT key FROM retractions") == [(f"{waiting['key']}",)]


async def test_kill_9_after_the_ticket_service_committed_retries_under_its_key_and_opens_one(
    client: Client, server_address: str, tmp_path: Path
) -> None:
    """The built-in create_ticket against the real ticket service: the worker dies after the
    service committed and before its answer came; the retry is answered from the key."""
    service = TicketService(tmp_path / "tickets.db")
    service.start()
    try:
        service.fault("create_ticket", after_commit_ms=30_000)  # the first answer is late
        settings = worker_settings(tickets_url=service.url)
        scripts = tmp_path / "scripts"
        scripts.mkdir()
        script = {
            "incident_turn": [
                {"thought": "Open a ticket.", "tool": "create_ticket",
                 "arguments": {"title": "Checkout returns HTTP 500", "severity": "high"}},
                {"thought": "Done.", "tool": "finish", "arguments": {}},
            ],
            "incident_final": [{"summary": "Opened one ticket.", "passage_ids": []}],
        }  # fmt: skip
        (scripts / "responder.json").write_text(json.dumps(script))
        env = {
            "KEEL_TASK_QUEUE": settings.task_queue,
            "KEEL_LLM_TASK_QUEUE": settings.llm_task_queue,
        }
        request_id = new_id("responder")
        workflow_id = f"agent-{request_id}"
        agent = asyncio.create_task(run_script(
            "client.py", "--address", server_address, "agent", "incident_responder",
            "Checkout is failing", "--provider", "scripted", "--model", "responder",
            "--request-id", request_id, env=env,
        ))  # fmt: skip
        args = ("--scripted-dir", str(scripts))
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with worker_process(server_address, settings, tmp_path / "a", extra_args=args) as a:
            for _ in range(600):
                if service.query("SELECT COUNT(*) FROM tickets")[0][0]:
                    break
                await asyncio.sleep(0.1)
            a.kill()  # committed, its answer not yet sent
            await a.wait()
        log = tmp_path / "b" / "worker.log"
        async with worker_process(
            server_address, settings, tmp_path / "b", extra_args=args, log_file=log
        ):
            ran = await agent
        assert ran.code == 0, ran.stderr
        tickets = service.query("SELECT id, status FROM tickets")
        keys = service.query("SELECT key FROM idempotency_keys WHERE route = 'create_ticket'")
    finally:
        service.stop()
    # One ticket, under one key derived from the run and the step; the retry was answered
    # with the stored response (the service's Idempotent-Replayed header).
    assert len(tickets) == 1
    assert keys == [(f"{workflow_id}:turn-1:create_ticket",)]
    calls = [json.loads(line) for line in log.read_text().splitlines() if '"tickets.call"' in line]
    assert [(c["key"], c["replayed"], c["attempt"]) for c in calls] == [(keys[0][0], True, 2)]
