"""The project's scripts as subprocesses, without blocking the test's event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from harness.chaos.processes import ScriptResult
from harness.chaos.processes import run_script as run_command
from harness.testing.stack import ROOT, SCRIPTED_DIR
from keel.infra.settings import WorkerSettings

Completed = ScriptResult


async def run_script(
    script: str, *args: str, env: dict[str, str] | None = None, limit_seconds: float = 120
) -> Completed:
    """A script of the project (`client.py`) or a module run with -m (`harness.soak`)."""
    target = [str(ROOT / script)] if script.endswith(".py") else ["-m", script]
    return await run_command(*target, *args, env=env, limit_seconds=limit_seconds)


@asynccontextmanager
async def worker_process(
    address: str,
    settings: WorkerSettings,
    data_dir: Path,
    *,
    metrics_port: int = 0,
    capture_logs: bool = False,
    extra_args: tuple[str, ...] = (),
    log_file: Path | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """worker.py as deployed, JSON logs on stderr (or in `log_file`); stopped with SIGTERM
    unless already dead."""
    log = log_file.open("ab") if log_file is not None else None
    stderr: IO[bytes] | int = (
        asyncio.subprocess.PIPE if capture_logs else asyncio.subprocess.DEVNULL
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "worker.py"),
        "--address", address,
        "--task-queue", settings.task_queue,
        "--llm-task-queue", settings.llm_task_queue,
        "--tickets-url", settings.tickets_url,
        "--scripted-dir", str(SCRIPTED_DIR),
        "--documents-db", str(data_dir / "documents.db"),
        "--metrics-port", str(metrics_port),
        "--log-format", "json",
        *extra_args,
        cwd=ROOT,
        env={**os.environ, "KEEL_GRACEFUL_SHUTDOWN_SECONDS": "2"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log if log is not None else stderr,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
        if log is not None:
            log.close()
