"""Any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp's server.

The client's own retries are off (`max_retries=0`): Temporal's retry policy is the
one layer that retries, recorded in the history. The client is asynchronous so
that a cancelled activity aborts the request (a blocking client's read cannot be
interrupted from another thread; a hung endpoint would keep the call's slot).
"""

from __future__ import annotations

from typing import Any, Literal

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from activities.llm.chat_model import ChatCall, Completion, TextSink
from activities.llm.provider_errors import provider_error

# "json_schema": OpenAI's structured outputs (also vLLM, Ollama);
# "json_object": llama.cpp's server, which takes the schema beside the type.
SchemaMode = Literal["json_schema", "json_object"]


class OpenAICompatibleModel:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        schema_mode: SchemaMode = "json_schema",
        timeout_seconds: float = 60.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._schema_mode = schema_mode
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers ignore the key; the SDK insists on one.
            api_key=api_key or "no-key",
            max_retries=0,
            timeout=timeout_seconds,
            http_client=http_client,
        )

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self._schema_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}

    def _request(self, call: ChatCall) -> dict[str, Any]:
        """The arguments of one call, the same whether it streams or not."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": call.system},
            {"role": "user", "content": call.user},
        ]
        return {
            "model": call.model,
            "messages": messages,
            "max_tokens": call.max_tokens,
            "temperature": call.temperature,
            # Sent as is: llama.cpp's schema-beside-type form is not in the SDK's types.
            "extra_body": {"response_format": self._response_format(call.schema)},
        }

    async def complete(self, call: ChatCall) -> Completion:
        if call.on_text is not None:
            return await self._streamed(call, call.on_text)
        try:
            response = await self._client.chat.completions.create(**self._request(call))
        except openai.OpenAIError as error:
            # Not chained: the SDK's error can carry the request or the key, and a
            # failure's cause is stored in the history.
            raise provider_error("openai", error, self._api_key) from None
        usage = response.usage
        return Completion(
            text=response.choices[0].message.content or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
        )

    async def _streamed(self, call: ChatCall, sink: TextSink) -> Completion:
        """The endpoint's server-sent deltas, each passed on as it arrives; usage comes last."""
        pieces: list[str] = []
        tokens_in = tokens_out = 0
        try:
            stream = await self._client.chat.completions.create(
                **self._request(call), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in stream:
                if chunk.usage is not None:
                    tokens_in = chunk.usage.prompt_tokens
                    tokens_out = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        pieces.append(text)
                        sink(text)
        except openai.OpenAIError as error:
            raise provider_error("openai", error, self._api_key) from None
        # An endpoint that sends no usage still wrote every piece: count those.
        return Completion(
            text="".join(pieces), tokens_in=tokens_in, tokens_out=tokens_out or len(pieces)
        )
