"""Retrieval and ingestion payloads."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchRequest(BaseModel):
    """One retrieval call: the queries of a plan or refinement, in one namespace."""

    namespace: str
    queries: list[str] = Field(min_length=1)
    limit: int = Field(default=5, ge=1, le=50)


class Passage(BaseModel):
    """A passage that can be cited: a real chunk of a stored document."""

    doc_id: str
    chunk_id: str
    title: str
    text: str
    score: float = Field(description="bm25 relevance, higher is better")
    namespace: str = ""


class SearchResult(BaseModel):
    passages: list[Passage]


class IngestRequest(BaseModel):
    """A folder readable by the worker, ingested into one namespace."""

    path: str
    namespace: str = "demo"


class IngestResult(BaseModel):
    namespace: str
    documents: int = Field(description="documents added or changed")
    unchanged: int
    chunks: int
    skipped: list[str] = Field(default_factory=list, description="files not ingested, with why")
