"""Opening the SQLite files the services keep (documents, tickets) the same way."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def create_database(path: Path, schema: str) -> None:
    """Create the file, its folder and its tables; in WAL mode so readers never wait on a writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
