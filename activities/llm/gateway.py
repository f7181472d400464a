"""Render, call, validate: one LLM call that either returns valid output or says why not."""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.llm.chat_model import ChatCall, ChatModel
from activities.llm.prompts import PromptBook, PromptError
from activities.llm.schemas import OUTPUT_MODELS
from models.errors import (
    PROVIDER_UNAVAILABLE,
    SCHEMA_VIOLATION,
    UNKNOWN_PROMPT,
    UNKNOWN_SCHEMA,
    describe_validation_error,
)
from models.llm import LLMRequest, LLMResult, Provider, Usage

log = structlog.get_logger()

REASK_SUFFIX = (
    "\n\nYour previous reply was rejected: {error}\n"
    "Reply again with JSON that matches the schema exactly."
)


class LLMGateway:
    def __init__(self, prompts: PromptBook, providers: Mapping[Provider, ChatModel]) -> None:
        self._prompts = prompts
        self._providers = providers

    def complete(self, request: LLMRequest) -> LLMResult:
        output_model = OUTPUT_MODELS.get(request.output_schema)
        if output_model is None:
            raise ApplicationError(
                f"unknown output schema {request.output_schema!r}",
                type=UNKNOWN_SCHEMA,
                non_retryable=True,
            )
        provider = self._providers.get(request.choice.provider)
        if provider is None:
            raise ApplicationError(
                f"provider {request.choice.provider!r} is not configured on this worker",
                type=PROVIDER_UNAVAILABLE,
            )
        try:
            prompt = self._prompts.render(request.prompt_id, request.variables)
        except PromptError as err:
            raise ApplicationError(str(err), type=UNKNOWN_PROMPT, non_retryable=True) from err
        user = prompt.user
        if request.reask_error:
            user += REASK_SUFFIX.format(error=request.reask_error)
        started = time.monotonic()
        completion = provider.complete(
            ChatCall(
                model=request.choice.model,
                system=prompt.system,
                user=user,
                schema=output_model.model_json_schema(),
                max_tokens=request.max_tokens,
                temperature=request.choice.temperature,
                node=request.node,
                call_index=request.call_index,
            )
        )
        latency_ms = int((time.monotonic() - started) * 1000)
        usage = Usage(
            calls=1,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
            latency_ms=latency_ms,
        )
        try:
            output = output_model.model_validate_json(completion.text)
        except ValidationError as err:
            summary = describe_validation_error(err)
            log.warning("llm.schema_violation", node=request.node, error=summary)
            # The rejected text and what it cost travel with the error, so the
            # workflow can re-ask and still count every token spent.
            raise ApplicationError(
                f"{request.output_schema}: {summary}",
                completion.text[:2000],
                usage.model_dump(),
                type=SCHEMA_VIOLATION,
                non_retryable=True,
            ) from err
        log.info("llm.complete", node=request.node, **usage.model_dump())
        return LLMResult(
            output=output.model_dump(mode="json"),
            provider=request.choice.provider,
            model=request.choice.model,
            usage=usage,
            prompt_id=request.prompt_id,
            prompt_hash=prompt.prompt_hash,
        )
