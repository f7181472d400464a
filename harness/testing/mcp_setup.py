"""Tools from outside for the tests: the reference MCP servers, an HTTP one, their contracts.

`mcp-server-time` and `mcp-server-git` (PyPI, pinned in the dev extra) run over
stdio as the worker's children; `harness/testing/mcp_http_server.py` serves over streamable
HTTP from a process of its own. `write_tool_contracts` adds them, a Python tool and
an agent that may use them to a copy of contracts/; `turn` and `write_script` script
an agent's calls of them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.testing.contracts import agent_table, contracts_with_tables, server_tools
from harness.testing.stack import ROOT

BIN = Path(sys.executable).parent
# Values the worker reads from its environment by name; none may reach a history.
CANARY_VARIABLE = "KEEL_TEST_MCP_CANARY"
TOKEN_VARIABLE = "KEEL_TEST_MCP_TOKEN"
AGENT = "clock"
# The git server's reply to git_log, as a person would recognise it.
COMMIT_MESSAGE = "Add the release notes for 2.4"

# The reference time server, as each tool test's contracts declare it.
TIME_SERVER = f"""
[servers.time]
command = "{BIN}/mcp-server-time"
args = ["--local-timezone", "UTC"]
"""

SERVERS = """
[servers.git]
command = "{bin}/mcp-server-git"
args = ["--repository", "{repo}"]
env = {{ KEEL_CANARY = "{canary}" }}

[servers.web]
url = "{url}"
headers = {{ "X-Keel-Token" = "{token}" }}
"""

WEB_TOOLS = ("word_stats", "whoami", "fail_loudly", "huge", "lying_clock")
TOOLS = (
    """
[tools.get_current_time]
server = "time"
capability = "time"
scopes = ["time:read"]
quota_per_run = 3

[tools.git_log]
server = "git"
scopes = ["git:read"]
quota_per_run = 2
"""
    + server_tools("web", ["web:read"], *WEB_TOOLS)
    + """
[tools.count_words]
python = "tests.fixtures.python_tools:count_words"
description = "Counts a word in a text."
quota_per_run = 2

[tools.secret_note]
python = "tests.fixtures.python_tools:secret_note"
clearance = "restricted"
"""
)

AGENT_TABLE = agent_table(
    AGENT,
    "Answers with the time, the repository's log and text statistics.",
    ["get_current_time", "git_log", *WEB_TOOLS, "count_words", "secret_note"],
    scopes=["time:read", "git:read", "web:read"],
    max_turns=14,
)


def write_tool_contracts(folder: Path, repo: Path, url: str) -> Path:
    """contracts/ copied to `folder`, with the servers, the tools and the agent added."""
    servers = SERVERS.format(
        bin=BIN, repo=repo, url=url, canary=CANARY_VARIABLE, token=TOKEN_VARIABLE
    )
    return contracts_with_tables(folder, TIME_SERVER + servers + TOOLS, AGENT_TABLE)


def turn(tool: str, **arguments: object) -> dict[str, object]:
    """One scripted turn: a call of `tool` with `arguments`."""
    return {"thought": f"use {tool}", "tool": tool, "arguments": arguments}


def write_script(folder: Path, name: str, turns: list[dict[str, object]]) -> None:
    """Script `name` in `folder`: `turns`, then finish and a short answer."""
    final = {"summary": "Done with the tools.", "passage_ids": []}
    script = {"researcher_turn": [*turns, turn("finish")], "researcher_final": [final]}
    (folder / f"{name}.json").write_text(json.dumps(script))


def scratch_repository(path: Path) -> Path:
    """A git repository with one commit, for mcp-server-git to read."""
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.name=Keel Test", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (path / "NOTES.md").write_text("Release notes\n")
    subprocess.run([*git, "add", "NOTES.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", COMMIT_MESSAGE], check=True)
    return path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_server(token: str, *, json_response: bool = False) -> Iterator[str]:
    """harness/testing/mcp_http_server.py on a free port; its /mcp URL while it runs."""
    port = _port()
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.testing.mcp_http_server", str(port)]
        + (["--json"] if json_response else []),
        cwd=ROOT,
        env={**os.environ, "MCP_TEST_TOKEN": token},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the MCP HTTP server exited: {stderr[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def stdio_children(command: str, parent: int | None = None) -> list[int]:
    """Process ids of the children of `parent` (this process) running `command`."""
    found = subprocess.run(
        ["pgrep", "-P", str(parent or os.getpid()), "-f", command], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]
