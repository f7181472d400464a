"""Fallback chains: a model that retries cannot save hands the run to the next one."""

from __future__ import annotations

import httpx2
import pytest
from temporalio.client import Client

from activities.documents.store import DocumentStore
from activities.llm.gateway import LLMGateway
from activities.llm.openai_model import OpenAICompatibleModel
from activities.llm.prompts import PromptBook
from activities.llm.scripted_model import ScriptedModel
from harness.testing.stack import (
    FALLBACK,
    PRIMARY,
    QUESTION,
    SCRIPTED_DIR,
    in_thread,
    research_on_workers,
)


def gateway_with_primary(status: int, seen: list[httpx2.Request]) -> LLMGateway:
    """The primary endpoint answers every request with `status` (a network double)."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(status, json={"error": {"message": f"status {status}"}})

    primary = OpenAICompatibleModel(
        "http://primary.invalid/v1",
        "sk-test",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
    )
    return LLMGateway(
        PromptBook.load(), {"openai": primary, "scripted": in_thread(ScriptedModel(SCRIPTED_DIR))}
    )


@pytest.mark.parametrize(
    ("status", "reason", "primary_requests"),
    [(401, "ProviderAuth", 1), (503, "ProviderUnavailable", 4)],
    ids=["non-retryable-fails-over-at-once", "retries-exhausted-then-fails-over"],
)
async def test_the_run_moves_to_the_next_model_and_records_why(
    client: Client, store: DocumentStore, status: int, reason: str, primary_requests: int
) -> None:
    seen: list[httpx2.Request] = []
    _, report = await research_on_workers(
        client,
        store,
        "refine_and_revise",
        QUESTION,
        model=PRIMARY,
        fallback_models=[FALLBACK],
        gateway=gateway_with_primary(status, seen),
    )
    assert report.review_passed
    assert report.provider == "scripted"
    [fallback] = report.fallbacks
    assert (fallback.node, fallback.from_model, fallback.to_model) == (
        "plan",
        "openai/gpt-5-mini",
        "scripted/refine_and_revise",
    )
    assert fallback.reason.startswith(f"{reason}: openai: HTTP {status}")
    # The primary saw only the first call's attempts: the switch lasts for the run.
    assert len(seen) == primary_requests
    # Failed primary attempts produced nothing and are not counted as calls; the
    # fallback's plan was the node's second call, whose scripted queries find
    # evidence at once: plan, write, review (fail), plan, write, review (pass).
    assert report.usage.calls == 6
    assert "refine_query" not in {v.node for v in report.visits}
