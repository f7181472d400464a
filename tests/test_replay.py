"""Recorded histories must replay on today's workflow code (determinism across deploys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from activities.documents.store import DocumentStore
from infra.codec import data_converter
from tests.conftest import execute_scripted, running_workers
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=data_converter())


def test_recorded_histories_are_present() -> None:
    stems = {p.stem for p in HISTORIES}
    assert {"research_refine_and_revise", "team_report", "ask_small_talk"} <= stems
    # The shapes behind the check-node, rubric-verdict and router-validation patches.
    assert {"research_checks_then_pass", "team_checks", "ask_refused_by_flow_input"} <= stems
    assert any(s.startswith("team_report-researcher") for s in stems)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    # Recorded as `history-<file stem>`; child workflow ids derive from it.
    history = WorkflowHistory.from_json(f"history-{path.stem}", path.read_text())
    await replayer().replay_workflow(history)


async def test_a_fresh_run_replays_and_a_changed_flow_is_caught(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store) as settings:
        workflow_id, _ = await execute_scripted(
            client, settings, "refine_and_revise", "How do idempotency keys make retries safe?"
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    await replayer().replay_workflow(history)
    # The same history against a run whose inputs lead elsewhere must not replay.
    # The input is ciphertext: decrypt, change and encrypt it again with the run's key.
    codec = client.data_converter.payload_codec
    assert codec is not None
    tampered = history.to_json_dict()
    for event in tampered["events"]:
        attributes = event.get("workflowExecutionStartedEventAttributes")
        if attributes:
            sealed = json_format.ParseDict(attributes["input"]["payloads"][0], Payload())
            assert sealed.metadata["encoding"] == b"binary/encrypted"
            [plain] = await codec.decode([sealed])
            body = json.loads(plain.data)
            body["max_refinements"] = 0
            plain.data = json.dumps(body).encode()
            [resealed] = await codec.encode([plain])
            attributes["input"]["payloads"][0] = json_format.MessageToDict(resealed)
    result = await replayer().replay_workflow(
        WorkflowHistory.from_json(history.workflow_id, tampered), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
