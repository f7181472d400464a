"""The gateway: prompts from contracts, schema validation, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.llm.chat_model import ChatCall, Completion
from activities.llm.gateway import LLMGateway
from activities.llm.prompts import PromptBook, PromptError
from activities.llm.scripted_model import ScriptedModel
from models.errors import SCHEMA_VIOLATION, SCRIPT_MISSING, UNKNOWN_PROMPT, UNKNOWN_SCHEMA
from models.llm import LLMRequest, ModelChoice
from tests.conftest import SCRIPTED_DIR


class RecordingModel:
    """A test double that answers with fixed text and keeps the calls it got."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[ChatCall] = []

    def complete(self, call: ChatCall) -> Completion:
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


def test_valid_output_is_returned_with_usage_and_prompt_version() -> None:
    model = RecordingModel('{"queries": ["saga compensation"]}')
    result = gateway(model).complete(request())
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
def test_invalid_output_raises_a_non_retryable_schema_violation(text: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        gateway(RecordingModel(text)).complete(request())
    assert raised.value.type == SCHEMA_VIOLATION
    assert raised.value.non_retryable
    assert raised.value.message.startswith("ResearchPlan: ")
    assert raised.value.details[0] == text
    assert raised.value.details[1]["tokens_out"] == 7


def test_a_reask_carries_the_validation_error_to_the_model() -> None:
    model = RecordingModel('{"queries": ["saga"]}')
    gateway(model).complete(request(reask_error="queries: List should have at least 1 item"))
    assert "rejected: queries: List should have at least 1 item" in model.calls[0].user


def test_unknown_schema_and_missing_variable_are_typed_errors() -> None:
    gw = gateway(RecordingModel("{}"))
    with pytest.raises(ApplicationError) as raised:
        gw.complete(request(output_schema="Nope"))
    assert raised.value.type == UNKNOWN_SCHEMA
    with pytest.raises(ApplicationError) as raised:
        gw.complete(request(variables={"question": "q"}))
    assert raised.value.type == UNKNOWN_PROMPT
    assert "feedback" in raised.value.message


def test_scripted_model_replays_answers_per_node_call() -> None:
    model = ScriptedModel(SCRIPTED_DIR)
    call = ChatCall("refine_and_revise", "s", "u", {}, 10, 0.0, "plan", 0)
    first = model.complete(call)
    second = model.complete(ChatCall("refine_and_revise", "s", "u", {}, 10, 0.0, "plan", 1))
    later = model.complete(ChatCall("refine_and_revise", "s", "u", {}, 10, 0.0, "plan", 9))
    assert "zzqx" in first.text
    assert "idempotency" in second.text
    assert later.text == second.text
    with pytest.raises(ApplicationError) as raised:
        model.complete(ChatCall("missing", "s", "u", {}, 10, 0.0, "plan", 0))
    assert raised.value.type == SCRIPT_MISSING


def test_prompt_contracts_load_and_bad_files_name_file_and_field(tmp_path: Path) -> None:
    assert {"plan", "refine_query", "write", "review"} <= PromptBook.load().ids()
    bad = tmp_path / "prompts.toml"
    bad.write_text('[plan]\nversion = "1"\nsystem = "s"\n')
    with pytest.raises(PromptError, match=r"prompts.toml \[plan\].*user"):
        PromptBook.load(bad)
