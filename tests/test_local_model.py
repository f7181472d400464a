"""One research run on the real local model: SmolLM2-135M in llama.cpp, on the CPU."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from activities.llm.local_model import LOCAL_MODEL_NAME, bundled_model_path
from eval.score import TEXT_RULES
from models.checks import check_draft
from models.llm import ModelChoice
from models.research import ResearchInput
from tests.conftest import new_id, running_workers
from workflows.research import ResearchWorkflow

pytestmark = pytest.mark.model


async def test_the_real_local_model_delivers_a_cited_report(
    client: Client, store: DocumentStore
) -> None:
    assert bundled_model_path().stat().st_size > 50_000_000  # the real GGUF, not a stub
    async with running_workers(client, store) as settings:
        report = await client.execute_workflow(
            ResearchWorkflow.run,
            ResearchInput(
                question="How do idempotency keys make retries safe?",
                model=ModelChoice(provider="local"),
                llm_task_queue=settings.llm_task_queue,
                max_revisions=1,
            ),
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
