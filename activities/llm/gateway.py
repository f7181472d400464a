"""Render, call, validate: one LLM call that either returns valid output or says why not."""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import structlog
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm.chat_model import ChatCall, ChatModel, Completion, TextSink
from activities.llm.gates import CallGate, GatedCall, call_id, run_tenant
from activities.llm.prices import PriceError, PriceTable
from activities.llm.prompts import PromptBook, PromptError
from keel.payloads.agents import RubricScores
from keel.payloads.documents import Passage, numbered
from keel.payloads.errors import (
    BUDGET_EXHAUSTED,
    PROVIDER_UNAVAILABLE,
    SCHEMA_VIOLATION,
    UNKNOWN_PROMPT,
    UNKNOWN_SCHEMA,
    UNPRICED_MODEL,
    describe_validation_error,
)
from keel.payloads.llm import LLMRequest, LLMResult, Provider, Usage
from keel.payloads.outputs import OUTPUT_MODELS
from keel.rules.tenants import DEFAULT_TENANT

log = structlog.get_logger()

MIN_OUTPUT_TOKENS = 16  # below this no schema answer fits; treat the budget as spent

REASK_SUFFIX = (
    "\n\nYour previous reply was rejected: {error}\n"
    "Reply again with JSON that matches the schema exactly."
)


CRITERIA_KEY = "CriterionScore.criterion"


class PassageSource(Protocol):
    def passage(self, chunk_id: str) -> Passage | None: ...


class LLMGateway:
    def __init__(
        self,
        prompts: PromptBook | Callable[[], PromptBook],
        providers: Mapping[Provider, ChatModel],
        prices: PriceTable | Callable[[], PriceTable] | None = None,
        passages: PassageSource | None = None,
        gates: Sequence[CallGate] = (),
    ) -> None:
        """`prompts` and `prices` as fixed tables, or read at each call from the worker's
        contracts (`ContractSource`), so that an edit reaches the next call without a restart.

        `gates` admit each call in order before it is sent (the tenant's budget, then the
        provider's rate limit: a call refused for its budget never takes a slot)."""
        fixed_prices = prices or PriceTable.load()
        self._prompts_of = prompts if callable(prompts) else lambda: prompts
        self._prices_of = fixed_prices if callable(fixed_prices) else lambda: fixed_prices
        self._providers = providers
        self._passages = passages
        self._gates = list(gates)

    @property
    def _prompts(self) -> PromptBook:
        return self._prompts_of()

    @property
    def _prices(self) -> PriceTable:
        return self._prices_of()

    async def _admit(self, call: GatedCall) -> GatedCall:
        """Every gate in turn; one that refuses (or a cancel) lets the others' holds go."""
        admitted: list[CallGate] = []
        try:
            for gate in self._live_gates():
                call = await gate.admit(call)
                admitted.append(gate)
        except BaseException:
            for gate in admitted:
                await gate.settle(call, None, None)
            raise
        return call

    async def _settle(
        self, call: GatedCall, usage: Usage | None, error: ApplicationError | None
    ) -> None:
        for gate in self._live_gates():
            await gate.settle(call, usage, error)

    def _live_gates(self) -> list[CallGate]:
        """The gates hold their ledgers through the activity's client: outside an activity
        (the gateway called directly, as a unit test does) no call is gated."""
        return self._gates if activity.in_activity() else []

    def _variables(self, request: LLMRequest) -> dict[str, str]:
        """The request's variables, with passages named by id read from the store here.

        Passages travel as ids so the workflow's history holds references, not text.
        """
        variables = dict(request.variables)
        if not request.passage_ids:
            return variables
        if self._passages is None:
            raise ApplicationError(
                "this worker has no document store to read passages from",
                type=PROVIDER_UNAVAILABLE,
            )
        found = [self._passages.passage(chunk_id) for chunk_id in request.passage_ids]
        variables["passages"] = numbered([p.shown if p else "(not found)" for p in found])
        return variables

    def _output_cap(self, request: LLMRequest, prompt_chars: int, prices: PriceTable) -> int:
        """The most output tokens the call may produce within what the run has left.

        Prompt tokens are estimated high (two characters a token) before the call,
        so a run can stop short of its budget but never run past it.
        """
        choice = request.choice
        try:
            price = prices.price(choice.provider, choice.model)
        except PriceError as err:
            raise ApplicationError(str(err), type=UNPRICED_MODEL, non_retryable=True) from err
        budget = request.budget
        if budget is None:
            return request.max_tokens
        prompt_tokens = math.ceil(prompt_chars / 2)
        cap = request.max_tokens
        if budget.tokens is not None:
            cap = min(cap, budget.tokens - prompt_tokens)
        if budget.cost_usd is not None and price.output > 0:
            affordable = (budget.cost_usd * 1_000_000 - prompt_tokens * price.input) / price.output
            cap = min(cap, math.floor(affordable))
        if cap < MIN_OUTPUT_TOKENS:
            raise ApplicationError(
                f"budget left ({budget.tokens} tokens, ${budget.cost_usd}) cannot pay for"
                f" a {request.node} call of about {prompt_tokens} prompt tokens",
                type=BUDGET_EXHAUSTED,
                non_retryable=True,
            )
        return cap

    async def complete(self, request: LLMRequest, on_text: TextSink | None = None) -> LLMResult:
        output_model, provider = self._resolve(request)
        try:
            prompt = self._prompts.render(request.prompt_id, self._variables(request))
        except PromptError as err:
            raise ApplicationError(str(err), type=UNKNOWN_PROMPT, non_retryable=True) from err
        user = prompt.user
        if request.reask_error:
            user += REASK_SUFFIX.format(error=request.reask_error)
        # One price table for the whole call: the cap and the cost agree even when
        # prices.toml is edited while the model answers.
        prices = self._prices
        max_tokens = self._output_cap(request, len(prompt.system) + len(user), prices)
        schema = narrowed_schema(output_model, request.choices)
        sent = scores_by_criterion(schema, request.choices)
        completion, usage = await self._send(
            request,
            provider,
            ChatCall(
                model=request.choice.model,
                system=prompt.system,
                user=user,
                schema=sent,
                max_tokens=max_tokens,
                temperature=request.choice.temperature,
                node=request.node,
                call_index=request.call_index,
                on_text=on_text,
            ),
            prices,
        )
        output = _checked(request, output_model, schema, sent, completion.text, usage)
        log.info("llm.complete", node=request.node, **usage.model_dump())
        return LLMResult(
            output=output.model_dump(mode="json"),
            provider=request.choice.provider,
            model=request.choice.model,
            usage=usage,
            prompt_id=request.prompt_id,
            prompt_hash=prompt.prompt_hash,
            decoding=completion.decoding,
        )

    def _resolve(self, request: LLMRequest) -> tuple[type[BaseModel], ChatModel]:
        """The request's output model and provider, or a failure naming which is missing."""
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
        return output_model, provider

    async def _send(
        self, request: LLMRequest, provider: ChatModel, chat: ChatCall, prices: PriceTable
    ) -> tuple[Completion, Usage]:
        """Past the gates, to the provider, and what it cost back to the gates."""
        choice = request.choice
        call = await self._admit(
            GatedCall(
                call_id=call_id(),
                tenant=run_tenant(DEFAULT_TENANT),
                provider=choice.provider,
                model=choice.model,
                prompt_tokens=math.ceil((len(chat.system) + len(chat.user)) / 2),
                max_tokens=chat.max_tokens,
                price=prices.price(choice.provider, choice.model),
            )
        )
        started = time.monotonic()
        try:
            completion = await provider.complete(replace(chat, max_tokens=call.max_tokens))
        except ApplicationError as error:
            await self._settle(call, None, error)
            raise
        usage = Usage(
            calls=1,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
            latency_ms=int((time.monotonic() - started) * 1000),
            cost_usd=prices.cost(
                choice.provider, choice.model, completion.tokens_in, completion.tokens_out
            ),
        )
        await self._settle(call, usage, None)
        return completion, usage


def _checked(
    request: LLMRequest,
    output_model: type[BaseModel],
    schema: dict[str, Any],
    sent: dict[str, Any],
    text: str,
    usage: Usage,
) -> BaseModel:
    """The answer parsed and held to the rubric, or a re-ask naming what is wrong."""
    try:
        output = _parse(output_model, text, by_criterion=sent is not schema)
    except ValidationError as err:
        raise _rejected(request, text, usage, describe_validation_error(err)) from err
    # The rubric's complaint first: it names what is missing, the schema's does not.
    outside = _criteria_not_scored_once(output, request.choices)
    if not outside and request.choices:
        outside = _outside_choices(schema, output)
    if outside:
        raise _rejected(request, text, usage, outside)
    return output


def _parse(model: type[BaseModel], text: str, *, by_criterion: bool = False) -> BaseModel:
    """Strict JSON first; then JSON whose strings hold raw newlines or tabs.

    Small models under a grammar sometimes break a long string across lines; the
    content is still what the schema asks for, so it is not worth a re-ask.
    Scores asked for by criterion come back as an object and are read as the list.
    """
    try:
        return model.model_validate_json(text)
    except ValidationError as strict_error:
        try:
            loose = json.loads(text, strict=False)
        except ValueError:
            raise strict_error from None
        if by_criterion and isinstance(loose, dict) and isinstance(loose.get("scores"), dict):
            loose["scores"] = [{"criterion": k, "score": v} for k, v in loose["scores"].items()]
        return model.model_validate(loose)


def narrowed_schema(model: type[BaseModel], choices: Mapping[str, list[str]]) -> dict[str, Any]:
    """The output's JSON Schema with some string fields narrowed to the values allowed.

    `choices` maps `Model.field` (the output model or one nested in it) to its values,
    so a grammar-constrained model can only name, say, a tool that exists.
    """
    schema = model.model_json_schema()
    for key, values in choices.items():
        name, _, field = key.partition(".")
        target = schema if schema.get("title") == name else schema.get("$defs", {}).get(name)
        if target is None or field not in target.get("properties", {}):
            raise ApplicationError(
                f"{model.__name__} has no field {key!r} to narrow",
                type=UNKNOWN_SCHEMA,
                non_retryable=True,
            )
        target["properties"][field] = {"type": "string", "enum": list(values)}
    criteria = choices.get(CRITERIA_KEY)
    if criteria and model is RubricScores:
        # As many scores as criteria, so a grammar cannot stop early or run on.
        scores = schema["properties"]["scores"]
        scores["minItems"] = scores["maxItems"] = len(criteria)
    return schema


def scores_by_criterion(schema: dict[str, Any], choices: Mapping[str, list[str]]) -> dict[str, Any]:
    """What a reviewer is sent: `scores` as an object with one required key per criterion.

    A list of {criterion, score} lets a grammar-constrained model name one criterion
    five times; an object with each criterion as a required key cannot. The answer is
    read back into the list form (`_parse`), so the output model does not change.
    """
    criteria = choices.get(CRITERIA_KEY)
    if not criteria or schema.get("title") != RubricScores.__name__:
        return schema
    sent = copy.deepcopy(schema)
    sent["properties"]["scores"] = {
        "type": "object",
        "properties": {c: {"type": "integer", "enum": [1, 2, 3, 4, 5]} for c in criteria},
        "required": list(criteria),
        "additionalProperties": False,
    }
    return sent


def _criteria_not_scored_once(output: BaseModel, choices: Mapping[str, list[str]]) -> str:
    """A rubric's verdict needs every criterion scored exactly once; say what is off.

    Kept out of the schema's enum: "clarity 1, clarity 2, ..." matches the enum, and
    a repeated criterion would otherwise be counted last-wins with the others as 1.
    """
    criteria = choices.get(CRITERIA_KEY)
    if not criteria or not isinstance(output, RubricScores):
        return ""
    named = [s.criterion for s in output.scores]
    if not set(named) <= set(criteria):
        return ""  # an unknown name: the schema's own error says which
    missing = [c for c in criteria if c not in named]
    repeated = sorted({c for c in named if named.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"no score for {', '.join(missing)}")
    if repeated:
        problems.append(f"{', '.join(repeated)} scored more than once")
    if not problems:
        return ""
    return f"score each criterion exactly once ({'; '.join(problems)})"


def _outside_choices(schema: dict[str, Any], output: BaseModel) -> str:
    """What of a valid output falls outside the narrowed values (a provider may ignore them)."""
    errors = Draft202012Validator(schema).iter_errors(output.model_dump(mode="json"))
    return "; ".join(f"{'.'.join(map(str, e.path)) or 'value'}: {e.message}" for e in errors)[:500]


def _rejected(request: LLMRequest, text: str, usage: Usage, summary: str) -> ApplicationError:
    """A schema violation, non-retryable: the workflow re-asks with `summary` instead.

    The rejected text and what it cost travel with the error, so the workflow can
    re-ask and still count every token spent.
    """
    log.warning("llm.schema_violation", node=request.node, error=summary)
    return ApplicationError(
        f"{request.output_schema}: {summary}",
        text[:2000],
        usage.model_dump(),
        type=SCHEMA_VIOLATION,
        non_retryable=True,
    )
