"""client.py as tests run it: the queues it talks to, the scripted model, the team's script."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.processes import run_script
from harness.testing.stack import SCRIPTED_DIR, running_workers
from keel.infra.settings import WorkerSettings

SCRIPTED = ["--provider", "scripted", "--model", "refine_and_revise"]
# The request `ask` routes to the team, on the team's script.
REQUEST = "Write a report on idempotency keys and circuit breakers"
# What `client.py` needs to reach a test's workers: its leading arguments, its environment.
CliTarget = tuple[list[str], dict[str, str]]


def cli_env(settings: WorkerSettings) -> dict[str, str]:
    """The environment that points client.py at the task queues of `settings`."""
    return {
        "KEEL_TASK_QUEUE": settings.task_queue,
        "KEEL_LLM_TASK_QUEUE": settings.llm_task_queue,
    }


def scripts_folder(tmp_path: Path, **changes: object) -> Path:
    """A copy of the team's script the test may change, as a model worker's update would."""
    folder = tmp_path / "scripts"
    folder.mkdir(exist_ok=True)
    script = json.loads((SCRIPTED_DIR / "ask_everything.json").read_text())
    (folder / "team.json").write_text(json.dumps(script | changes))
    return folder


async def refused(server_address: str, *args: str) -> str:
    """client.py's stderr for arguments it must refuse: exit 2, one line, the cause."""
    result = await run_script("client.py", "--address", server_address, *args)
    assert result.code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@asynccontextmanager
async def cli_workers(
    client: Client,
    store: DocumentStore,
    server_address: str,
    settings: WorkerSettings | None = None,
) -> AsyncIterator[CliTarget]:
    """Workers of their own, and the arguments and environment that point client.py at them."""
    async with running_workers(client, store, settings) as running:
        yield ["--address", server_address], cli_env(running)
