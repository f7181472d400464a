"""examples/: each runs end to end as its README says, on a real worker process."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer

from activities.contracts.loader import CONTRACTS_DIR
from examples.world_clock.flow import WorldClockFlow
from harness.testing.processes import run_script, worker_process
from harness.testing.stack import ROOT, new_id, worker_settings
from worker import WORKFLOWS

EXAMPLE = ROOT / "examples" / "world_clock"


def example_contracts(folder: Path) -> Path:
    """contracts/ copied, the example's tables appended, as its README does."""
    shutil.copytree(CONTRACTS_DIR, folder)
    for name in ("tools.toml", "agents.toml"):
        with (folder / name).open("a") as contract:
            contract.write((EXAMPLE / name).read_text())
    return folder


async def test_the_world_clock_example_reads_an_mcp_servers_clock_and_a_python_tool(
    client: Client, server_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's worker runs with the venv's scripts on PATH (mcp-server-time).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    settings = worker_settings()
    contracts = example_contracts(tmp_path / "contracts")
    workflow_id = f"clock-{new_id('example')}"
    args = (
        "--contracts-dir", str(contracts), "--flow", "examples.world_clock.flow:WorldClockFlow",
    )  # fmt: skip
    zones = ["Europe/Paris", "Asia/Seoul", "Nowhere/Atlantis"]
    async with worker_process(server_address, settings, tmp_path, extra_args=args):
        ran = await run_script(
            "client.py", "--address", server_address, "run", "WorldClockFlow",
            "--input", json.dumps({"timezones": zones}), "--id", workflow_id, "--wait",
            env={"KEEL_TASK_QUEUE": settings.task_queue},
        )  # fmt: skip
    assert ran.code == 0, ran.stderr
    report = json.loads(ran.stdout[ran.stdout.index("\n") + 1 :])
    assert len(report["lines"]) == 2
    for zone, line in zip(zones, report["lines"], strict=False):
        assert re.fullmatch(
            rf"{zone}: \d\d:\d\d, (office hours|outside office hours) \(09:00-17:00\)", line
        ), line
    # An unknown zone is the server's own error (isError), an answer, not a crash.
    assert len(report["refused"]) == 1
    assert "Nowhere/Atlantis" in report["refused"][0]
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    summaries = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert summaries == ["load_contracts"] + ["call_tool"] * 5  # 3 clocks, 2 verdicts
    replayer = Replayer(
        workflows=[*WORKFLOWS, WorldClockFlow], data_converter=client.data_converter
    )
    await replayer.replay_workflow(history)
