"""Retrieval and ingestion payloads."""

from __future__ import annotations

from pydantic import BaseModel, Field

from keel.payloads.clearance import SecurityLevel

# What a prompt shows of one passage: the writer's prompt, the checks that judge a
# draft against it and the evaluation all read this width, so they see the same text.
PROMPT_PASSAGE_CHARS = 500


def shown_passage(title: str, text: str) -> str:
    """One passage as every prompt renders it: its title, then the text's first part."""
    return f"{title}: {text[:PROMPT_PASSAGE_CHARS]}"


class SearchRequest(BaseModel):
    """One retrieval call: the queries of a plan or refinement, in one or more namespaces.

    The caller's clearance travels with the request so that the activity can refuse
    a namespace above it, whatever routed the request there.
    """

    namespace: str
    queries: list[str] = Field(min_length=1)
    limit: int = Field(default=5, ge=1, le=50)
    namespaces: list[str] = Field(
        default_factory=list, description="searched in addition to `namespace`"
    )
    clearance: SecurityLevel = "public"
    rank_for: str = Field(
        default="",
        description="the question the search serves: searched too, its ranking fused with"
        " the queries', and every passage scored against it (Passage.question_score)",
    )

    @property
    def all_namespaces(self) -> list[str]:
        """`namespace` first, then the others, each once."""
        return list(dict.fromkeys([self.namespace, *self.namespaces]))


class Passage(BaseModel):
    """A passage that can be cited: a real chunk of a stored document."""

    doc_id: str
    chunk_id: str
    namespace: str = ""
    title: str
    text: str
    score: float = Field(
        description="bm25 relevance, or its reciprocal-rank fusion with the question's"
        " own search (SearchRequest.rank_for); higher is better"
    )
    question_score: float = Field(
        default=0.0,
        description="bm25 relevance to the request's `rank_for` question; 0 when not asked",
    )

    @property
    def shown(self) -> str:
        """The passage as the writer saw it in its prompt."""
        return shown_passage(self.title, self.text)


def numbered(shown: list[str]) -> str:
    """Passages as every prompt lists them, `[1] title: text`: the numbers citations use."""
    if not shown:
        return "(no passages found)"
    return "\n".join(f"[{i}] {text}" for i, text in enumerate(shown, 1))


class SearchResult(BaseModel):
    passages: list[Passage]
    ranks: list[list[float]] = Field(
        default_factory=list,
        description="for each PassagesRequest.rank_for question, each passage's bm25"
        " relevance to it, in the order of `passages`",
    )


class PassagesRequest(BaseModel):
    """Passages by id, read under the caller's clearance (for checks on a team's draft)."""

    chunk_ids: list[str] = Field(min_length=1, max_length=50)
    clearance: SecurityLevel = "public"
    rank_for: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="questions to score every passage against (SearchResult.ranks)",
    )


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
