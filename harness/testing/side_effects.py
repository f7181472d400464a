"""The exactly-once tests' contracts and script: a notice board's tools and an agent.

`post_notice` takes no key, so keel sends it at most once; `post_keyed_notice` takes
keel's key as its `key` argument; `retract_notice` undoes either by that key. The
tools are in tests/fixtures/side_effect_tools.py; the herald agent may use both, and
with the board's MCP server over HTTP also `post_header_notice`, which takes keel's key
in its request's `Idempotency-Key` header.
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
BOARD_SERVER = """
[servers.board]
url = "{url}"
headers = {{ "X-Keel-Token" = "MCP_TEST_TOKEN" }}

[tools.post_header_notice]
server = "board"
capability = "header_notice"
side_effect = true
idempotency_key = "header:Idempotency-Key"
compensation = "retract_notice"
timeout_seconds = {timeout}
"""
AGENT_TOOLS = ["post_notice", "post_keyed_notice"]


def turn(tool: str | None, text: str = "") -> dict[str, object]:
    """One scripted turn: a call of `tool` with `text`, or finish."""
    if tool is None:
        return {"thought": "done", "tool": "finish", "arguments": {}}
    return {"thought": "post it", "tool": tool, "arguments": {"text": text}}


def write_contracts(
    folder: Path, timeout_seconds: float = 60, *, board_url: str | None = None
) -> Path:
    """A copy of contracts/ with the board's tools and the herald agent added; with
    `board_url`, the board's MCP server at that URL too (harness/testing/mcp_http_server.py)."""
    tools = TOOLS.format(timeout=timeout_seconds)
    allowed = list(AGENT_TOOLS)
    if board_url is not None:
        tools += BOARD_SERVER.format(url=board_url, timeout=timeout_seconds)
        allowed.append("post_header_notice")
    herald = agent_table(AGENT, "Posts notices on the board.", allowed, max_turns=4)
    return contracts_with_tables(folder / "contracts", tools, herald)


def write_script(folder: Path, turns: list[dict[str, object]]) -> Path:
    """A scripts folder whose `herald` script takes `turns`, then answers."""
    scripts = folder / "scripts"
    scripts.mkdir()
    base = json.loads((SCRIPTED_DIR / "ask_everything.json").read_text())
    base["researcher_turn"] = turns
    (scripts / f"{AGENT}.json").write_text(json.dumps(base))
    return scripts
