"""Contracts for the tests: a copy of contracts/ with tables of their own added.

The tests' tool-using agents all answer on the scripted researcher's prompts and
schema, and many tools differ only in their name; one function builds each kind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from activities.contracts.loader import CONTRACTS_DIR


def contracts_with_tables(folder: Path, tools: str = "", agents: str = "") -> Path:
    """contracts/ copied to `folder`, `tools` and `agents` TOML appended to their files."""
    shutil.copytree(CONTRACTS_DIR, folder)
    for name, text in (("tools.toml", tools), ("agents.toml", agents)):
        with (folder / name).open("a") as file:
            file.write(text)
    return folder


def agent_table(
    name: str,
    description: str,
    tools: Sequence[str],
    *,
    max_turns: int,
    scopes: Sequence[str] = (),
) -> str:
    """An agent on the researcher's prompts and schema, calling `tools`."""
    lines = [
        f"[agents.{name}]",
        f'role = "{name}"',
        f"description = {json.dumps(description)}",
        'turn_prompt = "researcher_turn"',
        'final_prompt = "researcher_final"',
        'output_schema = "Findings"',
        'models = ["local/smollm2-135m-instruct"]',
        f"tools = {json.dumps(list(tools))}",
    ]
    if scopes:
        lines.append(f"scopes = {json.dumps(list(scopes))}")
    lines.append(f"max_turns = {max_turns}")
    return "\n" + "\n".join(lines) + "\n"


def server_tools(server: str, scopes: Sequence[str], *names: str) -> str:
    """Tables of tools that `server` serves under `scopes`, with nothing else set."""
    return "".join(
        f'\n[tools.{name}]\nserver = "{server}"\nscopes = {json.dumps(list(scopes))}\n'
        for name in names
    )
