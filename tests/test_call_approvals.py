"""A tool call that needs approval: bound to its arguments, decided once, by the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from harness.testing.cli import cli_env
from harness.testing.contracts import agent_table, contracts_with_tables
from harness.testing.processes import Completed, run_script, worker_process
from harness.testing.stack import SCRIPTED_DIR, new_id, waiting_in_progress, worker_settings
from keel.payloads.agents import AgentResult
from keel.payloads.approvals import CallDecision, DecidedCall, PendingCall, call_digest, refusal

TOOLS = """
[tools.record_note]
python = "tests.fixtures.python_tools:record_note"
approval = true
approval_timeout_seconds = {timeout}
approval_default = "reject"
"""
AGENT = agent_table(
    "notary",
    "Records release notes, each one approved by a person.",
    ["record_note"],
    max_turns=3,
)


def turn(text: str | None) -> dict[str, object]:
    if text is None:
        return {"thought": "done", "tool": "finish", "arguments": {}}
    return {"thought": "record it", "tool": "record_note", "arguments": {"text": text}}


def setup_folders(tmp_path: Path, timeout: float) -> tuple[Path, Path]:
    contracts = contracts_with_tables(tmp_path / "contracts", TOOLS.format(timeout=timeout), AGENT)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    base = json.loads((SCRIPTED_DIR / "ask_everything.json").read_text())
    base["researcher_turn"] = [turn("release 2.4"), turn("release 2.5"), turn(None)]
    (scripts / "notary.json").write_text(json.dumps(base))
    return contracts, scripts


async def pending(client: Client, workflow_id: str, call: int) -> dict[str, object]:
    """The run's progress once call `call` waits for a person."""
    return await waiting_in_progress(client, workflow_id, "pending_approval", call)


async def test_a_call_runs_once_approved_for_its_exact_arguments_and_its_deadline_rejects(
    client: Client, server_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.txt"
    monkeypatch.setenv("KEEL_TEST_NOTES", str(notes))
    contracts, scripts = setup_folders(tmp_path, timeout=20)
    settings = worker_settings()
    base = ["--address", server_address]
    env = cli_env(settings)
    request_id = new_id("notary")
    workflow_id = f"agent-{request_id}"
    args = ("--contracts-dir", str(contracts), "--scripted-dir", str(scripts))

    async def cli(*words: str) -> Completed:
        return await run_script("client.py", *base, *words, env=env)

    async with worker_process(server_address, settings, tmp_path, extra_args=args):
        agent = asyncio.create_task(
            run_script(
                "client.py",
                *base,
                "agent",
                "notary",
                "Record the release notes",
                "--provider",
                "scripted",
                "--model",
                "notary",
                "--request-id",
                request_id,
                env=env,
            )
        )
        first = await pending(client, workflow_id, 1)
        digest = str(first["digest"])
        other = call_digest("record_note", {"text": "release 9.9"})
        # At once, within the call's deadline: a listing and three decisions refused.
        listed, changed, wrong_call, no_digest = await asyncio.gather(
            cli("approvals"),
            cli("approve", workflow_id, "--call", "1", "--digest", other[:12]),
            cli("approve", workflow_id, "--call", "2", "--digest", digest[:12]),
            cli("approve", workflow_id, "--call", "1"),
        )
        approved = await cli("approve", workflow_id, "--call", "1", "--digest", digest[:12])
        again = await cli("approve", workflow_id, "--call", "1", "--digest", digest[:12])
        second = await pending(client, workflow_id, 2)  # nobody decides: the deadline rejects
        ran = await agent
        late = await cli("approve", workflow_id, "--call", "2", "--digest", str(second["digest"]))
    assert first["tool"] == "record_note"
    assert first["arguments"] == {"text": "release 2.4"}
    assert digest == call_digest("record_note", {"text": "release 2.4"})
    assert f"{workflow_id}  call 1: record_note" in listed.stdout
    assert '{"text": "release 2.4"}' in listed.stdout
    assert f"--call 1 --digest {digest[:12]}" in listed.stdout
    assert changed.code == 1
    assert "names other arguments" in changed.stderr
    assert wrong_call.code == 1
    assert "call 2 is not awaiting approval" in wrong_call.stderr
    assert no_digest.code == 2
    assert "needs --digest" in no_digest.stderr
    assert approved.code == 0, approved.stderr
    assert again.code == 1
    assert "already decided: approve by" in again.stderr
    assert late.code == 1  # after its deadline, and the run has ended since
    assert f"{workflow_id} has ended" in late.stderr
    for refused in (changed, wrong_call, no_digest, again, late):
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert ran.code == 0, ran.stderr
    # The approved call ran once; the rejected one never ran.
    assert notes.read_text().splitlines() == ["release 2.4"]
    result = await client.get_workflow_handle(workflow_id, result_type=AgentResult).result()
    assert [(a.call, a.decision, bool(a.by)) for a in result.approvals] == [
        (1, "approve", True),
        (2, "reject", False),
    ]
    assert any("not approved by its deadline" in o.text for o in result.observations)


def test_a_decision_twice_late_or_for_another_call_is_refused_with_its_reason() -> None:
    digest = call_digest("record_note", {"text": "release 2.4"})
    waiting = PendingCall(
        call=2, tool="record_note", arguments={"text": "release 2.4"}, digest=digest,
        deadline=datetime(2026, 12, 3, tzinfo=UTC), default="reject",
    )  # fmt: skip
    decided = [DecidedCall(call=1, tool="record_note", digest="0" * 64, decision="reject")]

    def decide(call: int, prefix: str) -> str | None:
        return refusal(waiting, decided, CallDecision(call=call, digest=prefix, decision="approve"))

    assert decide(2, digest[:8]) is None
    assert decide(2, digest.upper()[:12]) is None  # as typed, in capitals
    assert "already decided: reject by its deadline" in str(decide(1, "0" * 12))
    assert "call 3 is not awaiting approval; call 2 is" in str(decide(3, digest[:12]))
    assert "names other arguments" in str(decide(2, "f" * 12))
    late = refusal(None, decided, CallDecision(call=2, digest=digest, decision="approve"))
    assert late == "no call of this run awaits approval (asked for call 2)"
