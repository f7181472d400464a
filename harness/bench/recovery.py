"""4. Recovery: SIGKILL the orchestration worker mid-flow, restart it, time the resumption.

    python -m harness.bench --only recovery

The orchestration worker runs as `python worker.py --role orchestration`, the way
users run it; the model queue is served by this process, so the model call in flight
when the worker dies still finishes and is recorded. The flow is killed while it
waits on its write call; the clock starts when the new worker process is spawned
and stops at the first workflow task the flow completes after that: the worker has
started, fetched the history and replayed it. The report must equal the one of an
uninterrupted run (model latencies aside).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from harness.bench.common import (
    ROOT,
    Context,
    Section,
    bench_settings,
    ms,
    research_input,
    running_workers,
)
from keel.infra.settings import WorkerSettings
from keel.payloads.research import ResearchReport
from workflows.research import ResearchWorkflow

LATENCY_MS = 500
READY_LINE = b"worker.started"


class WorkerProcess:
    """worker.py in a child process, with its start-up time read from its log."""

    def __init__(self, ctx: Context, settings: WorkerSettings) -> None:
        self._args = [
            sys.executable,
            str(ROOT / "worker.py"),
            "--role",
            "orchestration",
            "--address",
            ctx.address,
            "--task-queue",
            settings.task_queue,
            "--llm-task-queue",
            settings.llm_task_queue,
            "--documents-db",
            str(ctx.workdir / "documents.db"),
            "--metrics-port",
            "0",
            "--log-format",
            "json",
        ]
        self._process: asyncio.subprocess.Process | None = None
        self._drainer: asyncio.Task[None] | None = None

    async def start(self) -> float:
        """Spawn it; returns seconds until it logged that its workers run."""
        started = time.perf_counter()
        self._process = await asyncio.create_subprocess_exec(
            *self._args,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "KEEL_LOG_LEVEL": "INFO"},
        )
        assert self._process.stderr is not None
        while True:
            line = await asyncio.wait_for(self._process.stderr.readline(), timeout=60)
            if not line:
                raise RuntimeError("worker.py exited before it started")
            if READY_LINE in line:
                break
        self._drainer = asyncio.create_task(self._drain())
        return time.perf_counter() - started

    async def _drain(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        while await self._process.stderr.readline():
            pass

    async def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        await self._process.wait()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            await self._process.wait()


async def _wait_for_node(handle: WorkflowHandle[Any, ResearchReport], node: str) -> None:
    for _ in range(2000):
        progress = await handle.query(ResearchWorkflow.progress)
        if progress.node == node:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"the flow never reached {node}")


async def _first_task_after(handle: WorkflowHandle[Any, ResearchReport], after: float) -> float:
    """Wall-clock time of the first workflow task completed after `after` (epoch s)."""
    for _ in range(6000):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                at = event.event_time.ToNanoseconds() / 1e9
                if at > after:
                    return at
        await asyncio.sleep(0.01)
    raise TimeoutError("the flow did not move on after the restart")


def _comparable(report: ResearchReport) -> dict[str, Any]:
    """The report without what timing changes: model latencies."""
    return report.model_dump(exclude={"usage": {"latency_ms"}})


async def measure(ctx: Context) -> Section:
    settings = bench_settings(ctx.scripts, llm_concurrency=4, worker_role="llm")
    (Path(ctx.workdir) / "documents.db").stat()  # the store the subprocess searches
    worker = WorkerProcess(ctx, settings)
    data: dict[str, Any] = {"model_latency_ms": LATENCY_MS}
    async with running_workers(ctx.client, ctx.store, settings):
        try:
            data["cold_start_ms"] = ms(await worker.start())
            reference = await ctx.client.execute_workflow(
                ResearchWorkflow.run,
                research_input(LATENCY_MS, settings),
                id=f"bench-recovery-ref-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
            )
            handle = await ctx.client.start_workflow(
                ResearchWorkflow.run,
                research_input(LATENCY_MS, settings),
                id=f"bench-recovery-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
            )
            await _wait_for_node(handle, "write")
            await asyncio.sleep(0.1)  # the write call is running on the model queue
            await worker.kill()
            restarted_at = time.time()
            data["restart_to_ready_ms"] = ms(await worker.start())
            moved_on = await _first_task_after(handle, restarted_at)
            data["restart_to_progress_ms"] = ms(moved_on - restarted_at)
            report = await handle.result()
            data["same_result"] = _comparable(report) == _comparable(reference)
            data["visits"] = [v.node for v in report.visits]
        finally:
            await worker.stop()
    return Section(
        name="recovery",
        title="4. Recovery: orchestration worker killed (SIGKILL) during a model call",
        headers=["worker start ms", "restart to flow moving on ms", "same result"],
        rows=[
            [
                f"{data['restart_to_ready_ms']:.0f}",
                f"{data['restart_to_progress_ms']:.0f}",
                "yes" if data["same_result"] else "NO",
            ]
        ],
        data=data,
    )
