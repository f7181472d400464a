"""worker.py as deployed: a process with JSON logs, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

from temporalio.client import Client

from models.documents import IngestRequest
from tests.conftest import (
    DEMO_CORPUS,
    ROOT,
    SCRIPTED_DIR,
    execute_scripted,
    new_id,
    worker_settings,
)
from workflows.ingest import IngestWorkflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_worker_runs_flows_logs_json_with_ids_serves_metrics_and_stops_on_sigterm(
    client: Client, server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    metrics_port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "worker.py"),
        "--address", server_address,
        "--task-queue", settings.task_queue,
        "--llm-task-queue", settings.llm_task_queue,
        "--documents-db", str(tmp_path / "docs.db"),
        "--scripted-dir", str(SCRIPTED_DIR),
        "--metrics-port", str(metrics_port),
        "--log-format", "json",
        cwd=ROOT,
        env={**os.environ, "KEEL_GRACEFUL_SHUTDOWN_SECONDS": "2"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        ingest = await client.execute_workflow(
            IngestWorkflow.run,
            IngestRequest(path=str(DEMO_CORPUS), namespace="demo"),
            id=new_id("ingest"),
            task_queue=settings.task_queue,
        )
        assert ingest.documents == len(list(DEMO_CORPUS.glob("*.md")))
        workflow_id, report = await execute_scripted(
            client, settings, "refine_and_revise", "How do idempotency keys make retries safe?"
        )
        assert report.review_passed
        metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{metrics_port}/metrics")
        assert "temporal_activity_execution_latency" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    events = [r["event"] for r in records]
    assert events[0] == "worker.started"
    assert events[-1] == "worker.stopped"
    llm_lines = [r for r in records if r["event"] == "llm.complete"]
    assert len(llm_lines) == report.usage.calls
    for line in llm_lines:
        assert line["workflow_id"] == workflow_id
        assert line["activity"] == "complete_llm"
        assert line["attempt"] == 1
        assert line["run_id"]
