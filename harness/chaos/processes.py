"""The real processes the suite breaks: dev server, workers, ticket service.

Each is the project's own entry point as deployed (`devserver.py`, `worker.py`,
`python -m keel.services.ticket_service --faults`), started as a subprocess so that a kill -9
is a real crash and a server stop loses every open connection.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ScriptResult:
    code: int
    stdout: str
    stderr: str


async def run_script(
    *args: str, env: dict[str, str] | None = None, limit_seconds: float = 120
) -> ScriptResult:
    """A project script (`client.py ...`, `devserver.py ...`) with this interpreter."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return ScriptResult(process.returncode or 0, out.decode(), err.decode())


class DevServer:
    """`devserver.py start|stop` on its own ports and data folder (SQLite persisted)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.ui_port = free_port()
        # One stop/start at a time: two overlapping faults must not race each other.
        self.lock = asyncio.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        return [
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
        ]

    async def start(self) -> None:
        result = await run_script("devserver.py", "start", *self._args())
        if result.code != 0:
            raise RuntimeError(f"dev server did not start: {result.stdout}{result.stderr}")

    async def stop(self) -> None:
        await run_script("devserver.py", "stop", *self._args())


@dataclass(frozen=True)
class WorkerConfig:
    address: str
    task_queue: str
    llm_task_queue: str
    tickets_url: str
    tickets_token: str
    openai_base_url: str
    documents_db: Path
    log_dir: Path
    provider_timeout_seconds: float


class WorkerProcess:
    """One `worker.py --role ...`; killed with SIGKILL and started again on cue."""

    def __init__(self, config: WorkerConfig, role: str) -> None:
        self.config = config
        self.role = role
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.lock = asyncio.Lock()

    @property
    def log_file(self) -> Path:
        return self.config.log_dir / f"worker-{self.role}.log"

    async def start(self) -> float:
        """Start and wait until it polls; returns the moment it logged `worker.started`."""
        c = self.config
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "worker.py"),
                "--address", c.address,
                "--role", self.role,
                "--task-queue", c.task_queue,
                "--llm-task-queue", c.llm_task_queue,
                "--tickets-url", c.tickets_url,
                "--openai-base-url", c.openai_base_url,
                "--documents-db", str(c.documents_db),
                "--metrics-port", "0",
                "--log-format", "json",
                cwd=ROOT,
                env={
                    **os.environ,
                    # The service's bearer token, from the environment as in a deployment.
                    "KEEL_TICKETS_TOKEN": c.tickets_token,
                    "KEEL_GRACEFUL_SHUTDOWN_SECONDS": "2",
                    "KEEL_PROVIDER_TIMEOUT_SECONDS": str(c.provider_timeout_seconds),
                },
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            text = self.log_file.read_bytes()[offset:].decode(errors="replace")
            if '"worker.started"' in text:
                return time.monotonic()
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.role} worker did not start; see {self.log_file}")

    async def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no chance to report anything."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()


class TicketServiceProcess:
    """`python -m keel.services.ticket_service --faults`; the checks read its SQLite file."""

    def __init__(self, db_path: Path, log_file: Path) -> None:
        self.db_path = db_path
        self.log_file = log_file
        self.port = free_port()
        # A token of its own for each suite run: the service refuses to start without one.
        self.token = secrets.token_urlsafe(24)
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "keel.services.ticket_service",
                "--port", str(self.port), "--db", str(self.db_path), "--faults",
                cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, "KEEL_TICKETS_TOKEN": self.token},
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_SECONDS
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                try:
                    if (await http.get(f"{self.url}/health", timeout=1)).status_code == 200:
                        return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError(f"ticket service did not start; see {self.log_file}")

    async def fault(self, route: str, **settings: Any) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.url}/_faults",
                json={"route": route, **settings},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            )
            response.raise_for_status()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)
