"""A scripted model for deterministic tests: it replays answers from a fixture file.

`<dir>/<model>.json` maps a node name to a list of answers; the n-th call of a node
in a run gets the n-th answer (the last one repeats). An answer that is a JSON
object is sent as JSON text; a string is sent as is, which lets a script produce
malformed output on purpose. Token counts are words, not model tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.llm.chat_model import ChatCall, Completion
from models.errors import SCRIPT_MISSING


class ScriptedModel:
    def __init__(self, script_dir: Path) -> None:
        self.script_dir = script_dir

    def _script(self, name: str) -> dict[str, list[Any]]:
        path = self.script_dir / f"{Path(name).name}.json"
        try:
            script: dict[str, list[Any]] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ApplicationError(
                f"no script {path}", type=SCRIPT_MISSING, non_retryable=True
            ) from err
        return script

    def complete(self, call: ChatCall) -> Completion:
        answers = self._script(call.model).get(call.node)
        if not answers:
            raise ApplicationError(
                f"script {call.model!r} has no answers for node {call.node!r}",
                type=SCRIPT_MISSING,
                non_retryable=True,
            )
        answer = answers[min(call.call_index, len(answers) - 1)]
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return Completion(
            text=text,
            tokens_in=len(f"{call.system} {call.user}".split()),
            tokens_out=len(text.split()),
        )
