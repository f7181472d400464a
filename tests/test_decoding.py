"""The local model samples with the contract's decoding and reports it with every call."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from activities.contracts.loader import load_contracts
from activities.llm.chat_model import ChatCall
from activities.llm.local_model import LocalModel


class FakeLlama:
    """Stands in for llama.cpp: keeps the sampling arguments it was called with."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.kwargs = kwargs
        return {
            "choices": [{"message": {"content": '{"queries": ["saga"]}'}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5},
        }


def test_the_contracts_decoding_is_what_the_local_model_samples_with_and_reports() -> None:
    decoding = load_contracts().quality.decoding["local"]
    assert decoding.repeat_penalty > 1.0  # a 135M model loops without one
    model = LocalModel(Path("unused.gguf"), decoding=decoding)
    fake = FakeLlama()
    model._llama = fake
    call = ChatCall(
        model="m",
        system="s",
        user="u",
        schema={},
        max_tokens=32,
        temperature=1.5,  # the request's temperature does not override the contract's
        node="plan",
        call_index=0,
    )
    completion = model.complete(call, threading.Event())
    for name, value in decoding.model_dump().items():
        assert fake.kwargs[name] == value, name
        assert completion.decoding[name] == float(value)
