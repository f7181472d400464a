"""One research run on the real local model: SmolLM2-135M in llama.cpp, on the CPU."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import threading
import time

import pytest
from temporalio.client import Client

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from activities.llm.chat_model import ChatCall, Completion
from activities.llm.gateway import LLMGateway
from activities.llm.local_model import LOCAL_MODEL_NAME, LocalModel, bundled_model_path
from activities.llm.prompts import PromptBook
from harness.eval.score import TEXT_RULES
from harness.testing.stack import QUESTION, in_thread, new_id, research_input, running_workers
from keel.cli.live import LiveView, follow
from keel.payloads.live import LiveEvent
from keel.payloads.llm import ModelChoice
from keel.rules.checks import check_draft
from workflows.research import ResearchWorkflow

pytestmark = pytest.mark.model

LOCAL = ModelChoice(provider="local")


async def test_the_real_local_model_delivers_a_cited_report(
    client: Client, store: DocumentStore
) -> None:
    assert bundled_model_path().stat().st_size > 50_000_000  # the real GGUF, not a stub
    async with running_workers(client, store) as settings:
        report = await client.execute_workflow(
            ResearchWorkflow.run,
            research_input(LOCAL, settings, QUESTION, max_revisions=1),
            id=new_id("local-model"),
            task_queue=settings.task_queue,
        )
    assert report.provider == "local"
    assert report.model == LOCAL_MODEL_NAME
    assert report.answer
    assert report.usage.calls >= 3
    assert report.usage.tokens_in > 0
    assert report.usage.tokens_out > 0
    assert report.citations
    # The contract's decoding for the 135M model ran, and the report says so.
    decoding = load_contracts().quality.decoding["local"]
    assert report.decoding == {k: float(v) for k, v in decoding.model_dump().items()}
    # Whatever the model wrote, nothing degenerate, cut off or with debris goes out unflagged.
    broken = {r for r in check_draft(report.answer, [], []).rules if r in TEXT_RULES}
    assert report.extractive or all(f"check_failed:{r}" in report.flags for r in broken)
    if report.review is not None:
        assert report.review.passed == (report.review.weighted_score >= report.review.threshold)
    known = store.document_ids("demo")
    assert all(c.doc_id in known for c in report.citations)
    assert report.visits[-1].node == "deliver"


class FirstPiece:
    """The local model, noting when llama.cpp handed over the write call's first piece."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model
        self.at: float | None = None

    def complete(self, call: ChatCall, stop: threading.Event) -> Completion:
        sink = call.on_text
        if sink is None or call.node != "write":
            return self.model.complete(call, stop)

        def timed(text: str) -> None:
            if self.at is None:
                self.at = time.monotonic()
            sink(text)

        return self.model.complete(dataclasses.replace(call, on_text=timed), stop)


async def test_the_answer_reaches_a_watcher_within_a_second_of_its_first_token(
    client: Client, store: DocumentStore
) -> None:
    local = FirstPiece(LocalModel())
    gateway = LLMGateway(PromptBook.load(), {"local": in_thread(local)}, passages=store)
    seen: list[float] = []
    written: list[str] = []

    def on_event(event: LiveEvent) -> None:
        if not seen and event.kind == "tokens" and event.node == "write":
            seen.append(time.monotonic())
        if event.kind == "done" and event.node == "write":
            written.append(json.loads(event.text)["answer"])

    workflow_id = new_id("local-stream")
    async with running_workers(client, store, gateway=gateway) as settings:
        handle = await client.start_workflow(
            ResearchWorkflow.run,
            research_input(LOCAL, settings, QUESTION, max_revisions=0, stream_tokens=True),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        out = io.StringIO()
        view = LiveView(out=out, on_event=on_event)
        await asyncio.wait_for(follow(client, workflow_id, view), 600)
        report = await handle.result()
    assert local.at is not None
    assert seen
    assert seen[0] - local.at < 1.0
    assert report.usage.tokens_out > 0
    # What streamed is the draft the model wrote (the report may carry an extract
    # instead, flagged, when the draft does not pass within its bounds).
    shown = out.getvalue().rsplit("write > ", 1)[1]
    assert written
    assert shown.startswith(written[-1].replace("\n", " ")[:30])
    assert report.answer == written[-1] or "extractive" in report.flags
