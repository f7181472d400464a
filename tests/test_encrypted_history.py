"""Restricted text never reaches the server in plaintext; keyholders still read it.

One stack as users run it (`devserver.py start --with-worker`, SQLite on disk, the
key it generates, its codec server), a restricted research run on the scripted
model over a document carrying a canary phrase, then the places an outsider would
look: the raw database and its WAL, the logs, `temporal workflow show` without a
codec; and the places a keyholder looks: the same command through the codec server
(with its bearer token), and the Web UI in a headless Chromium.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.documents.store import DocumentStore
from harness.testing.devstack import (
    CANARY,
    CANARY_DOC,
    Stack,
    devserver,
    run,
    show,
)
from harness.testing.ports import free_port
from harness.testing.stack import CORPORA, ROOT, new_id
from keel.infra.codec import KEY_ID
from keel.infra.keys import read_key_file
from keel.payloads.llm import ModelChoice
from keel.payloads.research import ResearchInput, ResearchReport
from workflows.research import ResearchWorkflow

CONTROL = "plaintext-control-phrase-9931"
TOKEN = "history-reader-token-0123456789"


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return Stack.fresh(tmp_path_factory.mktemp("encrypted-stack"))


@pytest.fixture(scope="module")
async def stack(stack_env: Stack) -> AsyncIterator[Stack]:
    started = await devserver(stack_env, "start", "--with-worker")
    try:
        assert started.code == 0, started.out + started.err
        assert "codec: generated key" in started.out
        assert "codec server: started (pid" in started.out
        yield stack_env
    finally:
        stopped = await devserver(stack_env, "stop")
        assert "codec server: stopped" in stopped.out, stopped.out


@dataclass(frozen=True)
class Restricted:
    workflow_id: str
    run_id: str
    report: ResearchReport


async def research(client: Client, question: str) -> tuple[str, str, ResearchReport]:
    workflow_id = new_id("research-canary")
    handle = await client.start_workflow(
        ResearchWorkflow.run,
        ResearchInput(
            question=question,
            namespace="postmortems",
            clearance="restricted",
            model=ModelChoice(provider="scripted", model="postmortem_lookup"),
        ),
        id=workflow_id,
        task_queue="research",
    )
    report = await handle.result()
    assert handle.result_run_id is not None
    return workflow_id, handle.result_run_id, report


@pytest.fixture(scope="module")
async def restricted(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Restricted:
    folder = tmp_path_factory.mktemp("canary-corpus")
    (folder / "canary-followup.md").write_text(CANARY_DOC, encoding="utf-8")
    documents = DocumentStore(stack.data / "documents.db")
    documents.ingest_folder(CORPORA["postmortems"], "postmortems")
    documents.ingest_folder(folder, "postmortems")
    client = await stack.client()
    workflow_id, run_id, report = await research(
        client, "What went wrong with Blueheron's ticket dedup?"
    )
    # The flow really carried the phrase: it is in the cited passages.
    assert any(CANARY in c.passage for c in report.citations), report.citations
    return Restricted(workflow_id, run_id, report)


def key_ids(node: Any) -> Iterator[str]:
    """The key id of every encrypted payload in a shown history."""
    if isinstance(node, dict):
        metadata = node.get("metadata")
        if isinstance(metadata, dict) and KEY_ID in metadata:
            yield base64.b64decode(metadata[KEY_ID]).decode()
        for value in node.values():
            yield from key_ids(value)
    elif isinstance(node, list):
        for value in node:
            yield from key_ids(value)


async def test_the_generated_key_is_private(stack: Stack) -> None:
    assert stat.S_IMODE(stack.key_file.stat().st_mode) == 0o600
    assert len(read_key_file(stack.key_file).ids()) == 1


async def test_no_restricted_text_in_the_database_its_wal_or_the_logs(
    stack: Stack, restricted: Restricted
) -> None:
    # Control: a payload written without the codec is found the same way.
    plain = await Client.connect(stack.address, data_converter=pydantic_data_converter)
    control = await plain.start_workflow(
        ResearchWorkflow.run,
        ResearchInput(question=CONTROL),
        id=new_id("plaintext-control"),
        task_queue="nobody-polls-this",
    )
    await control.terminate("control written")
    files = [stack.data / "temporal.db", stack.data / "temporal.db-wal"]
    stored = b"".join(path.read_bytes() for path in files if path.exists())
    assert CONTROL.encode() in stored
    assert CANARY.encode() not in stored
    for log in ("worker.log", "temporal.log", "codec.log"):
        assert CANARY not in (stack.data / log).read_text(errors="replace"), log


async def test_temporal_workflow_show_is_ciphertext_without_the_codec_server(
    stack: Stack, restricted: Restricted
) -> None:
    shown, texts = await show(stack, restricted.workflow_id)
    assert shown.code == 0, shown.err
    assert CANARY not in shown.out
    assert CANARY not in texts
    assert "binary/encrypted" in texts or "YmluYXJ5L2VuY3J5cHRlZA" in shown.out

    decoded, texts = await show(
        stack, restricted.workflow_id, "--codec-endpoint", f"http://127.0.0.1:{stack.codec_port}"
    )
    assert decoded.code == 0, decoded.err
    assert CANARY in texts


async def test_a_codec_server_with_a_token_decodes_only_for_its_bearer(
    stack: Stack, restricted: Restricted
) -> None:
    port = free_port()
    env = {
        **stack.env,
        "KEEL_CODEC_KEY_FILE": str(stack.key_file),
        "KEEL_CODEC_SERVER_TOKEN": TOKEN,
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keel.services.codec_server",
        "--port", str(port), "--log-format", "json",
        cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        endpoint = ["--codec-endpoint", f"http://127.0.0.1:{port}"]
        for _ in range(100):
            refused, texts = await show(stack, restricted.workflow_id, *endpoint)
            if "connection refused" not in refused.err:
                break
            await asyncio.sleep(0.1)
        assert CANARY not in refused.out + refused.err + texts
        wrong, texts = await show(
            stack, restricted.workflow_id, *endpoint, "--codec-auth", "Bearer not-the-token-000000"
        )
        assert CANARY not in wrong.out + wrong.err + texts
        granted, texts = await show(
            stack, restricted.workflow_id, *endpoint, "--codec-auth", f"Bearer {TOKEN}"
        )
        assert granted.code == 0, granted.err
        assert CANARY in texts
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)")


async def dump_dom(stack: Stack, url: str, profile: Path, screenshot: Path) -> str:
    """The page after its scripts ran, and a screenshot of it beside the test's files."""
    base = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,1600",
        # Virtual time: the page's timers and fetches run to completion within this.
        "--virtual-time-budget=30000",
    ]  # fmt: skip
    dom = await run(*base, "--dump-dom", url, env=stack.env, seconds=180)
    assert dom.code == 0, dom.err[-2000:]
    await run(*base, f"--screenshot={screenshot}", url, env=stack.env, seconds=180)
    return dom.out


async def test_the_web_ui_shows_the_decoded_result_through_the_codec_server(
    stack: Stack, restricted: Restricted, tmp_path: Path
) -> None:
    url = (
        f"http://127.0.0.1:{stack.ui_port}/namespaces/default/workflows/"
        f"{restricted.workflow_id}/{restricted.run_id}/history"
    )
    page = await dump_dom(stack, url, tmp_path / "profile", tmp_path / "decoded.png")
    assert restricted.report.answer[:40] in page, f"see {tmp_path / 'decoded.png'}"
    assert CANARY in page, f"see {tmp_path / 'decoded.png'}"
    # Control: without the codec server the same page holds no plaintext.
    pid = int((stack.data / "codec.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    try:
        page = await dump_dom(stack, url, tmp_path / "profile2", tmp_path / "encrypted.png")
        assert "research-canary" in page  # the page did load
        assert CANARY not in page, f"see {tmp_path / 'encrypted.png'}"
    finally:
        again = await devserver(stack, "start")  # idempotent: restarts what is missing
        assert "codec server: started" in again.out, again.out + again.err


async def test_a_history_written_under_key_a_decodes_after_key_b_becomes_current(
    stack: Stack, restricted: Restricted
) -> None:
    first = read_key_file(stack.key_file).current_id
    rotated = await run(
        sys.executable, "-m", "keel.infra.keys", "rotate", "--key-file", str(stack.key_file),
        env=stack.env,
    )  # fmt: skip
    assert rotated.code == 0, rotated.err
    second = read_key_file(stack.key_file).current_id
    assert second != first
    # Workers and the codec server read the ring when they start.
    assert (await devserver(stack, "stop")).code == 0
    restarted = await devserver(stack, "start", "--with-worker")
    assert restarted.code == 0, restarted.out + restarted.err
    assert "generated key" not in restarted.out
    started = [
        json.loads(line)
        for line in (stack.data / "worker.log").read_text().splitlines()
        if '"worker.started"' in line
    ]
    assert [line["codec_key"] for line in started] == [first, second]

    client = await stack.client()
    old = client.get_workflow_handle_for(ResearchWorkflow.run, restricted.workflow_id)
    assert await old.result() == restricted.report
    shown, texts = await show(
        stack, restricted.workflow_id, "--codec-endpoint", f"http://127.0.0.1:{stack.codec_port}"
    )
    assert shown.code == 0, shown.err
    assert CANARY in texts

    new_id_, _, report = await research(client, "What went wrong with Blueheron's ticket dedup?")
    assert any(CANARY in c.passage for c in report.citations)
    old_raw, _ = await show(stack, restricted.workflow_id)
    new_raw, _ = await show(stack, new_id_)
    assert set(key_ids(json.loads(old_raw.out))) == {first}
    assert set(key_ids(json.loads(new_raw.out))) == {second}
