"""The soak's conversation: every call carries the whole transcript, as the public failure did.

A conversation that sends its whole transcript with every model call grows its
history by the transcript's size on every turn: 100 calls over a context that ends
near 200k tokens write tens of megabytes, and the server terminates such a run at
50 MB. With the payload store each large input is stored once, encrypted, and the
history holds a reference of about a hundred bytes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.llm.activities import LLMActivities
    from keel.graphs.policies import LLM_RETRY, LLM_TIMEOUT
    from keel.payloads.llm import LLMRequest, LLMResult, ModelChoice

SCRIPT = "soak_conversation"  # harness/soak/scripts/soak_conversation.json
WORDS = ("retry", "backoff", "jitter", "idempotency", "breaker", "history", "replay", "saga")


class ConversationSoakInput(BaseModel):
    """`calls` model calls; each user message is `message_chars` long and carries `marker`."""

    calls: int = Field(default=100, ge=1)
    message_chars: int = Field(default=8_000, ge=10)
    marker: str = ""
    llm_task_queue: str = "llm"


class ConversationSoakResult(BaseModel):
    transcript_chars: int
    last_tokens_in: int = Field(description="the prompt of the last call, as the model counted it")


def message(turn: int, chars: int, marker: str) -> str:
    """A user message of `chars` characters that differs from every other turn's."""
    words = [f"{WORDS[(turn * 7 + i) % len(WORDS)]}{turn}.{i}" for i in range(chars // 8 + 1)]
    return f"user {turn} {marker}: " + " ".join(words)[:chars]


async def write_call(
    script: str, llm_task_queue: str, question: str, passages: str, summary: str = ""
) -> LLMResult:
    """One `write` call of a scripted conversation, through the project's model activity."""
    return await workflow.execute_activity_method(
        LLMActivities.complete,
        LLMRequest(
            node="write",
            choice=ModelChoice(provider="scripted", model=script),
            prompt_id="write",
            variables={"question": question, "passages": passages, "feedback": ""},
            output_schema="Draft",
            max_tokens=420,
        ),
        task_queue=llm_task_queue,
        start_to_close_timeout=LLM_TIMEOUT,
        retry_policy=LLM_RETRY,
        summary=summary or None,
    )


@workflow.defn(name="SoakConversation")
class SoakConversationWorkflow:
    @workflow.run
    async def run(self, soak: ConversationSoakInput) -> ConversationSoakResult:
        transcript: list[str] = []
        last = 0
        for turn in range(soak.calls):
            transcript.append(message(turn, soak.message_chars, soak.marker))
            result = await write_call(
                SCRIPT,
                soak.llm_task_queue,
                transcript[-1][:200],
                "\n".join(transcript),  # the whole conversation so far, on every call
                f"turn {turn + 1}",
            )
            transcript.append(f"assistant: {result.output['answer']}")
            last = result.usage.tokens_in
        return ConversationSoakResult(
            transcript_chars=sum(len(m) for m in transcript), last_tokens_in=last
        )
