"""The research flow's input, per-node outputs, progress and report."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from keel.payloads.agents import CriterionScore
from keel.payloads.checks import CheckFailure
from keel.payloads.clearance import SecurityLevel
from keel.payloads.documents import Passage
from keel.payloads.llm import Budget, Fallback, ModelChoice, Usage

# Output schemas are small on purpose: a 135M-parameter model fills them under a
# JSON-schema grammar, and the bounds keep a runaway generation short.


SearchQuery = Annotated[str, Field(min_length=2, max_length=60)]


class ResearchPlan(BaseModel):
    """Plan node: what to search for."""

    queries: list[SearchQuery] = Field(min_length=1, max_length=3)


class RefinedQueries(BaseModel):
    """RefineQuery node: new searches when evidence was thin."""

    queries: list[SearchQuery] = Field(min_length=1, max_length=3)


class Draft(BaseModel):
    """Write node: the answer and which numbered passages support it."""

    answer: str = Field(min_length=20, max_length=800)
    citations: list[Annotated[int, Field(ge=1, le=20)]] = Field(min_length=1, max_length=5)


class EvidenceSet(BaseModel):
    """Retrieve node: passages gathered so far, best first."""

    passages: list[Passage] = Field(default_factory=list)

    @property
    def documents(self) -> int:
        return len({p.doc_id for p in self.passages})


class RubricReview(BaseModel):
    """A review decided by the rubric: the criteria's scores, weighted, against the threshold.

    `passed` is the rubric's threshold applied to `weighted_score`, never the model's word.
    """

    rubric: str
    scores: list[CriterionScore]
    weighted_score: float
    threshold: float
    passed: bool
    feedback: str = ""


class Candidate(BaseModel):
    """A draft with the passages it was written from and, once reviewed, the rubric's review.

    Defined here rather than in the workflow module: the sandbox re-runs a workflow
    module for every run, and building a pydantic class each time took about 6 % of
    the worker's CPU samples in a burst of flows (see README, Benchmarks).
    """

    draft: Draft
    passages: list[Passage]
    review: RubricReview | None = None
    failures: list[CheckFailure] = Field(
        default_factory=list, description="check rules the draft broke"
    )
    extractive: bool = False

    @property
    def score(self) -> float:
        """What ranks drafts for the best one: the rubric's weighted score (0 unreviewed)."""
        return self.review.weighted_score if self.review is not None else 0.0


class ResearchInput(BaseModel):
    """Start a research run; every bound has a default so old runs replay."""

    question: str = Field(min_length=3, max_length=2000)
    namespace: str = "demo"
    namespaces: list[str] = Field(
        default_factory=list, description="searched in addition to `namespace`"
    )
    clearance: SecurityLevel = Field(
        default="public", description="the store refuses namespaces above it"
    )
    model: ModelChoice = Field(default_factory=ModelChoice)
    fallback_models: list[ModelChoice] = Field(
        default_factory=list, description="tried in order when the model before fails"
    )
    llm_task_queue: str = "llm"
    max_refinements: int = Field(default=2, ge=0, le=10)
    max_revisions: int = Field(default=2, ge=0, le=10)
    max_reasks: int = Field(default=2, ge=0, le=5)
    min_evidence: int = Field(default=2, ge=1, le=20)
    evidence_limit: int = Field(default=5, ge=1, le=20)
    budget: Budget = Field(default_factory=Budget)
    stream_tokens: bool = Field(
        default=False,
        description="publish the model's output as it is written to the live channel"
        " (batched signals: more history events)",
    )


class Citation(BaseModel):
    """A cited passage, pointing at a real document and chunk."""

    number: int
    doc_id: str
    chunk_id: str
    title: str
    passage: str


class NodeVisit(BaseModel):
    node: str
    outcome: str


RunStatus = Literal["running", "delivered", "failed", "cancelled"]


class ResearchProgress(BaseModel):
    """What the `progress` query returns while the flow runs."""

    status: RunStatus = "running"
    node: str = "plan"
    iteration: int = Field(default=0, description="plan rounds started")
    refinements: int = 0
    revisions: int = 0
    rewrites: int = Field(default=0, description="drafts the checks sent back to the writer")
    reasks: int = 0
    evidence: int = 0
    usage: Usage = Field(default_factory=Usage)
    visits: list[NodeVisit] = Field(default_factory=list)
    fallbacks: list[Fallback] = Field(default_factory=list)


class ResearchReport(BaseModel):
    """Deliver node: the answer, its citations and how it was reached."""

    question: str
    answer: str
    citations: list[Citation]
    review_score: int | None = None
    review_passed: bool = False
    flags: list[str] = Field(
        default_factory=list,
        description="why the report is best-effort, e.g. max_revisions_reached",
    )
    iterations: int
    refinements: int
    usage: Usage
    provider: str
    model: str
    visits: list[NodeVisit]
    prompts: dict[str, str] = Field(
        default_factory=dict, description="prompt id -> hash of the template version used"
    )
    reasks: int = 0
    fallbacks: list[Fallback] = Field(default_factory=list)
    review: RubricReview | None = Field(
        default=None, description="the delivered draft's rubric review, when it had one"
    )
    reviews: list[RubricReview] = Field(
        default_factory=list, description="every rubric review of the run, in order"
    )
    check_failures: list[CheckFailure] = Field(
        default_factory=list, description="rules the delivered model draft broke"
    )
    extractive: bool = Field(
        default=False, description="the answer is the passages' own sentences, not a draft"
    )
    revisions: int = 0
    rewrites: int = 0
    decoding: dict[str, float] = Field(
        default_factory=dict, description="the model's sampling settings, when it reports them"
    )
    retrieved: list[str] = Field(
        default_factory=list,
        description="chunk ids of the evidence the writer was shown, best first",
    )
