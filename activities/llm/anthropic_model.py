"""Anthropic's Messages API; structured output through one forced tool whose input is the schema.

The client's own retries are off (`max_retries=0`), as for every provider.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
from anthropic.types import Message, ToolParam

from activities.llm.chat_model import ChatCall, Completion, TextSink
from activities.llm.provider_errors import provider_error

TOOL_NAME = "answer"


class AnthropicModel:
    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "no-key",
            base_url=base_url,
            max_retries=0,
            timeout=timeout_seconds,
            http_client=http_client,
        )

    async def complete(self, call: ChatCall) -> Completion:
        try:
            if call.on_text is not None:
                message = await self._streamed(call, call.on_text)
            else:
                message = await self._client.messages.create(**_request(call))
        except anthropic.AnthropicError as error:
            # Not chained: the SDK's error can carry the request or the key, and a
            # failure's cause is stored in the history.
            raise provider_error("anthropic", error, self._api_key) from None
        answer = next((block.input for block in message.content if block.type == "tool_use"), None)
        text = json.dumps(answer) if answer is not None else ""
        return Completion(
            text=text,
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
        )

    async def _streamed(self, call: ChatCall, sink: TextSink) -> Message:
        """The tool input's JSON as Anthropic streams it, each fragment passed on."""
        async with self._client.messages.stream(**_request(call)) as stream:
            async for event in stream:
                if event.type == "input_json" and event.partial_json:
                    sink(event.partial_json)
            return await stream.get_final_message()


def _request(call: ChatCall) -> dict[str, Any]:
    """The arguments of one call, the same whether it streams or not: the answer is
    the input of the one tool the model must call."""
    return {
        "model": call.model,
        "system": call.system,
        "messages": [{"role": "user", "content": call.user}],
        "max_tokens": call.max_tokens,
        "tools": _tools(call),
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
    }


def _tools(call: ChatCall) -> list[ToolParam]:
    return [
        {
            "name": TOOL_NAME,
            "description": "Give the answer in exactly this structure.",
            "input_schema": call.schema,
        }
    ]
