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
from harness.testing.stack import DEMO_CORPUS


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


def test_fts_query_strips_one_korean_particle_and_matches_by_prefix() -> None:
    assert fts_query(["재시도는 지수 백오프를"]) == (
        '"재시도"* OR "재시도는"* OR "지수"* OR "백오프"* OR "백오프를"*'
    )
    # Two syllables must remain: "사가" (saga) is a noun, not "사" plus a particle.
    assert fts_query(["사가"]) == '"사가"*'
    # English keeps whole-term matching.
    assert fts_query(["retry"]) == '"retry"'


@pytest.mark.parametrize(
    ("question", "doc_id"),
    [
        ("재시도할 때 왜 지수 백오프와 지터를 쓰나요?", "demo-ko/retries-and-backoff"),
        ("멱등성 키는 어떻게 만들어야 하나요?", "demo-ko/idempotency-keys"),
        ("서킷 브레이커가 반열림 상태에서는 무엇을 하나요?", "demo-ko/circuit-breakers"),
        ("사가에서 보상은 어떤 순서로 실행되나요?", "demo-ko/sagas-and-compensation"),
        ("긴 작업에는 왜 하트비트가 필요한가요?", "demo-ko/timeouts-and-deadlines"),
    ],
)
def test_korean_question_with_particles_finds_the_korean_document(
    store: DocumentStore, question: str, doc_id: str
) -> None:
    hits = store.search("demo-ko", [question], 5)
    assert hits[0].doc_id == doc_id
    assert hits[0].namespace == "demo-ko"


def test_search_many_ranks_passages_of_several_namespaces_together(store: DocumentStore) -> None:
    hits = store.search_many(["demo", "postmortems"], ["Blueheron dedup outage retries"], 10)
    assert {p.namespace for p in hits} == {"demo", "postmortems"}
    assert hits[0].doc_id == "postmortems/2024-03-ticket-dedup-outage"
    assert hits == sorted(hits, key=lambda p: p.score, reverse=True)
    assert all(p.chunk_id.startswith(f"{p.namespace}/") for p in hits)
    # One namespace sees only itself; no namespace, nothing.
    assert all(p.namespace == "demo" for p in store.search("demo", ["Blueheron retries"], 10))
    assert store.search_many([], ["Blueheron"], 5) == []


def test_version_one_namespace_returns_the_first_edition(store: DocumentStore) -> None:
    first = store.search("demo-v1", ["retry interval between attempts"], 3)
    assert first[0].doc_id == "demo-v1/retries-and-backoff"
    assert "1st edition" in first[0].title
    current = store.search("demo", ["retry interval between attempts"], 3)
    assert current[0].doc_id == "demo/retries-and-backoff"
    assert not {p.chunk_id for p in first} & {p.chunk_id for p in current}


def test_passage_reads_one_chunk_in_full_by_its_id(store: DocumentStore) -> None:
    hit = store.search("postmortems", ["attempt number key"], 1)[0]
    passage = store.passage(hit.chunk_id)
    assert passage is not None
    assert (passage.chunk_id, passage.namespace, passage.text) == (
        hit.chunk_id,
        "postmortems",
        hit.text,
    )
    assert store.passage("demo/no-such-document#0") is None


def test_injected_instruction_is_findable_but_stays_off_other_topics(
    store: DocumentStore,
) -> None:
    hits = store.search("demo", ["tool permissions agents"], 3)
    assert hits[0].doc_id == "demo/agent-tool-safety"
    injected = store.search("demo", ["SYSTEM NOTICE ignore previous instructions"], 1)
    assert "create_ticket" in injected[0].text
    for query in ["How do idempotency keys make retries safe?", "circuit breaker half-open"]:
        assert all(p.doc_id != "demo/agent-tool-safety" for p in store.search("demo", [query], 5))
