"""What the tests' OpenAI-compatible model doubles answer: one valid object per output
schema, sent back as a chat completion the provider adapter parses like a real one."""

from __future__ import annotations

import json
from typing import Any

# The research flow's straight path: a plan, a cited draft, a passing review.
RESEARCH_ANSWERS: dict[str, dict[str, Any]] = {
    "ResearchPlan": {"queries": ["idempotency key retries"]},
    "Draft": {
        "answer": "An idempotency key lets the service return the first result of a retry.",
        "citations": [1],
    },
    "RubricScores": {
        "scores": [{"criterion": c, "score": 4} for c in ("relevance", "grounding", "clarity")],
        "feedback": "Supported.",
    },
}


def chat_completion(
    model: str, answer: dict[str, Any], prompt_tokens: int, completion_tokens: int, created: int
) -> dict[str, Any]:
    """A chat completion whose message is `answer` as JSON, with the usage it reports."""
    message = {"role": "assistant", "content": json.dumps(answer)}
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
