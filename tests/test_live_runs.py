"""Live runs: a run's steps and its answer, read from its channel while it runs."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.agents import start_agent
from harness.testing.cli import cli_env
from harness.testing.live import Recorder
from harness.testing.processes import run_script, worker_process
from harness.testing.saga import decide, incident, progress_when, saga_workers, start
from harness.testing.stack import (
    DEMO_CORPUS,
    SCRIPTED_DIR,
    new_id,
    running_workers,
    scripted_input,
    worker_settings,
)
from harness.testing.ticket_service import TicketService
from keel.cli.live import follow, written_so_far
from keel.payloads.live import shown_as_written
from keel.payloads.research import ResearchReport
from workflows.research import ResearchWorkflow

QUESTION = "Why do long activities heartbeat?"


def script_answer(script: str, node: str = "write", index: int = 0) -> str:
    answers = json.loads((SCRIPTED_DIR / f"{script}.json").read_text())[node]
    answer: str = answers[index]["answer"]
    return answer


async def events_of(client: Client, workflow_id: str, kind: EventType.ValueType) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == kind)


async def signals(client: Client, workflow_id: str) -> int:
    return await events_of(client, workflow_id, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)


async def watched_research(
    client: Client,
    store: DocumentStore,
    script: str,
    *,
    attach_after_end: bool = False,
    question: str = QUESTION,
    **overrides: object,
) -> tuple[str, Recorder, ResearchReport]:
    """A scripted research run on workers of its own, watched from its start.

    With `attach_after_end` the watcher comes once the run has finished, so the
    run's log is read back in full rather than live.
    """
    workflow_id = new_id()
    recorder = Recorder()
    async with running_workers(client, store) as settings:
        handle = await client.start_workflow(
            ResearchWorkflow.run,
            scripted_input(script, settings, question, **overrides),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        if attach_after_end:
            await handle.result()
        await asyncio.wait_for(follow(client, workflow_id, recorder.view), 60)
        report = await handle.result()
    recorder.view.close()
    return workflow_id, recorder, report


def test_only_outputs_a_watcher_shows_are_streamed() -> None:
    assert [m for m in ("Draft", "Findings", "DirectAnswer") if shown_as_written(m)] == [
        "Draft",
        "Findings",
        "DirectAnswer",
    ]
    assert not [m for m in ("ResearchPlan", "RubricScores", "NoSuchModel") if shown_as_written(m)]


def test_written_so_far_decodes_a_string_still_being_written() -> None:
    raw = '{"answer": "A \\"quoted\\" line\\nand caf\\u00e9 then \\u00'
    assert written_so_far(raw) == 'A "quoted" line\nand café then '
    assert written_so_far('{"answer"') == ""
    assert written_so_far('{"queries": ["x"]}') == ""
    assert written_so_far('{"summary": "done", "passage_ids": []}') == "done"


async def test_a_watcher_sees_each_step_and_the_answer_as_it_is_written(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, recorder, report = await watched_research(
        client, store, "slow_pass", stream_tokens=True
    )
    nodes = [e.node for e in recorder.events if e.kind == "node"]
    assert nodes[:3] == ["plan", "retrieve", "check_evidence"]
    assert nodes[-1] == "deliver"
    node_lines = [e.text for e in recorder.events if e.kind == "node"]
    assert node_lines[-1].startswith("[delivered]")
    # The write call's text arrived while the call was still running: a batch cut
    # FIRST_SECONDS after its first piece, then the whole output with `done`.
    events = recorder.events
    write_tokens = [i for i, e in enumerate(events) if e.kind == "tokens" and e.node == "write"]
    assert write_tokens
    done = next(i for i, e in enumerate(events) if e.kind == "done" and e.node == "write")
    assert min(write_tokens) < done  # text arrived while the call was still writing
    assert written_so_far("".join(events[i].text for i in write_tokens))  # words, not just `{`
    # A plan's queries and a review's scores are not shown as written: no deltas.
    assert {e.node for e in events if e.kind == "tokens"} == {"write"}
    assert {"plan", "write", "review"} <= {e.node for e in events if e.kind == "done"}
    assert f"  write > {report.answer}\n" in recorder.text
    assert "  - retrieve: search done: " in recorder.text
    assert "  - review: review passed: rubric answer 4.00 against 3.50" in recorder.text
    # Token deltas are batched: far fewer signals than pieces the model wrote.
    words = sum(len(json.dumps(e.text).split()) for e in recorder.events if e.kind == "done")
    assert 0 < await signals(client, workflow_id) < words / 3


async def test_a_watched_run_that_does_not_ask_for_tokens_has_nothing_of_its_watcher(
    client: Client, store: DocumentStore
) -> None:
    """The watcher reads by query: no signal, and no update, is in the run's history."""
    workflow_id, recorder, _ = await watched_research(client, store, "slow_pass")
    assert not [e for e in recorder.events if e.kind == "tokens"]
    assert [e.node for e in recorder.events if e.kind == "node"][-1] == "deliver"
    assert await signals(client, workflow_id) == 0
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    assert await events_of(client, workflow_id, accepted) == 0


async def test_a_reask_resets_the_rejected_text_before_the_new_one(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, recorder, _ = await watched_research(
        client,
        store,
        "malformed_then_valid",
        attach_after_end=True,
        question="In what order does a saga run its compensations?",
        stream_tokens=True,
    )
    write = [e for e in recorder.events if e.call == "write#1"]
    resets = [i for i, e in enumerate(write) if e.kind == "reset"]
    assert len(resets) == 1
    assert write[resets[0]].text.startswith("re-ask: Draft:")
    after = "".join(e.text for e in write[resets[0] + 1 :] if e.kind == "tokens")
    done = [e.text for e in write[resets[0] + 1 :] if e.kind == "done"]
    accepted = script_answer("malformed_then_valid", index=1)
    assert json.loads(done[0])["answer"] == accepted
    assert done[0].startswith(after)  # what streamed is the accepted answer, cut short
    # The terminal takes back only what it showed. This script has no latency, so the
    # rejected attempt answered before its first batch was due: nothing of it was sent,
    # and there is nothing to take back.
    assert not [e for e in write[: resets[0]] if e.kind == "tokens"]
    assert "starts over" not in recorder.text
    assert f"  write > {accepted}\n" in recorder.text
    # One signal: the write re-ask's reset. The plan's re-asks are not shown, so they
    # publish nothing, and answers written at once arrive whole with `done`.
    assert await signals(client, workflow_id) == 1
    assert "  - write: re-ask write: Draft:" in recorder.text


async def test_research_cli_streams_the_answer_and_keeps_its_result_block(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        streamed, quiet = await asyncio.gather(
            run_script(
                "client.py", "research", QUESTION, "--address", server_address,
                *("--provider", "scripted", "--model", "slow_pass", "--stream"),
                env=cli_env(settings),
            ),
            run_script(
                "client.py", "--address", server_address, "research", QUESTION,
                *("--provider", "scripted", "--model", "slow_pass"),
                env=cli_env(settings),
            ),
        )  # fmt: skip
    assert streamed.code == quiet.code == 0, streamed.stderr + quiet.stderr
    answer = script_answer("slow_pass")
    assert f"  write > {answer}\n" in streamed.stderr
    assert answer not in quiet.stderr  # not a terminal: steps only
    assert "search done:" in quiet.stderr

    # The result block on stdout is the same, streamed or not (the run ids and the
    # seconds spent in the model differ).
    def block(stdout: str) -> str:
        return re.sub(r"[\d.]+ s in the model", "N s in the model", stdout.split("Web UI:")[0])

    assert block(streamed.stdout) == block(quiet.stdout)


async def test_watch_follows_a_team_with_each_agent_prefixed_by_its_role(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        asked = await run_script(
            "client.py", "--address", server_address, "ask",
            "Write a report on idempotency keys and circuit breakers",
            *("--provider", "scripted", "--model", "team_report", "--stream", "--json"),
            env=cli_env(settings),
        )  # fmt: skip
        assert asked.code == 0, asked.stderr
        workflow_id = json.loads(asked.stdout)["child_workflow_id"].removesuffix("-report")
        watched = await run_script(
            "client.py", "watch", workflow_id, "--address", server_address, env=cli_env(settings)
        )
    assert watched.code == 0, watched.stderr
    lines = watched.stderr.splitlines()
    assert any("route: intent" in line for line in lines)
    assert any(
        line.startswith("researcher-1:   - tool: tool search_documents allowed") for line in lines
    )
    assert any(line.startswith("researcher-2: ") for line in lines)
    final = script_answer("team_report", "writer", 1)
    assert f"writer-2:   writer > {final}" in lines
    assert [line for line in lines if "stage=" in line][-1].startswith("[delivered] stage=")
    # What `ask` showed live is what `watch` showed afterwards, line for line.
    assert [line for line in asked.stderr.splitlines() if "stage=" in line] == [
        line for line in lines if "stage=" in line
    ]


async def test_the_channel_carries_over_continue_as_new(
    client: Client, store: DocumentStore
) -> None:
    workflow_id = new_id("agent")
    recorder = Recorder()
    async with running_workers(client, store) as settings:
        handle = await start_agent(
            client, settings, "researcher", "agent_long", workflow_id,
            max_turns=6, history_event_limit=30,
        )  # fmt: skip
        watcher = asyncio.ensure_future(follow(client, workflow_id, recorder.view))
        result = await handle.result()
        await asyncio.wait_for(watcher, 30)
    assert result.runs >= 2
    tools = [e.text for e in recorder.events if e.kind == "step" and e.node == "tool"]
    # One line per tool decision, across every run, none twice.
    assert len(tools) == len(result.decisions)
    assert tools[0].startswith("tool search_documents allowed")


async def test_a_worker_killed_mid_answer_shows_a_reset_then_the_whole_answer(
    client: Client, server_address: str, tmp_path: Path
) -> None:
    DocumentStore(tmp_path / "documents.db").ingest_folder(DEMO_CORPUS, "demo")
    settings = worker_settings()
    workflow_id = new_id()
    recorder = Recorder()
    answer = script_answer("slow_write")
    async with worker_process(server_address, settings, tmp_path) as first:
        handle = await client.start_workflow(
            ResearchWorkflow.run,
            scripted_input("slow_write", settings, QUESTION, stream_tokens=True),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        watcher = asyncio.ensure_future(follow(client, workflow_id, recorder.view))
        await asyncio.wait_for(recorder.writing.wait(), 60)
        first.kill()  # SIGKILL in the middle of the answer
        await first.wait()
    partial = "".join(e.text for e in recorder.events if e.kind == "tokens")
    assert 0 < len(partial) < len(json.dumps({"answer": answer}))
    async with worker_process(server_address, settings, tmp_path):
        report = await handle.result()
        await asyncio.wait_for(watcher, 60)
    recorder.view.close()
    write = [e for e in recorder.events if e.call == "write#1"]
    reset = next(i for i, e in enumerate(write) if e.kind == "reset")
    assert write[reset].text.startswith("retry (attempt ")
    assert not [e for e in write[reset + 1 :] if e.kind == "reset"]
    retried = "".join(e.text for e in write[reset + 1 :] if e.kind == "tokens")
    done = [e for e in write if e.kind == "done"]
    assert len(done) == 1
    assert json.loads(done[0].text)["answer"] == report.answer == answer
    assert done[0].text.startswith(retried)  # the retry's own text, not the first attempt's
    # On the terminal: the partial text, the reset, then the answer once and whole.
    shown = recorder.text
    assert "(write#1 starts over: retry (attempt " in shown
    tail = shown.split("(write#1 starts over:")[1]
    assert tail.count(answer) == 1
    assert f"  write > {answer}\n" in tail


async def test_a_rejected_saga_shows_its_steps_the_wait_and_the_compensation(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    recorder = Recorder()
    async with saga_workers(client, store, tickets) as settings:
        handle = await start(client, settings, incident(settings))
        watcher = asyncio.ensure_future(follow(client, handle.id, recorder.view))
        await progress_when(handle, "awaiting_approval")
        await decide(handle, "reject")
        await handle.result()
        await asyncio.wait_for(watcher, 30)
    steps = [e.node for e in recorder.events if e.kind == "step"]
    assert steps[0] == "triage"  # the script's first triage breaks the schema: a re-ask
    assert steps.index("create_ticket") < steps.index("assign")
    assert steps[-3:] == ["approval", "compensation", "done"]
    assert recorder.events[-1].text.startswith("rejected: ticket ")
