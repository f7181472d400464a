"""The team's write-and-review rounds as pure state: where each round goes, which draft is kept.

The coordinator workflow reports each checked draft, each review and each person's
notes here, and follows the outcome along `TEAM_GRAPH`. Nothing here does I/O or
reads the clock, so the round policy replays as it ran and is tested without a
server.

Semantics, in the order a round meets them:

- A draft that breaks a check rule is not reviewed. The one breaking fewest rules is
  kept as `failing`; it goes back to the writer with the rules' feedback until
  `max_rewrites` such rewrites are spent, then the rounds stop (`stopped_by`).
- A reviewed draft counts as a review unless a person's notes asked for it. The best
  scored draft is kept (ties to the later one); with approval required the latest,
  since that is the one the person decides on.
- The verdict: with approval required, a passed draft or the round limit holds the
  draft for a person; without it, a pass delivers, the round limit stops the rounds,
  and a rejection goes back to the writer with the reviewer's feedback.
- At the end the kept draft is the best reviewed one, else the best failing one. An
  extract of the passages replaces it (where the contract allows one) when no reviewed
  draft exists, or, in runs that ground their answers, when the rounds stopped at a
  bound with a rejected draft.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keel.graphs.machine import Outcome
from keel.payloads.agents import RubricScores
from keel.payloads.checks import CheckFailure
from keel.payloads.contracts import Rubric
from keel.payloads.coordinator import ReviewRound, Trigger
from keel.payloads.research import Draft
from keel.rules.extractive import NOT_IN_CORPUS

Drafted = tuple[Draft, ReviewRound]
"""A draft and the round that checked or reviewed it."""


@dataclass
class TeamRounds:
    """The rounds of one team run; the workflow holds one and asks it at each node."""

    max_rounds: int = 2
    """Reviews (not counting those a person's notes asked for) before the rounds stop."""
    max_rewrites: int = 2
    """Drafts the checks send back before the rounds stop (the flow's quality contract)."""
    require_approval: bool = False
    """A person decides on the draft; the latest reviewed draft is the one kept."""
    best: Drafted | None = None
    failing: Drafted | None = None
    rewrites: int = 0
    reviews: int = 0
    feedback: str = ""
    """What the next writer is told: the rules', the reviewer's or a person's words."""
    trigger: Trigger = "first draft"
    """Why the next draft is written."""
    stopped_by: list[CheckFailure] = field(default_factory=list)
    """The rules the draft that ended the rounds broke, when the checks ended them."""
    max_rounds_reached: bool = False
    extract: Draft | None = None
    """The passages' own sentences, when they replace the kept draft."""

    def checked(self, drafted: Drafted) -> Outcome:
        """PASS: to the reviewer; FAIL: rewrite with the rules' feedback; EXHAUSTED: stop."""
        failures = drafted[1].check_failures
        if not failures:
            return Outcome.PASS
        if self.failing is None or len(failures) < len(self.failing[1].check_failures):
            self.failing = drafted
        if self.rewrites < self.max_rewrites:
            self.rewrites += 1
            self.feedback = " ".join(f.feedback for f in failures)
            self.trigger = "checks"
            return Outcome.FAIL
        self.stopped_by = failures
        return Outcome.EXHAUSTED

    def reviewed(self, drafted: Drafted) -> None:
        """Count the review and keep the draft if it is the best so far."""
        if self.trigger != "human":
            self.reviews += 1
        score = drafted[1].weighted_score or 0
        if (
            self.best is None
            or self.require_approval
            or score >= (self.best[1].weighted_score or 0)
        ):
            self.best = drafted

    def verdict(self, review: ReviewRound) -> Outcome:
        """HOLD: a person decides; PASS: deliver; EXHAUSTED: stop; FAIL: revise."""
        if self.require_approval and (review.passed or self.reviews >= self.max_rounds):
            return Outcome.HOLD
        if review.passed:
            return Outcome.PASS
        if self.reviews >= self.max_rounds:
            self.max_rounds_reached = True
            return Outcome.EXHAUSTED
        self.feedback = review.feedback or "the draft did not pass the rubric"
        self.trigger = "reviewer"
        return Outcome.FAIL

    def revise(self, notes: str) -> Outcome:
        """A person's notes: the writer revises, the reviewer scores, approval is asked again."""
        self.feedback, self.trigger = notes, "human"
        return Outcome.FEEDBACK

    @property
    def kept(self) -> Drafted | None:
        """The best reviewed draft, else the draft that broke the fewest rules."""
        return self.best if self.best is not None else self.failing

    def extract_wanted(self, grounded: bool) -> list[CheckFailure] | None:
        """The rules to flag when an extract should replace the kept draft; None: keep it.

        `grounded`: the run was started with the grounded-answers change, which also
        replaces a rejected draft at the round limit or after the last rewrite.
        """
        best = self.best
        bounded = self.max_rounds_reached or bool(self.stopped_by)
        if grounded and best is not None and not best[1].passed and bounded:
            return list(self.stopped_by)
        if best is None and self.failing is not None:
            return list(self.failing[1].check_failures)
        return None

    def final(self, unanswered: bool) -> Drafted | None:
        """What is delivered: the documents' silence, the extract or the kept draft."""
        if unanswered:
            return (
                Draft.model_construct(answer=NOT_IN_CORPUS, citations=[]),
                ReviewRound(round=0, writer_workflow_id="", reviewer_workflow_id=""),
            )
        kept = self.kept
        if kept is not None and self.extract is not None:
            return self.extract, kept[1]
        return kept


def no_report(notes: str, passages: int) -> Drafted:
    """Only a spent budget ends the team before a draft: the research, every passage cited."""
    return (
        Draft.model_construct(
            answer="No report was written: the budget ran out first. The researchers'"
            f" notes:\n{notes or '(none)'}",
            citations=list(range(1, passages + 1)),
        ),
        ReviewRound(round=0, writer_workflow_id="", reviewer_workflow_id=""),
    )


def score_round(review: ReviewRound, scored: RubricScores, rubric: Rubric) -> None:
    """The rubric's verdict on a reviewer's scores; a criterion the rubric lacks is dropped."""
    known = {c.name for c in rubric.criteria}
    review.scores = [s for s in scored.scores if s.criterion in known]
    review.weighted_score = rubric.weighted_score({s.criterion: s.score for s in review.scores})
    review.passed = review.weighted_score >= rubric.pass_threshold
    review.feedback = scored.feedback
