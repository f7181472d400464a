"""Recorded histories must replay on today's workflow code (determinism across deploys)."""

from __future__ import annotations

import inspect
import json
import sys
import types
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from activities.documents.store import DocumentStore
from harness.testing.stack import NARROW, research_on_workers
from keel.infra.codec import data_converter
from worker import WORKFLOWS
from workflows.priority import InheritPriority

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Research runs older than the release before: this release no longer replays them.
RETIRED = sorted((Path(__file__).parent / "histories" / "retired").glob("*.json"))


def replayer() -> Replayer:
    # With the workers' workflow interceptor: it writes the run's priority on commands.
    return Replayer(
        workflows=WORKFLOWS, data_converter=data_converter(), interceptors=[InheritPriority()]
    )


def recorded(path: Path) -> WorkflowHistory:
    """Recorded as `history-<file stem>` (child ids derive from it); `@N` numbers later runs."""
    workflow_id = f"history-{path.stem.split('@')[0]}"
    return WorkflowHistory.from_json(workflow_id, path.read_text())


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def test_every_workflow_type_has_recorded_histories() -> None:
    histories = [recorded(p) for p in HISTORIES]
    types_recorded = {workflow_type(h) for h in histories}
    assert {w.__name__ for w in WORKFLOWS} <= types_recorded
    continued = [
        h
        for h in histories
        if h.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    ]
    assert continued, "no history of a run that started from continue-as-new"


def test_recorded_histories_are_present() -> None:
    stems = {p.stem for p in HISTORIES}
    assert {"research_refine_and_revise", "team_report", "ask_small_talk"} <= stems
    # The shapes behind the check-node, rubric-verdict and router-validation patches.
    assert {"research_checks_then_pass", "team_checks", "ask_refused_by_flow_input"} <= stems
    assert any(s.startswith("team_report-researcher") for s in stems)
    # A research run of the release before, with the marker this release matches on replay,
    # and a team run of the release before, without this release's team marker.
    assert {"research_in_details", "team_in_details"} <= stems
    # The team's real-questions and not-in-corpus patch, both ways.
    assert {"team_real_questions", "team_not_in_corpus"} <= stems
    assert {p.stem for p in RETIRED} == {
        "research_checks_then_pass",
        "research_never_checks",
        "research_reask_and_fallback",
        "research_refine_and_revise",
    }


@pytest.mark.parametrize("path", RETIRED, ids=[p.stem for p in RETIRED])
async def test_a_research_run_older_than_the_release_before_no_longer_replays(
    path: Path,
) -> None:
    """Why the upgrade procedure drains such runs first: they would stop on this code.

    The retired patches' markers (or the upserts per node of runs before any) have no
    command here, so the worker fails the task instead of taking another path silently.
    """
    result = await replayer().replay_workflow(recorded(path), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "Nondeterminism" in str(result.replay_failure)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    await replayer().replay_workflow(recorded(path))


def changed_workflow(cls: type, statement: str) -> type:
    """`cls` rebuilt from its module's source with `statement` first in its run method.

    The rebuilt module is not on disk, so it replays outside the sandbox.
    """
    source_file = inspect.getsourcefile(cls)
    assert source_file is not None
    lines = Path(source_file).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {cls.__name__}"))
    run = next(i for i in range(start, len(lines)) if lines[i].strip() == "@workflow.run")
    body = next(i for i in range(run, len(lines)) if lines[i].rstrip().endswith(":"))
    lines.insert(body + 1, " " * 8 + statement)
    name = f"changed_{cls.__module__.replace('.', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile("\n".join(lines), f"<changed {source_file}>", "exec"), module.__dict__)
    changed: type = getattr(module, cls.__name__)
    return changed


@pytest.mark.parametrize("cls", WORKFLOWS, ids=[w.__name__ for w in WORKFLOWS])
async def test_an_unguarded_change_to_any_workflow_is_caught_by_replay(cls: type) -> None:
    histories = [h for h in map(recorded, HISTORIES) if workflow_type(h) == cls.__name__]
    assert histories

    async def failures(statement: str) -> list[str]:
        changed = Replayer(
            workflows=[changed_workflow(cls, statement)],
            data_converter=data_converter(),
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        found = []
        for history in histories:
            result = await changed.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                found.append(str(result.replay_failure))
        return found

    # A new step that running executions never took: every recorded run must break.
    unguarded = await failures("await workflow.sleep(0.01)")
    assert len(unguarded) == len(histories)
    assert all("nondeterminism" in f.lower() or "nondeterministic" in f.lower() for f in unguarded)
    # The same step behind a patch: recorded runs take the old path and replay.
    assert await failures('if workflow.patched("replay-check"): await workflow.sleep(0.01)') == []


async def test_a_fresh_run_replays_and_a_changed_flow_is_caught(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, _ = await research_on_workers(client, store, "narrow_refine_and_revise", NARROW)
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
            body["max_refinements"] = 0  # the run refined once
            plain.data = json.dumps(body).encode()
            [resealed] = await codec.encode([plain])
            attributes["input"]["payloads"][0] = json_format.MessageToDict(resealed)
    result = await replayer().replay_workflow(
        WorkflowHistory.from_json(history.workflow_id, tampered), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
