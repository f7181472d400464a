"""A flow of the user's own (tests/fixtures/flows/brief.py): its script and its input."""

from __future__ import annotations

import json
from pathlib import Path

from harness.testing.stack import SCRIPTED_DIR

FLOW = "tests.fixtures.flows.brief:BriefFlow"
TOPIC = "idempotency keys"


def script(folder: Path, answer: str, name: str = "brief", delay_ms: int = 0) -> None:
    """The team's script with this direct answer, as a model worker's update would give."""
    base = json.loads((SCRIPTED_DIR / "ask_everything.json").read_text())
    base["direct_answer"] = [{"answer": answer}]
    (folder / f"{name}.json").write_text(json.dumps(base | {"_delay_ms": delay_ms}))


def brief_input(llm_queue: str, model: str = "brief") -> str:
    """The brief flow's input as JSON, as a user passes it to client.py."""
    choice = {"provider": "scripted", "model": model}
    return json.dumps({"topic": TOPIC, "model": choice, "llm_task_queue": llm_queue})
