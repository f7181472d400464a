"""The SQLite FTS5 store: ingestion, bm25 ranking, namespaces, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.documents.chunking import MAX_CHUNK_CHARS, parse_document
from activities.documents.store import (
    MAX_DOCUMENT_BYTES,
    DocumentStore,
    IngestPathError,
    fts_query,
)
from tests.conftest import DEMO_CORPUS


@pytest.fixture
def fresh(tmp_path: Path) -> DocumentStore:
    return DocumentStore(tmp_path / "docs.db")


def test_ingest_counts_documents_and_skips_unchanged_ones(fresh: DocumentStore) -> None:
    files = sorted(DEMO_CORPUS.glob("*.md"))
    first = fresh.ingest_folder(DEMO_CORPUS, "demo")
    assert first.documents == len(files) > 0
    assert first.chunks >= len(files)
    again = fresh.ingest_folder(DEMO_CORPUS, "demo")
    assert (again.documents, again.unchanged, again.chunks) == (0, len(files), 0)
    assert fresh.document_ids("demo") == {f"demo/{f.stem}" for f in files}


def test_changed_file_replaces_its_chunks(fresh: DocumentStore, tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    doc = folder / "note.md"
    doc.write_text("# Note\n\nThe walrus protocol uses tusks.\n")
    fresh.ingest_folder(folder, "t")
    doc.write_text("# Note\n\nThe heron protocol uses beaks.\n")
    result = fresh.ingest_folder(folder, "t")
    assert result.documents == 1
    assert fresh.search("t", ["walrus"], 5) == []
    assert [p.chunk_id for p in fresh.search("t", ["heron"], 5)] == ["t/note#0"]


def test_search_ranks_the_document_on_the_topic_first(store: DocumentStore) -> None:
    hits = store.search("demo", ["circuit breaker half-open"], 5)
    assert hits[0].doc_id == "demo/circuit-breakers"
    assert hits == sorted(hits, key=lambda p: p.score, reverse=True)
    assert all(len(p.text) <= MAX_CHUNK_CHARS for p in hits)


def test_namespaces_are_isolated(store: DocumentStore) -> None:
    assert store.search("demo", ["idempotency"], 3)
    assert store.search("other", ["idempotency"], 3) == []


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NOT AND OR", "(near*", "idempotency: key^2 -x", "😀 ☃"]
)
def test_fts_syntax_in_queries_cannot_break_the_search(store: DocumentStore, query: str) -> None:
    store.search("demo", [query], 3)  # must not raise


def test_fts_query_drops_stopwords_and_quotes_terms() -> None:
    assert fts_query(["How do the retries work?"]) == '"retries" OR "work"'
    assert fts_query(["the of a"]) is None


def test_oversized_and_binary_files_are_skipped_with_a_reason(
    fresh: DocumentStore, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "big.txt").write_text("x" * (MAX_DOCUMENT_BYTES + 1))
    (folder / "bad.md").write_bytes(b"\xff\xfe\x00 not utf-8")
    (folder / "ok.txt").write_text("Timeouts bound each step.")
    result = fresh.ingest_folder(folder, "m")
    assert result.documents == 1
    assert sorted(s.split(":")[0] for s in result.skipped) == ["bad.md", "big.txt"]


def test_missing_folder_is_a_clear_error(fresh: DocumentStore, tmp_path: Path) -> None:
    with pytest.raises(IngestPathError, match="not a folder"):
        fresh.ingest_folder(tmp_path / "nope", "x")


def test_chunking_keeps_headings_with_their_paragraph_and_splits_long_ones() -> None:
    long = " ".join(["A sentence about retries."] * 60)
    parsed = parse_document(f"# Title\n\nIntro.\n\n## Retries\n\n{long}\n", "fallback")
    assert parsed.title == "Title"
    assert parsed.chunks[0] == "Intro."
    assert parsed.chunks[1].startswith("Retries: A sentence")
    assert len(parsed.chunks) > 2
    assert all(len(c) <= MAX_CHUNK_CHARS for c in parsed.chunks)
