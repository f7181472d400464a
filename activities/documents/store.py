"""Documents in SQLite with an FTS5 index, ranked by bm25.

A connection per operation keeps the store safe to use from activity threads;
SQLite's WAL mode lets searches run while an ingest writes.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from activities.documents.chunking import parse_document
from keel.infra.sqlite import create_database
from keel.payloads.documents import IngestResult, Passage

MAX_DOCUMENT_BYTES = 1024 * 1024
DOCUMENT_SUFFIXES = (".md", ".txt")
_STOPWORDS = frozenset(
    """a an and are as at be by can do does for from how i in is it its of on or should
    that the their this to what when where which who why will with you your""".split()  # noqa: SIM905
)
# Reciprocal rank fusion's constant (Cormack et al., 2009): a rank r adds 1/(60 + r),
# so the top of either ranking counts without one ranking's head drowning the other.
RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Korean particles attach to the word before them ("재시도는", "키를"), and unicode61
# splits only on spaces, so one trailing particle is cut and the stem matched as a
# prefix. Longest first, so "방법으로" loses "으로" rather than only "로".
_KO_PARTICLES = tuple(
    sorted(
        """은 는 이 가 을 를 의 에 에서 에게 께 한테 으로 로 와 과 도 만 까지 부터 처럼 보다
        이나 나 이란 란 이라 라 랑 이랑 하고 마다 조차 뿐""".split(),  # noqa: SIM905
        key=len,
        reverse=True,
    )
)

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


def _korean_stem(word: str) -> str:
    """The word without one trailing particle, if at least two syllables remain.

    Two syllables, so a short noun that merely ends like a particle ("사가") is kept.
    """
    for particle in _KO_PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word


def fts_query(queries: Sequence[str]) -> str | None:
    """OR of the distinct content words, each quoted so no FTS5 syntax leaks through.

    English terms match whole (after the porter stemmer); Hangul terms lose one
    particle and match as a prefix, since Korean inflects by suffixes. The word as
    written is kept too: a bare noun that ends like a particle ("재시도") then
    still ranks its own documents above those of the shorter stem ("재시작").
    """
    terms: list[str] = []
    for query in queries:
        for word in _WORD.findall(query.lower()):
            if len(word) <= 1 or word in _STOPWORDS:
                continue
            if _HANGUL.search(word):
                candidates = [f'"{_korean_stem(word)}"*', f'"{word}"*']
            else:
                candidates = [f'"{word}"']
            terms.extend(t for t in candidates if t not in terms)
    return " OR ".join(terms) if terms else None


class DocumentStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        create_database(path, _SCHEMA)

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
        result = IngestResult(namespace=namespace, documents=0, unchanged=0, chunks=0)
        inside = folder.resolve()
        for file in sorted(p for p in folder.rglob("*") if p.suffix in DOCUMENT_SUFFIXES):
            relative = file.relative_to(folder).as_posix()
            raw, why_not = _readable(file, inside)
            if raw is None:
                result.skipped.append(f"{relative}: {why_not}")
                continue
            chunks = self._store(file, raw, f"{namespace}/{relative.rsplit('.', 1)[0]}", namespace)
            if chunks is None:
                result.unchanged += 1
                continue
            result.documents += 1
            result.chunks += chunks
        return result

    def _store(self, file: Path, raw: bytes, doc_id: str, namespace: str) -> int | None:
        """Replaces the document's chunks; None when its bytes are unchanged."""
        digest = hashlib.sha256(raw).hexdigest()
        parsed = parse_document(raw.decode("utf-8"), fallback_title=file.stem)
        with self._connect() as db:
            row = db.execute("SELECT sha256 FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if row is not None and row[0] == digest:
                return None
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
        return len(parsed.chunks)

    def search(self, namespace: str, queries: Sequence[str], limit: int) -> list[Passage]:
        """Best passages of one namespace first."""
        return self.search_many([namespace], queries, limit)

    def search_many(
        self, namespaces: Sequence[str], queries: Sequence[str], limit: int
    ) -> list[Passage]:
        """Best passages of several namespaces, ranked together by bm25 (a title match
        weighs twice a body match).

        No access check here: the activity decides what a caller may read before it
        calls the store, so the store stays usable by ingestion, tests and tools alike.
        """
        match = fts_query(queries)
        wanted = list(dict.fromkeys(namespaces))
        if match is None or not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        with self._connect() as db:
            rows = db.execute(
                "SELECT chunk_id, doc_id, namespace, title, body,"
                " bm25(chunks, 0, 0, 0, 2.0, 1.0) AS rank"
                f" FROM chunks WHERE chunks MATCH ? AND namespace IN ({marks})"
                " ORDER BY rank LIMIT ?",
                (match, *wanted, limit),
            ).fetchall()
        return [
            Passage(chunk_id=c, doc_id=d, namespace=n, title=t, text=b, score=round(-r, 4))
            for c, d, n, t, b, r in rows
        ]

    def search_for_question(
        self, namespaces: Sequence[str], queries: Sequence[str], question: str, limit: int
    ) -> list[Passage]:
        """The plan's search and the question's own, fused by reciprocal rank.

        A model's queries can miss the one passage that answers: "maximum attempts"
        asked as "retry policy" finds the policy's other paragraphs. Searching the
        question too, and fusing the two rankings by rank rather than by their bm25
        values (which two queries do not share a scale for), keeps what either search
        ranks high. A passage's `score` is then its fused value.
        """
        rankings = [self.search_many(namespaces, queries, limit)]
        if question:
            rankings.append(self.search_many(namespaces, [question], limit))
        fused: dict[str, float] = {}
        passages: dict[str, Passage] = {}
        for ranking in rankings:
            for position, passage in enumerate(ranking, 1):
                fused[passage.chunk_id] = fused.get(passage.chunk_id, 0.0) + 1 / (RRF_K + position)
                passages.setdefault(passage.chunk_id, passage)
        # Ties keep the plan's order: the first ranking's passages were added first.
        best = sorted(fused, key=lambda c: -fused[c])[:limit]
        return [passages[c].model_copy(update={"score": round(fused[c], 6)}) for c in best]

    def scores(self, chunk_ids: Sequence[str], question: str) -> dict[str, float]:
        """Each chunk's bm25 relevance to `question`, with the corpus's own term weights.

        The passages of a search were found by a plan's queries; which of them is about
        the question itself is this score (0 for a chunk that shares no term with it).
        """
        match = fts_query([question])
        wanted = list(dict.fromkeys(chunk_ids))
        if match is None or not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        with self._connect() as db:
            rows = db.execute(
                "SELECT chunk_id, bm25(chunks, 0, 0, 0, 2.0, 1.0) FROM chunks"
                f" WHERE chunks MATCH ? AND chunk_id IN ({marks})",
                (match, *wanted),
            ).fetchall()
        return {c: round(-r, 4) for c, r in rows}

    def passage(self, chunk_id: str) -> Passage | None:
        """One chunk in full, by id, as a citation names it; None when it is not stored."""
        with self._connect() as db:
            row = db.execute(
                "SELECT chunk_id, doc_id, namespace, title, body FROM chunks WHERE chunk_id = ?",
                (chunk_id,),
            ).fetchone()
        if row is None:
            return None
        c, d, n, t, b = row
        return Passage(chunk_id=c, doc_id=d, namespace=n, title=t, text=b, score=0.0)

    def document_ids(self, namespace: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT doc_id FROM documents WHERE namespace = ?", (namespace,))
            return {r[0] for r in rows}


def _readable(file: Path, inside: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or none and why it is skipped (a link out, too big, not UTF-8)."""
    if not file.resolve().is_relative_to(inside):
        return None, "a link to outside the folder"
    size = file.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        return None, f"{size} bytes, over {MAX_DOCUMENT_BYTES}"
    raw = file.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    return raw, ""
