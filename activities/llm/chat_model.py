"""What a provider must do: turn one rendered call into text and token counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatCall:
    model: str
    system: str
    user: str
    schema: dict[str, Any]
    max_tokens: int
    temperature: float
    node: str
    call_index: int


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int


class ChatModel(Protocol):
    def complete(self, call: ChatCall) -> Completion: ...
