"""Contract edits reach runs started after them, with no worker restart; a broken edit
is refused in one line and the last good contracts stay in force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from activities.contracts.loader import CONTRACTS_DIR
from activities.contracts.source import ContractSource
from harness.testing.cli import cli_env
from harness.testing.processes import run_script, worker_process
from harness.testing.stack import new_id, worker_settings
from keel.payloads.agents import AgentResult

TASK = "How do idempotency keys make retries safe?"


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    return folder


def researcher_turns(folder: Path, turns: str) -> None:
    text = (folder / "agents.toml").read_text()
    start = text.index("[agents.researcher]")
    at = text.index("max_turns = ", start)
    end = text.index("\n", at)
    (folder / "agents.toml").write_text(f"{text[:at]}max_turns = {turns}{text[end:]}")


def test_an_edit_is_read_at_the_next_run_and_a_broken_one_keeps_the_last_good(
    contracts_copy: Path,
) -> None:
    source = ContractSource(contracts_copy)
    first = source.snapshot()
    assert first.agents["researcher"].max_turns == 4
    researcher_turns(contracts_copy, "1")
    edited = source.snapshot()
    assert edited.agents["researcher"].max_turns == 1
    assert edited.versions["agents.toml"] != first.versions["agents.toml"]
    researcher_turns(contracts_copy, "0")
    with capture_logs() as logs:
        kept = source.snapshot()
        source.snapshot()  # the same broken file is reported once, not at every run
    assert kept == edited
    refused = [e for e in logs if e["event"] == "contracts.reload_refused"]
    assert len(refused) == 1
    assert "agents.toml [agents.researcher]: max_turns" in refused[0]["error"]
    assert "\n" not in refused[0]["error"]
    researcher_turns(contracts_copy, "2")
    assert source.snapshot().agents["researcher"].max_turns == 2


async def agent_run(address: str, queues: dict[str, str], request_id: str) -> AgentResult:
    ran = await run_script(
        "client.py", "--address", address, "agent", "researcher", TASK, "--request-id",
        request_id, "--provider", "scripted", "--model", "ask_everything", "--json", env=queues,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    return AgentResult.model_validate_json(ran.stdout)


async def test_a_running_worker_applies_an_edit_to_new_runs_and_refuses_a_broken_one(
    server_address: str, contracts_copy: Path, tmp_path: Path
) -> None:
    settings = worker_settings()
    queues = cli_env(settings)
    log = tmp_path / "worker.log"
    args = ("--contracts-dir", str(contracts_copy))
    async with worker_process(server_address, settings, tmp_path, extra_args=args, log_file=log):
        before = await agent_run(server_address, queues, new_id("reload"))
        researcher_turns(contracts_copy, "1")
        after = await agent_run(server_address, queues, new_id("reload"))
        researcher_turns(contracts_copy, '"one"')
        broken = await agent_run(server_address, queues, new_id("reload"))
        checked = await run_script("client.py", "contracts", "check", "--dir", str(contracts_copy))
    assert before.turns == 2  # the script's researcher turns twice, within max_turns = 4
    assert after.turns == 1  # the edit, with the same worker process
    assert broken.turns == 1  # the last good contracts
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events.count("worker.started") == 1  # never restarted
    assert "contracts.reloaded" in events
    [refused] = [line for line in lines if line["event"] == "contracts.reload_refused"]
    assert "agents.toml [agents.researcher]: max_turns" in refused["error"]
    # The check names the same problem, as bad input: one line, exit 2.
    assert checked.code == 2
    assert "agents.toml [agents.researcher]: max_turns" in checked.stderr
    assert len(checked.stderr.strip().splitlines()) == 1


async def test_check_refuses_a_tool_with_no_implementation_as_the_worker_does(
    contracts_copy: Path,
) -> None:
    with (contracts_copy / "tools.toml").open("a") as tools:
        tools.write(
            '\n[tools.fetch_url]\ndescription = "Fetches a page."\ncapability = "fetch"\n'
            'arguments = { type = "object" }\n'
        )
    checked = await run_script("client.py", "contracts", "check", "--dir", str(contracts_copy))
    worker = await run_script(
        "worker.py", "--address", "127.0.0.1:1", "--metrics-port", "0",
        "--contracts-dir", str(contracts_copy),
    )  # fmt: skip
    message = "tools.toml [tools.fetch_url]: no implementation of tool 'fetch_url'"
    assert checked.code == 2
    assert message in checked.stderr
    assert worker.code == 1
    assert message in worker.stderr
