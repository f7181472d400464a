"""Canaries through the whole stack, as a user drives it, then a scan of every place.

`devserver.py start --with-worker` on a fresh folder (SQLite on disk, its generated
key, its codec server), an OpenAI-compatible provider whose error bodies echo the
`Authorization` header (so the canary key comes back in every failure), and
`client.py` as a subprocess for everything: ingest of a restricted document holding
a canary phrase, a restricted research run, a team run over it, a provider failing
with 401 and one failing with 500 (while its activity retries, its last failure is
read with `temporal workflow describe`), a question holding a canary of its own.
Then `python -m keel.infra.canary` scans the database, its WAL, the logs, the CLI's
output and every history as `temporal` shows and describes it without a codec:
nothing. A keyholder still reads the team's history through the codec server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from harness.testing.devstack import (
    CANARY,
    CANARY_DOC,
    Ran,
    Stack,
    devserver,
    run,
    show,
    temporal_workflow,
)
from harness.testing.stack import CORPORA, new_id
from keel.infra.canary import json_blob
from keel.payloads.research import ResearchInput
from workflows.research import ResearchWorkflow

# A key that looks like no known key format, so no log pattern can be what hides it.
CANARY_KEY = "kq7-canary-provider-key-5e8b1d3f9a2c7e4b"
QUESTION_CANARY = "nimbus-lattice-canary-2291"
CONTROL = "plaintext-scan-control-7730"
POSTMORTEM_QUESTION = "What went wrong with Blueheron's ticket dedup?"
# Research runs of a cleared caller: their reports print restricted passages, by design.
CLEARED_REPORTS = ("research", "question")


class EchoingProvider(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that fails with `status`, echoing the key in its body."""

    status = 401

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status = self.status
        echoed = {
            "error": {
                "message": f"rejected request; Authorization: {self.headers['Authorization']}",
                "type": "invalid_request_error" if status == 401 else "server_error",
                "code": None,
            }
        }
        data = json.dumps(echoed).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@dataclass
class Outputs:
    """What the user's terminal showed, command by command."""

    cli: dict[str, Ran] = field(default_factory=dict)
    workflow_ids: dict[str, str] = field(default_factory=dict)
    pending_describe: str = ""


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, provider: str
) -> AsyncIterator[tuple[Stack, Path]]:
    data = tmp_path_factory.mktemp("canary-stack")
    corpus = tmp_path_factory.mktemp("canary-corpus")
    (corpus / "canary-followup.md").write_text(CANARY_DOC, encoding="utf-8")
    stack = Stack.fresh(
        data,
        KEEL_INGEST_ROOTS=os.pathsep.join([str(CORPORA["postmortems"]), str(corpus)]),
        KEEL_OPENAI_BASE_URL=provider,
        KEEL_OPENAI_API_KEY=CANARY_KEY,
        # Every failing call reaches the provider: no breaker opens in between.
        KEEL_BREAKER_MIN_CALLS="100",
    )
    started = await devserver(stack, "start", "--with-worker")
    try:
        assert started.code == 0, started.out + started.err
        # client.py finds the generated key where devserver.py says.
        stack.env["KEEL_CODEC_KEY_FILE"] = str(stack.key_file)
        yield stack, corpus
    finally:
        await devserver(stack, "stop")


async def client_py(stack: Stack, *args: str, seconds: float = 180) -> Ran:
    return await run(
        sys.executable, "client.py", "--address", stack.address, *args, env=stack.env,
        seconds=seconds,
    )  # fmt: skip


async def describe(stack: Stack, workflow_id: str, *codec: str) -> dict[str, Any]:
    shown = await temporal_workflow(stack, "describe", workflow_id, *codec)
    assert shown.code == 0, shown.err
    described: dict[str, Any] = json.loads(shown.out)
    return described


async def pending_last_failure(stack: Stack, workflow_id: str) -> str:
    """`temporal workflow describe` while the model call retries after a 500."""
    described: dict[str, Any] = {}
    for _ in range(300):
        described = await describe(stack, workflow_id)
        for pending in described.get("pendingActivities") or []:
            if pending.get("lastFailure") and int(pending.get("attempt", 1)) >= 2:
                return json.dumps(described)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} never showed a retrying activity: {described}")


@pytest.fixture(scope="module")
async def outputs(stack: tuple[Stack, Path]) -> Outputs:
    the_stack, corpus = stack
    out = Outputs()
    nonce = new_id("canary")
    for folder in (str(CORPORA["postmortems"]), str(corpus)):
        out.cli[f"ingest {folder}"] = await client_py(
            the_stack, "ingest", folder, "--corpus", "postmortems"
        )
    research_id, team_id = f"{nonce}-research", f"{nonce}-team"
    failing_401, failing_500 = f"{nonce}-401", f"{nonce}-500"
    question_id = f"{nonce}-question"
    out.workflow_ids = {
        "research": f"research-{research_id}",
        "team": f"ask-{team_id}-report",
        "ask": f"ask-{team_id}",
        "401": f"research-{failing_401}",
        "500": f"research-{failing_500}",
        "question": f"research-{question_id}",
    }
    out.cli["research"] = await client_py(
        the_stack, "research", POSTMORTEM_QUESTION, "--request-id", research_id,
        "--corpus", "postmortems", "--clearance", "restricted",
        "--provider", "scripted", "--model", "postmortem_lookup",
    )  # fmt: skip
    out.cli["team"] = await client_py(
        the_stack, "ask", "Write a report on the Blueheron dedup follow-up",
        "--request-id", team_id, "--clearance", "restricted",
        "--provider", "scripted", "--model", "team_canary",
    )  # fmt: skip
    asked = "Why did the Blueheron ticket dedup key open a ticket on every retry"
    asked += f" ({QUESTION_CANARY})?"
    out.cli["question"] = await client_py(
        the_stack, "research", asked,
        "--request-id", question_id, "--corpus", "postmortems", "--clearance", "restricted",
        "--provider", "scripted", "--model", "postmortem_lookup",
    )  # fmt: skip
    EchoingProvider.status = 401
    out.cli["401"] = await client_py(
        the_stack, "research", POSTMORTEM_QUESTION, "--request-id", failing_401,
        "--provider", "openai", "--model", "gpt-5-mini",
    )  # fmt: skip
    EchoingProvider.status = 500
    out.cli["500 start"] = await client_py(
        the_stack, "start", POSTMORTEM_QUESTION, "--request-id", failing_500,
        "--provider", "openai", "--model", "gpt-5-mini",
    )  # fmt: skip
    out.pending_describe = await pending_last_failure(the_stack, out.workflow_ids["500"])
    out.cli["500 result"] = await client_py(the_stack, "result", out.workflow_ids["500"])
    out.cli["status"] = await client_py(the_stack, "status", out.workflow_ids["team"])
    out.cli["list"] = await client_py(the_stack, "list", "--json")
    return out


def test_the_runs_ended_as_a_user_expects(outputs: Outputs) -> None:
    cli = outputs.cli
    for name in ("research", "team", "question", "status", "list", "500 start"):
        assert cli[name].code == 0, f"{name}: {cli[name].err}"
    assert all(r.code == 0 for n, r in cli.items() if n.startswith("ingest")), cli
    assert cli["401"].code == 1
    assert "research failed: ProviderAuth: openai: HTTP 401" in cli["401"].err
    assert cli["500 result"].code == 1
    assert "ProviderUnavailable: openai: HTTP 500" in cli["500 result"].err
    # The provider did echo the key back: the error line shows where it was cut out.
    assert "Bearer ***" in cli["401"].err
    # The restricted run carried the phrase: the cleared caller's report shows it.
    assert CANARY in cli["research"].out
    assert "postmortems" in cli["team"].out


def test_no_key_and_no_restricted_text_in_any_terminal_output(outputs: Outputs) -> None:
    for name, ran in outputs.cli.items():
        assert CANARY_KEY not in ran.out + ran.err, name
        assert QUESTION_CANARY not in ran.err, name
        # Only the cleared caller's own report prints restricted text.
        if name not in CLEARED_REPORTS:
            assert CANARY not in ran.out + ran.err, name


def test_the_retrying_activitys_last_failure_in_describe_holds_no_key(
    outputs: Outputs,
) -> None:
    described = outputs.pending_describe
    assert "lastFailure" in described
    searched = json_blob(described)
    assert CANARY_KEY.encode() not in searched
    assert b"Encoded failure" in searched  # the message is in the encrypted attributes


async def test_the_scan_finds_nothing_anywhere_and_finds_a_planted_control(
    stack: tuple[Stack, Path], outputs: Outputs, tmp_path: Path
) -> None:
    the_stack, _ = stack
    strings = tmp_path / "canaries.txt"
    strings.write_text(f"{CANARY_KEY}\n{CANARY}\n{QUESTION_CANARY}\n", encoding="utf-8")
    terminal = tmp_path / "terminal.txt"
    terminal.write_text(
        "\n".join(r.out + r.err for n, r in outputs.cli.items() if n not in CLEARED_REPORTS),
        encoding="utf-8",
    )
    scan = [
        sys.executable, "-m", "keel.infra.canary", "--strings-file", str(strings),
        "--data-dir", str(the_stack.data), "--file", str(terminal),
        "--all-workflows", "--address", the_stack.address,
    ]  # fmt: skip
    clean = await run(*scan, env=the_stack.env, seconds=300)
    assert clean.code == 0, clean.out + clean.err
    assert clean.out == ""
    searched = int(clean.err.split(" in ")[-1].split()[0])
    # Database, WAL, 3+ logs, the terminal, and show + describe of every run.
    assert searched >= 6 + 2 * len(outputs.workflow_ids), clean.err
    for log in ("worker.log", "temporal.log", "codec.log"):
        assert (the_stack.data / log).stat().st_size > 0, log

    # Control: the same scan finds a canary written without the codec.
    plain = await Client.connect(the_stack.address, data_converter=pydantic_data_converter)
    control = await plain.start_workflow(
        ResearchWorkflow.run,
        ResearchInput(question=f"Is {CONTROL} stored in plaintext?"),
        id=new_id("scan-control"),
        task_queue="nobody-polls-this",
    )
    await control.terminate("control written")
    strings.write_text(f"{CANARY_KEY}\n{CONTROL}\n", encoding="utf-8")
    found = await run(*scan, env=the_stack.env, seconds=300)
    assert found.code == 1, found.out + found.err
    assert f"FOUND string 2 x1 in temporal workflow show {control.id}" in found.out
    assert "FOUND string 1" not in found.out
    assert CONTROL not in found.out  # reported by number, never echoed


async def test_search_attributes_summaries_memo_and_ids_hold_no_question_text(
    stack: tuple[Stack, Path], outputs: Outputs
) -> None:
    the_stack, _ = stack
    workflow_id = outputs.workflow_ids["question"]
    described = await describe(the_stack, workflow_id)
    raw = json_blob(json.dumps(described))
    assert QUESTION_CANARY.encode() not in raw
    info = described["workflowExecutionInfo"]
    attributes = info["searchAttributes"]["indexedFields"]
    # Only the server's own: no attribute of keel's, no patch marker's name.
    assert set(attributes) <= {"BuildIds", "TemporalChangeVersion"}
    assert "BuildIds" in attributes
    assert QUESTION_CANARY not in json.dumps(info.get("memo", {}))
    # The summaries are payloads, sealed like the rest: a keyholder reads the question.
    codec = ["--codec-endpoint", f"http://127.0.0.1:{the_stack.codec_port}"]
    decoded = await describe(the_stack, workflow_id, *codec)
    assert QUESTION_CANARY in json.dumps(decoded)
    assert QUESTION_CANARY not in workflow_id


async def test_a_keyholder_reads_the_team_history_through_the_codec_server(
    stack: tuple[Stack, Path], outputs: Outputs
) -> None:
    the_stack, _ = stack
    team = outputs.workflow_ids["team"]
    endpoint = f"http://127.0.0.1:{the_stack.codec_port}"
    raw, raw_texts = await show(the_stack, team)
    assert raw.code == 0, raw.err
    assert CANARY not in raw.out + raw_texts
    # The researchers read the restricted document: their histories carry the phrase.
    texts = ""
    client = await the_stack.client()
    async for wf in client.list_workflows(f'WorkflowId STARTS_WITH "{team}-researcher"'):
        decoded, child_texts = await show(the_stack, wf.id, "--codec-endpoint", endpoint)
        assert decoded.code == 0, decoded.err
        texts += child_texts
        plain, plain_texts = await show(the_stack, wf.id)
        assert CANARY not in plain.out + plain_texts
    assert CANARY in texts
