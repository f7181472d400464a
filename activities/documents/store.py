"""Documents in SQLite with an FTS5 index, ranked by bm25.

A connection per operation keeps the store safe to use from activity threads;
SQLite's WAL mode lets searches run while an ingest writes.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from activities.documents.chunking import parse_document
from models.documents import IngestResult, Passage

MAX_DOCUMENT_BYTES = 1024 * 1024
DOCUMENT_SUFFIXES = (".md", ".txt")
_STOPWORDS = frozenset(
    """a an and are as at be by can do does for from how i in is it its of on or should
    that the their this to what when where which who why will with you your""".split()  # noqa: SIM905
)
_WORD = re.compile(r"\w+", re.UNICODE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    chunk_id UNINDEXED, doc_id UNINDEXED, namespace UNINDEXED, title, body,
    tokenize = 'porter unicode61'
);
"""


class IngestPathError(ValueError):
    """The folder to ingest does not exist or is not a folder."""


def fts_query(queries: list[str]) -> str | None:
    """OR of the distinct content words, each quoted so no FTS5 syntax leaks through."""
    terms: list[str] = []
    for query in queries:
        for word in _WORD.findall(query.lower()):
            if len(word) > 1 and word not in _STOPWORDS and word not in terms:
                terms.append(word)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


class DocumentStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def ingest_folder(self, folder: Path, namespace: str) -> IngestResult:
        """Add or replace every .md/.txt file under `folder`; unchanged files are skipped."""
        if not folder.is_dir():
            raise IngestPathError(f"not a folder: {folder}")
        changed = unchanged = chunk_count = 0
        skipped: list[str] = []
        for file in sorted(p for p in folder.rglob("*") if p.suffix in DOCUMENT_SUFFIXES):
            relative = file.relative_to(folder).as_posix()
            size = file.stat().st_size
            if size > MAX_DOCUMENT_BYTES:
                skipped.append(f"{relative}: {size} bytes, over {MAX_DOCUMENT_BYTES}")
                continue
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped.append(f"{relative}: not UTF-8 text")
                continue
            doc_id = f"{namespace}/{relative.rsplit('.', 1)[0]}"
            digest = hashlib.sha256(raw).hexdigest()
            parsed = parse_document(text, fallback_title=file.stem)
            with self._connect() as db:
                row = db.execute(
                    "SELECT sha256 FROM documents WHERE doc_id = ?", (doc_id,)
                ).fetchone()
                if row is not None and row[0] == digest:
                    unchanged += 1
                    continue
                db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                db.executemany(
                    "INSERT INTO chunks (chunk_id, doc_id, namespace, title, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (f"{doc_id}#{n}", doc_id, namespace, parsed.title, body)
                        for n, body in enumerate(parsed.chunks)
                    ],
                )
                db.execute(
                    "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc_id,
                        namespace,
                        parsed.title,
                        str(file),
                        digest,
                        len(parsed.chunks),
                        datetime.now(UTC).isoformat(),
                    ),
                )
            changed += 1
            chunk_count += len(parsed.chunks)
        return IngestResult(
            namespace=namespace,
            documents=changed,
            unchanged=unchanged,
            chunks=chunk_count,
            skipped=skipped,
        )

    def search(self, namespace: str, queries: list[str], limit: int) -> list[Passage]:
        """Best passages first; bm25 weighs a title match twice a body match."""
        match = fts_query(queries)
        if match is None:
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT chunk_id, doc_id, title, body, bm25(chunks, 0, 0, 0, 2.0, 1.0) AS rank"
                " FROM chunks WHERE chunks MATCH ? AND namespace = ? ORDER BY rank LIMIT ?",
                (match, namespace, limit),
            ).fetchall()
        return [
            Passage(chunk_id=c, doc_id=d, title=t, text=b, score=round(-r, 4))
            for c, d, t, b, r in rows
        ]

    def passage(self, chunk_id: str) -> Passage | None:
        """One chunk in full, by the id a search returned."""
        with self._connect() as db:
            row = db.execute(
                "SELECT chunk_id, doc_id, title, body, namespace FROM chunks WHERE chunk_id = ?",
                (chunk_id,),
            ).fetchone()
        if row is None:
            return None
        c, d, t, b, n = row
        return Passage(chunk_id=c, doc_id=d, title=t, text=b, score=0.0, namespace=n)

    def document_ids(self, namespace: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT doc_id FROM documents WHERE namespace = ?", (namespace,))
            return {r[0] for r in rows}
