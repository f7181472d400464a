"""A scripted model for deterministic tests: it replays answers from a fixture file.

`<dir>/<model>.json` maps a node name to a list of answers; the n-th call of a node
in a run gets the n-th answer (the last one repeats). An answer that is a JSON
object is sent as JSON text; a string is sent as is, which lets a script produce
malformed output on purpose. An optional `"_delay_ms"` gives every call a fixed
latency, like a real model's. Token counts are words, not model tokens. A call
that streams gets its answer word by word, the delay spread over the words.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.llm.chat_model import CallStopped, ChatCall, Completion
from keel.payloads.errors import SCRIPT_MISSING


class ScriptedModel:
    def __init__(self, script_dir: Path) -> None:
        self.script_dir = script_dir

    def _script(self, name: str) -> dict[str, Any]:
        path = self.script_dir / f"{Path(name).name}.json"
        try:
            script: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ApplicationError(
                f"no script {path}", type=SCRIPT_MISSING, non_retryable=True
            ) from err
        return script

    def complete(self, call: ChatCall, stop: threading.Event) -> Completion:
        script = self._script(call.model)
        answers = script.get(call.node)
        if not isinstance(answers, list) or not answers:
            raise ApplicationError(
                f"script {call.model!r} has no answers for node {call.node!r}",
                type=SCRIPT_MISSING,
                non_retryable=True,
            )
        answer = answers[min(call.call_index, len(answers) - 1)]
        text = answer if isinstance(answer, str) else json.dumps(answer)
        delay = float(script.get("_delay_ms", 0)) / 1000
        pieces = re.findall(r"\s*\S+", text) if call.on_text else [text]
        # Paced by the clock, not by a sum of sleeps (each wakes late): streamed word by
        # word or not, a call takes its latency.
        started = time.monotonic()
        for index, piece in enumerate(pieces or [""], 1):
            due = started + delay * index / max(len(pieces), 1)
            if stop.wait(max(due - time.monotonic(), 0.0)):
                raise CallStopped(f"{call.node} stopped: its caller was cancelled")
            if call.on_text:
                call.on_text(piece)
        return Completion(
            text=text,
            tokens_in=len(f"{call.system} {call.user}".split()),
            tokens_out=len(text.split()),
        )
