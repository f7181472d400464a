"""`python -m harness.soak`: a 100-call conversation near 200k tokens and a 1,000-turn agent loop.

    python -m harness.soak                          # both loads, the local payload store
    python -m harness.soak --store off --calls 30   # the same conversation, every payload inline
    python -m harness.soak --json soak.json

Starts a dev server persisted to SQLite in a temporary folder and the project's
workers (scripted model), runs both loads, prints every run's history figures and
exits 1 if any run broke a limit: history under 2 MB and 10,240 events, no payload
over 256 KiB, none terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.prompts import PromptBook
from harness.soak.run import SCRIPTS, agent_loop, conversation, store_figures, violations
from harness.soak.workflows import SoakConversationWorkflow
from keel.infra.binaries import DEV_SERVER_ARGS, temporal_cli
from keel.infra.codec import data_converter
from keel.infra.keys import CodecSettings
from keel.infra.payload_store import PayloadStoreSettings
from keel.infra.settings import WorkerSettings
from worker import build_workers
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--calls", type=int, default=100, help="conversation model calls")
    parser.add_argument("--message-chars", type=int, default=8_000, help="each user message")
    parser.add_argument("--turns", type=int, default=1_000, help="agent loop turns, 0 to skip")
    parser.add_argument("--store", choices=["local", "off"], default="local")
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    return parser.parse_args(argv)


async def soak(
    workdir: Path, calls: int, chars: int, turns: int, store: Literal["local", "off"]
) -> dict[str, Any]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    converter = data_converter(
        CodecSettings(codec_keys=SecretStr(f"soak:{key}")),
        PayloadStoreSettings(payload_store=store, payload_store_dir=workdir / "payloads"),
    )
    documents = DocumentStore(workdir / "documents.db")
    documents.ingest_folder(ROOT / "corpus" / "demo", "demo")
    suffix = uuid.uuid4().hex[:8]
    settings = WorkerSettings(
        task_queue=f"soak-{suffix}",
        llm_task_queue=f"soak-llm-{suffix}",
        scripted_dir=SCRIPTS,
        metrics_port=0,
        log_level="WARNING",
        graceful_shutdown_seconds=1,
    )
    marker = f"soak-marker-{secrets.token_hex(6)}"
    figures: dict[str, Any] = {"store": store}
    async with AsyncExitStack() as stack:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_cli()),
            dev_server_database_filename=str(workdir / "temporal.db"),
            search_attributes=list(ALL_SEARCH_ATTRIBUTES),
            data_converter=converter,
            dev_server_log_level="error",
            dev_server_extra_args=list(DEV_SERVER_ARGS),
        )
        stack.push_async_callback(env.shutdown)
        client = env.client
        gateway = build_gateway(settings, PromptBook.load())
        workers = build_workers(
            client, settings, gateway, documents, extra_workflows=[SoakConversationWorkflow]
        )
        for worker in workers:
            await stack.enter_async_context(worker)
        queues = (settings.task_queue, settings.llm_task_queue)
        started = time.monotonic()
        figures["conversation"] = await conversation(client, *queues, calls, chars, marker)
        figures["conversation"]["seconds"] = round(time.monotonic() - started, 1)
        if turns:
            started = time.monotonic()
            figures["agent"] = await agent_loop(client, *queues, turns)
            figures["agent"]["seconds"] = round(time.monotonic() - started, 1)
    figures["payload_store"] = store_figures(workdir / "payloads", marker)
    return figures


def report(figures: dict[str, Any]) -> list[str]:
    """Prints each load's runs; returns every limit broken."""
    broken: list[str] = []
    for name in ("conversation", "agent"):
        load = figures.get(name)
        if load is None:
            continue
        print(f"{name}: {load['workflow_id']} in {load['seconds']} s")
        if "failure" in load:
            print(f"  ended by the server: {load['failure']}")
        for key in ("calls", "transcript_chars", "last_tokens_in", "turns", "continued_runs"):
            if key in load:
                print(f"  {key}: {load[key]:,}")
        for run in load["runs"]:
            print(
                f"  run {run['run_id'][:8]} {run['status']}: {run['events']:,} events,"
                f" {run['bytes']:,} bytes, largest payload {run['largest_payload']:,},"
                f" {run['references']} stored ({run['stored_bytes']:,} bytes)"
            )
        broken += violations(load)
    store = figures["payload_store"]
    print(
        f"payload store ({figures['store']}): {store['files']} files, {store['bytes']:,} bytes,"
        f" plaintext found: {store['plaintext_found']}"
    )
    if store["plaintext_found"]:
        broken.append("the payload store holds plaintext")
    return broken


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="keel-soak-") as folder:
        figures = asyncio.run(
            soak(Path(folder), args.calls, args.message_chars, args.turns, args.store)
        )
    broken = report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for line in broken:
        print(f"limit broken: {line}", file=sys.stderr)
    print("every run within the limits" if not broken else f"{len(broken)} limit(s) broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
