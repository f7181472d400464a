"""What the scripted model endpoint answers: a pure function of the request.

The node is recognised by its system prompt (contracts/prompts.toml), the answer
picked by the first rule of `scripted_answers.json` whose `when` text occurs in
the user message. No counter is kept between calls, so a call retried after a
fault, or repeated after a worker crash, gets the same answer as the first time,
and a faulted run's report can be compared with a fault-free run's.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "contracts" / "prompts.toml"
ANSWERS = Path(__file__).with_name("scripted_answers.json")


@dataclass(frozen=True)
class ScriptedAnswer:
    node: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool


class UnknownPrompt(ValueError):
    """The system prompt is none of the contract's: the endpoint answers 400."""


def _words(text: str) -> int:
    return len(text.split())


class Script:
    def __init__(self, prompts: Path = PROMPTS, answers: Path = ANSWERS) -> None:
        raw = tomllib.loads(prompts.read_text(encoding="utf-8"))
        self._nodes = {str(fields["system"]).strip(): node for node, fields in raw.items()}
        loaded: dict[str, Any] = json.loads(answers.read_text(encoding="utf-8"))
        self._rules: dict[str, list[dict[str, Any]]] = {
            k: v for k, v in loaded.items() if not k.startswith("_")
        }

    def node(self, system: str) -> str:
        node = self._nodes.get(system.strip())
        if node is None:
            raise UnknownPrompt(f"no prompt in {PROMPTS.name} has this system text")
        return node

    def answer(self, system: str, user: str, max_tokens: int | None) -> ScriptedAnswer:
        """Tokens are words, as the in-process scripted model counts them.

        An answer longer than `max_tokens` is cut there, as a real model stops at
        its limit, so a budget the gateway computed is honoured or visibly broken.
        """
        node = self.node(system)
        for rule in self._rules.get(node, []):
            when = rule.get("when")
            if when is None or str(when) in user:
                answer = rule["answer"]
                break
        else:
            raise UnknownPrompt(f"{ANSWERS.name} has no answer for {node!r}")
        text = answer if isinstance(answer, str) else json.dumps(answer)
        words = text.split()
        truncated = max_tokens is not None and len(words) > max_tokens
        if truncated:
            assert max_tokens is not None
            text = " ".join(words[:max_tokens])
        return ScriptedAnswer(
            node=node,
            text=text,
            prompt_tokens=_words(f"{system} {user}"),
            completion_tokens=_words(text),
            truncated=truncated,
        )
