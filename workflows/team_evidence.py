"""What the team's writer reads: the passages by id, fetched once per run, and their ranks.

The draft checks, the relevance test and the extractive fallback all read the passages as
the writer was shown them; one local activity fetches them, scored against the
sub-questions (`asked`) so the extract can rank sentences.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents.activities import DocumentActivities
    from keel.graphs.policies import SEARCH_RETRY, SEARCH_TIMEOUT
    from keel.payloads.checks import CheckFailure
    from keel.payloads.contracts import FlowQuality
    from keel.payloads.coordinator import CoordinatorInput
    from keel.payloads.documents import PassagesRequest, shown_passage
    from keel.payloads.research import Draft
    from keel.rules.checks import check_draft
    from keel.rules.extractive import extract_for_questions


class TeamEvidence:
    """The passages shown, the questions they are ranked for, and text never to go out."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        # What the flow itself said to the writer or saw from tools: never reader-facing.
        self.internal: list[str] = []
        self._shown: list[str] | None = None
        # One row per question asked, one score per passage shown: the extract's ranks.
        self._ranks: list[list[float]] = []

    async def shown(self, request: CoordinatorInput, passage_ids: list[str]) -> list[str]:
        """The passages as the writer read them, fetched once per run by a local activity."""
        if self._shown is None and not passage_ids:
            self._shown = []
        if self._shown is None:
            found = await workflow.execute_local_activity_method(
                DocumentActivities.passages,
                PassagesRequest(
                    chunk_ids=passage_ids, clearance=request.clearance, rank_for=self.asked
                ),
                start_to_close_timeout=SEARCH_TIMEOUT,
                retry_policy=SEARCH_RETRY,
                summary="read the passages the writer sees",
            )
            texts = {p.chunk_id: shown_passage(p.title, p.text) for p in found.passages}
            self._shown = [texts.get(pid, "") for pid in passage_ids]
            for row in found.ranks:
                scores = {p.chunk_id: r for p, r in zip(found.passages, row, strict=True)}
                self._ranks.append([scores.get(pid, 0.0) for pid in passage_ids])
        return self._shown

    async def check(
        self, request: CoordinatorInput, draft: Draft, passage_ids: list[str]
    ) -> list[CheckFailure]:
        """The deterministic rules on a draft, before any reviewer is started."""
        shown = await self.shown(request, passage_ids)
        return check_draft(draft.answer, draft.citations, shown, self.internal).failures

    async def extract(
        self,
        request: CoordinatorInput,
        provider: str | None,
        quality: FlowQuality,
        passage_ids: list[str],
        questions: list[str],
    ) -> Draft | None:
        """The passages' best sentences for each sub-question, when the contract allows it."""
        if provider not in quality.extractive_fallback:
            return None
        shown = await self.shown(request, passage_ids)
        # Ranks when the passages were scored against these very questions.
        ranks = self._ranks if questions == self.asked else []
        extract = extract_for_questions(questions, shown, ranks)
        if extract is None:
            return None
        # Not model output, so not held to the model's output bounds.
        return Draft.model_construct(answer=extract.answer, citations=extract.citations)
