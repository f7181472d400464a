"""The gateway: prompts from contracts, schema validation, typed errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.documents.store import DocumentStore
from activities.llm.chat_model import ChatCall, Completion
from activities.llm.gateway import LLMGateway
from activities.llm.prompts import PromptBook, PromptError
from activities.llm.scripted_model import ScriptedModel
from harness.testing.stack import SCRIPTED_DIR
from keel.payloads.errors import SCHEMA_VIOLATION, SCRIPT_MISSING, UNKNOWN_PROMPT, UNKNOWN_SCHEMA
from keel.payloads.llm import Budget, BudgetLeft, LLMRequest, ModelChoice, Usage


class RecordingModel:
    """A test double that answers with fixed text and keeps the calls it got."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[ChatCall] = []

    async def complete(self, call: ChatCall) -> Completion:
        self.calls.append(call)
        return Completion(text=self.text, tokens_in=11, tokens_out=7)


def request(**overrides: object) -> LLMRequest:
    values: dict[str, object] = {
        "node": "plan",
        "choice": ModelChoice(provider="local"),
        "prompt_id": "plan",
        "variables": {"question": "What is a saga?", "feedback": ""},
        "output_schema": "ResearchPlan",
    }
    values.update(overrides)
    return LLMRequest.model_validate(values)


def gateway(model: RecordingModel) -> LLMGateway:
    return LLMGateway(PromptBook.load(), {"local": model})


async def test_valid_output_is_returned_with_usage_and_prompt_version() -> None:
    model = RecordingModel('{"queries": ["saga compensation"]}')
    result = await gateway(model).complete(request())
    assert result.output == {"queries": ["saga compensation"]}
    assert (result.usage.tokens_in, result.usage.tokens_out, result.usage.calls) == (11, 7, 1)
    assert result.prompt_id == "plan"
    assert len(result.prompt_hash) == 16
    call = model.calls[0]
    assert "What is a saga?" in call.user
    assert call.schema["properties"]["queries"]["maxItems"] == 3


@pytest.mark.parametrize(
    "text",
    ['{"queries": []}', '{"queries": ["ok"]', "plain words", '{"queries": ["' + "x" * 80 + '"]}'],
)
async def test_invalid_output_raises_a_non_retryable_schema_violation(text: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        await gateway(RecordingModel(text)).complete(request())
    assert raised.value.type == SCHEMA_VIOLATION
    assert raised.value.non_retryable
    assert raised.value.message.startswith("ResearchPlan: ")
    assert raised.value.details[0] == text
    assert raised.value.details[1]["tokens_out"] == 7


async def test_a_reask_carries_the_validation_error_to_the_model() -> None:
    model = RecordingModel('{"queries": ["saga"]}')
    await gateway(model).complete(request(reask_error="queries: List should have at least 1 item"))
    assert "rejected: queries: List should have at least 1 item" in model.calls[0].user


async def test_unknown_schema_and_missing_variable_are_typed_errors() -> None:
    gw = gateway(RecordingModel("{}"))
    with pytest.raises(ApplicationError) as raised:
        await gw.complete(request(output_schema="Nope"))
    assert raised.value.type == UNKNOWN_SCHEMA
    with pytest.raises(ApplicationError) as raised:
        await gw.complete(request(variables={"question": "q"}))
    assert raised.value.type == UNKNOWN_PROMPT
    assert "feedback" in raised.value.message


def test_scripted_model_replays_answers_per_node_call() -> None:
    model = ScriptedModel(SCRIPTED_DIR)
    call = ChatCall("refine_and_revise", "s", "u", {}, 10, 0.0, "plan", 0)
    going = threading.Event()
    first = model.complete(call, going)
    second = model.complete(ChatCall("refine_and_revise", "s", "u", {}, 10, 0.0, "plan", 1), going)
    later = model.complete(ChatCall("refine_and_revise", "s", "u", {}, 10, 0.0, "plan", 9), going)
    assert "zzqx" in first.text
    assert "idempotency" in second.text
    assert later.text == second.text
    with pytest.raises(ApplicationError) as raised:
        model.complete(ChatCall("missing", "s", "u", {}, 10, 0.0, "plan", 0), going)
    assert raised.value.type == SCRIPT_MISSING


def test_prompt_contracts_load_and_bad_files_name_file_and_field(tmp_path: Path) -> None:
    assert {"plan", "refine_query", "write", "review"} <= PromptBook.load().ids()
    bad = tmp_path / "prompts.toml"
    bad.write_text('[plan]\nversion = "1"\nsystem = "s"\n')
    with pytest.raises(PromptError, match=r"prompts.toml \[plan\].*user"):
        PromptBook.load(bad)


async def test_cost_comes_from_the_price_table_and_unpriced_models_are_refused() -> None:
    model = RecordingModel('{"queries": ["saga"]}')
    gw = LLMGateway(PromptBook.load(), {"openai": model})
    priced = await gw.complete(request(choice=ModelChoice(provider="openai", model="gpt-5-mini")))
    # 11 tokens in at $0.25/M and 7 out at $2.00/M
    assert priced.usage.cost_usd == pytest.approx((11 * 0.25 + 7 * 2.00) / 1_000_000)
    with pytest.raises(ApplicationError) as raised:
        await gw.complete(request(choice=ModelChoice(provider="openai", model="gpt-unknown")))
    assert raised.value.type == "UnpricedModel"
    assert raised.value.non_retryable
    assert len(model.calls) == 1  # the unpriced call was never made


async def test_a_budget_caps_the_output_and_refuses_a_call_it_cannot_pay_for() -> None:
    model = RecordingModel('{"queries": ["saga"]}')
    gw = gateway(model)
    await gw.complete(request(max_tokens=300, budget=BudgetLeft(tokens=260)))
    call = model.calls[-1]
    prompt_chars = len(call.system) + len(call.user)
    assert call.max_tokens == 260 - (prompt_chars + 1) // 2
    with pytest.raises(ApplicationError) as raised:
        await gw.complete(request(budget=BudgetLeft(tokens=prompt_chars // 2)))
    assert raised.value.type == "BudgetExhausted"
    assert raised.value.non_retryable
    assert len(model.calls) == 1
    cost_gw = LLMGateway(PromptBook.load(), {"openai": model})
    await cost_gw.complete(
        request(
            choice=ModelChoice(provider="openai", model="gpt-5"),
            budget=BudgetLeft(cost_usd=0.001),
        )
    )
    # $0.001 buys (1000 - prompt * 1.25) / 10 output tokens at gpt-5's prices.
    expected = int((0.001 * 1_000_000 - ((prompt_chars + 1) // 2) * 1.25) / 10.0)
    assert model.calls[-1].max_tokens == min(384, expected)


def test_a_child_budget_is_what_the_parent_has_left() -> None:
    budget = Budget(max_tokens=1000, max_cost_usd=0.5)
    child = budget.for_child(Usage(tokens_in=300, tokens_out=100, cost_usd=0.2))
    assert child.max_tokens == 600
    assert child.max_cost_usd == pytest.approx(0.3)
    assert Budget().for_child(Usage(tokens_in=5)) == Budget()


async def test_raw_newlines_inside_json_strings_are_accepted_without_a_reask() -> None:
    model = RecordingModel('{"queries": ["saga\ncompensation"]}')
    result = await gateway(model).complete(request())
    assert result.output == {"queries": ["saga\ncompensation"]}


async def test_passages_named_by_id_are_read_from_the_store_into_the_prompt(
    store: DocumentStore,
) -> None:
    model = RecordingModel('{"answer": "Keys make retries safe, says [1].", "citations": [1]}')
    chunk = "demo/idempotency-keys#1"
    gw = LLMGateway(PromptBook.load(), {"local": model}, passages=store)
    await gw.complete(
        request(
            node="writer",
            prompt_id="writer",
            output_schema="Draft",
            variables={"task": "Explain keys", "notes": "-", "feedback": ""},
            passage_ids=[chunk, "demo/nothing#0"],
        )
    )
    user = model.calls[0].user
    passage = store.passage(chunk)
    assert passage is not None
    assert f"[1] {passage.title}: {passage.text[:100]}" in user
    assert "[2] (not found)" in user


def turn_request(**overrides: object) -> LLMRequest:
    values: dict[str, object] = {
        "node": "researcher_turn",
        "prompt_id": "researcher_turn",
        "output_schema": "AgentTurn",
        "variables": {"task": "t", "tools": "-", "observations": "-"},
        "choices": {"AgentTurn.tool": ["search_documents", "finish"]},
    }
    values.update(overrides)
    return request(**values)


async def test_choices_narrow_the_schema_sent_and_are_enforced_on_the_answer() -> None:
    model = RecordingModel('{"thought": "", "tool": "search_passage", "arguments": {}}')
    with pytest.raises(ApplicationError) as raised:
        await gateway(model).complete(turn_request())
    assert raised.value.type == SCHEMA_VIOLATION
    assert "tool: 'search_passage' is not one of ['search_documents', 'finish']" in (
        raised.value.message
    )
    assert model.calls[0].schema["properties"]["tool"]["enum"] == ["search_documents", "finish"]
    ok = RecordingModel('{"thought": "", "tool": "finish", "arguments": {}}')
    assert (await gateway(ok).complete(turn_request())).output["tool"] == "finish"


async def test_choices_reach_nested_models_and_unknown_fields_are_refused() -> None:
    model = RecordingModel(
        '{"scores": [{"criterion": "relevance", "score": 4}, {"criterion": "vibes", "score": 5}]}'
    )
    reviewer = request(
        node="reviewer",
        prompt_id="reviewer",
        output_schema="RubricScores",
        variables={"task": "t", "answer": "a", "criteria": "-", "passages": "-"},
        choices={"CriterionScore.criterion": ["relevance", "grounding"]},
    )
    with pytest.raises(ApplicationError) as raised:
        await gateway(model).complete(reviewer)
    assert "scores.1.criterion: 'vibes' is not one of" in raised.value.message
    sent = model.calls[0].schema["$defs"]["CriterionScore"]["properties"]["criterion"]
    assert sent["enum"] == ["relevance", "grounding"]
    with pytest.raises(ApplicationError) as unknown:
        await gateway(model).complete(
            reviewer.model_copy(update={"choices": {"Nope.field": ["x"]}})
        )
    assert unknown.value.type == UNKNOWN_SCHEMA


def _reviewer_request() -> LLMRequest:
    return request(
        node="reviewer",
        prompt_id="reviewer",
        output_schema="RubricScores",
        variables={"task": "t", "answer": "a", "criteria": "-", "passages": "-"},
        choices={"CriterionScore.criterion": ["relevance", "grounding", "clarity"]},
    )


async def test_a_reviewer_repeating_one_criterion_is_reasked_naming_what_is_off() -> None:
    # Seen from the team's reviewer: one criterion five times, the others missing.
    repeated = ", ".join(f'{{"criterion": "clarity", "score": {n}}}' for n in range(1, 6))
    model = RecordingModel(f'{{"scores": [{repeated}], "feedback": "ok"}}')
    with pytest.raises(ApplicationError) as raised:
        await gateway(model).complete(_reviewer_request())
    assert raised.value.type == SCHEMA_VIOLATION
    assert "no score for relevance, grounding" in raised.value.message
    assert "clarity scored more than once" in raised.value.message


async def test_a_reviewer_is_asked_for_one_score_per_criterion_by_name() -> None:
    # An object with each criterion a required key: a grammar cannot repeat or skip one.
    model = RecordingModel(
        '{"scores": {"relevance": 4, "grounding": 3, "clarity": 5}, "feedback": "ok"}'
    )
    result = await gateway(model).complete(_reviewer_request())
    sent = model.calls[0].schema["properties"]["scores"]
    assert sent["type"] == "object"
    assert sent["required"] == ["relevance", "grounding", "clarity"]
    assert sent["additionalProperties"] is False
    assert result.output["scores"] == [
        {"criterion": "relevance", "score": 4},
        {"criterion": "grounding", "score": 3},
        {"criterion": "clarity", "score": 5},
    ]


async def test_a_reviewer_scoring_each_criterion_once_is_accepted() -> None:
    scores = ", ".join(
        f'{{"criterion": "{c}", "score": 4}}' for c in ("grounding", "clarity", "relevance")
    )
    model = RecordingModel(f'{{"scores": [{scores}], "feedback": "ok"}}')
    result = await gateway(model).complete(_reviewer_request())
    assert len(result.output["scores"]) == 3
