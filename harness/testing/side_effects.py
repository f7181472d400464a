"""The exactly-once tests' contracts and script: a notice board's tools and an agent.

`post_notice` takes no key, so keel sends it at most once; `post_keyed_notice` takes
keel's key as its `key` argument; `retract_notice` undoes either by that key. The
tools are in tests/fixtures/side_effect_tools.py; the herald agent may use both.
Shared by tests/test_side_effects.py and the history recorder.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.testing.contracts import agent_table, contracts_with_tables
from harness.testing.stack import SCRIPTED_DIR

AGENT = "herald"
TOOLS = """
[tools.post_notice]
python = "tests.fixtures.side_effect_tools:post_notice"
capability = "notice"
side_effect = true
compensation = "retract_notice"
quota_per_run = 3
timeout_seconds = {timeout}

[tools.post_keyed_notice]
python = "tests.fixtures.side_effect_tools:post_keyed_notice"
capability = "keyed_notice"
side_effect = true
idempotency_key = "argument:key"
compensation = "retract_notice"
timeout_seconds = {timeout}

[tools.retract_notice]
python = "tests.fixtures.side_effect_tools:retract_notice"
capability = "notice_undo"
"""
AGENT_TABLE = agent_table(
    AGENT, "Posts notices on the board.", ["post_notice", "post_keyed_notice"], max_turns=4
)


def turn(tool: str | None, text: str = "") -> dict[str, object]:
    """One scripted turn: a call of `tool` with `text`, or finish."""
    if tool is None:
        return {"thought": "done", "tool": "finish", "arguments": {}}
    return {"thought": "post it", "tool": tool, "arguments": {"text": text}}


def write_contracts(folder: Path, timeout_seconds: float = 60) -> Path:
    """A copy of contracts/ with the board's tools and the herald agent added."""
    tools = TOOLS.format(timeout=timeout_seconds)
    return contracts_with_tables(folder / "contracts", tools, AGENT_TABLE)


def write_script(folder: Path, turns: list[dict[str, object]]) -> Path:
    """A scripts folder whose `herald` script takes `turns`, then answers."""
    scripts = folder / "scripts"
    scripts.mkdir()
    base = json.loads((SCRIPTED_DIR / "ask_everything.json").read_text())
    base["researcher_turn"] = turns
    (scripts / f"{AGENT}.json").write_text(json.dumps(base))
    return scripts
