"""The exactly-once tests' notice board: SQLite at $KEEL_TEST_BOARD, shared by processes.

Every arrival of a call is written down (`arrivals`), whether or not it is applied,
so a test counts sends across worker processes. While the file `hold` exists in the
board's folder, a call stays in flight after it arrived (the test kills the worker
then). The posting tools are Python tools (tests/fixtures/side_effect_tools.py) and
an MCP tool over HTTP that takes its key in a header (harness/testing/mcp_http_server.py).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS arrivals (tool TEXT, text TEXT, key TEXT, pid INTEGER);
CREATE TABLE IF NOT EXISTS notices (text TEXT, key TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS retractions (key TEXT);
"""


def board() -> Path:
    return Path(os.environ["KEEL_TEST_BOARD"])


def write(statements: list[tuple[str, tuple[object, ...]]]) -> None:
    with sqlite3.connect(board(), timeout=10) as db:
        db.executescript(SCHEMA)
        for sql, params in statements:
            db.execute(sql, params)


async def hold() -> None:
    for _ in range(6000):  # ten minutes at most
        if not (board().parent / "hold").exists():
            return
        await asyncio.sleep(0.1)


async def post_once_per_key(tool: str, text: str, key: str) -> None:
    """The arrival written down, the notice posted unless its key was seen; then held."""
    await asyncio.to_thread(write, [
        ("INSERT INTO arrivals VALUES (?, ?, ?, ?)", (tool, text, key, os.getpid())),
        ("INSERT OR IGNORE INTO notices VALUES (?, ?)", (text, key)),
    ])  # fmt: skip
    await hold()
