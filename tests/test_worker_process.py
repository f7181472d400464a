"""worker.py as deployed: a process with JSON logs, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import urllib.request
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from harness.testing.ports import free_port
from harness.testing.processes import run_script, worker_process
from harness.testing.stack import (
    DEMO_CORPUS,
    execute_scripted,
    new_id,
    worker_settings,
)
from keel.infra.binaries import temporal_cli
from keel.payloads.documents import IngestRequest
from workflows.ingest import IngestWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_worker_runs_flows_logs_json_with_ids_serves_metrics_and_stops_on_sigterm(
    client: Client, server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    metrics_port = free_port()
    async with worker_process(
        server_address, settings, tmp_path, metrics_port=metrics_port, capture_logs=True
    ) as process:
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


async def test_a_taken_metrics_port_is_one_clear_line(server_address: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_script(
            "worker.py", "--address", server_address, "--metrics-port", str(port)
        )
    assert result.code == 1
    assert f"cannot serve metrics on port {port}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_worker_started_before_its_server_waits_for_it(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    settings = worker_settings()
    async with worker_process(address, settings, tmp_path, capture_logs=True) as process:
        assert process.stderr is not None
        events: list[str] = []
        async with asyncio.timeout(60):  # one connect attempt fails (5 s), on a slow machine too
            while "worker.waiting_for_temporal" not in events:
                line = await process.stderr.readline()
                assert line, "the worker exited"
                events.append(json.loads(line).get("event", ""))
        assert process.returncode is None  # still waiting, not gone
        server = await WorkflowEnvironment.start_local(
            port=port,
            dev_server_existing_path=str(temporal_cli()),
            search_attributes=list(ALL_SEARCH_ATTRIBUTES),
            dev_server_log_level="error",
        )
        try:
            async with asyncio.timeout(60):
                while "worker.started" not in events:
                    line = await process.stderr.readline()
                    assert line, "the worker exited"
                    events.append(json.loads(line).get("event", ""))
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
            await server.shutdown()
    assert "worker.waiting_for_temporal" in events


async def test_a_worker_gives_up_on_an_absent_server_after_its_wait(tmp_path: Path) -> None:
    result = await run_script(
        "worker.py", "--address", f"127.0.0.1:{free_port()}",
        env={"KEEL_CONNECT_WAIT_SECONDS": "2", "KEEL_METRICS_PORT": "0"}, limit_seconds=60,
    )  # fmt: skip
    assert result.code == 1
    assert "cannot reach Temporal at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
