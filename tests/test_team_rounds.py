"""The team's round policy and final-draft choice, as pure code: no server."""

from __future__ import annotations

from keel.graphs.machine import Outcome
from keel.graphs.team_rounds import Drafted, TeamRounds, no_report, score_round
from keel.payloads.agents import CriterionScore, RubricScores
from keel.payloads.checks import CheckFailure
from keel.payloads.contracts import Criterion, Rubric
from keel.payloads.coordinator import ReviewRound
from keel.payloads.research import Draft
from keel.rules.extractive import NOT_IN_CORPUS

RUBRIC = Rubric(
    criteria=[
        Criterion(name="grounded", description="cites the passages", weight=2),
        Criterion(name="clear", description="reads plainly", weight=1),
    ],
    pass_threshold=3.5,
)


def draft(text: str) -> Draft:
    return Draft(answer=f"{text} answer, long enough to be a draft.", citations=[1])


def broken(text: str, *rules: str) -> Drafted:
    failures = [CheckFailure(rule=r, feedback=f"fix {r}") for r in rules]
    return draft(text), ReviewRound(
        round=1, writer_workflow_id="w", reviewer_workflow_id="", check_failures=failures
    )


def reviewed(text: str, score: float | None, passed: bool = False, feedback: str = "") -> Drafted:
    review = ReviewRound(
        round=1,
        writer_workflow_id="w",
        reviewer_workflow_id="r",
        weighted_score=score,
        passed=passed,
        feedback=feedback,
    )
    return draft(text), review


def review_round(rounds: TeamRounds, drafted: Drafted) -> Outcome:
    """What the workflow does at the review and verdict nodes."""
    rounds.reviewed(drafted)
    return rounds.verdict(drafted[1])


def test_a_draft_breaking_a_rule_goes_back_with_the_rules_feedback_until_rewrites_run_out() -> None:
    rounds = TeamRounds(max_rewrites=2)
    assert rounds.checked(broken("a", "citations", "length")) is Outcome.FAIL
    assert (rounds.trigger, rounds.feedback) == ("checks", "fix citations fix length")
    assert rounds.checked(broken("b", "length")) is Outcome.FAIL
    assert rounds.checked(broken("c", "citations", "length", "internal")) is Outcome.EXHAUSTED
    assert rounds.rewrites == 2
    assert [f.rule for f in rounds.stopped_by] == ["citations", "length", "internal"]
    # The draft breaking fewest rules is the one kept, not the last.
    kept = rounds.kept
    assert kept is not None
    assert kept[0].answer.startswith("b ")


def test_a_clean_draft_goes_to_the_reviewer_and_spends_no_rewrite() -> None:
    rounds = TeamRounds(max_rewrites=0)
    assert rounds.checked(reviewed("a", None)) is Outcome.PASS
    assert rounds.rewrites == 0
    assert rounds.failing is None


def test_a_rejected_draft_is_revised_with_the_reviewers_feedback_until_the_round_limit() -> None:
    rounds = TeamRounds(max_rounds=2)
    assert review_round(rounds, reviewed("a", 2.0, feedback="cite more")) is Outcome.FAIL
    assert (rounds.trigger, rounds.feedback) == ("reviewer", "cite more")
    assert review_round(rounds, reviewed("b", 3.0)) is Outcome.EXHAUSTED
    assert rounds.max_rounds_reached
    kept = rounds.kept
    assert kept is not None
    assert kept[0].answer.startswith("b ")


def test_a_reviewer_without_feedback_still_sends_the_writer_a_reason() -> None:
    rounds = TeamRounds(max_rounds=3)
    assert review_round(rounds, reviewed("a", 2.0)) is Outcome.FAIL
    assert rounds.feedback == "the draft did not pass the rubric"


def test_a_passing_draft_is_delivered_and_kept_over_a_worse_earlier_one() -> None:
    rounds = TeamRounds(max_rounds=3)
    review_round(rounds, reviewed("a", 3.0))
    assert review_round(rounds, reviewed("b", 4.0, passed=True)) is Outcome.PASS
    kept = rounds.kept
    assert kept is not None
    assert kept[0].answer.startswith("b ")
    assert rounds.extract_wanted(grounded=True) is None


def test_a_lower_scored_revision_does_not_replace_the_best_draft() -> None:
    rounds = TeamRounds(max_rounds=2)
    review_round(rounds, reviewed("a", 3.0))
    review_round(rounds, reviewed("b", 2.0))
    kept = rounds.kept
    assert kept is not None
    assert kept[0].answer.startswith("a ")


def test_with_approval_the_latest_draft_is_held_for_a_person_and_notes_start_a_round() -> None:
    rounds = TeamRounds(max_rounds=2, require_approval=True)
    assert review_round(rounds, reviewed("a", 4.0, passed=True)) is Outcome.HOLD
    assert rounds.revise("shorter, please") is Outcome.FEEDBACK
    assert (rounds.trigger, rounds.feedback) == ("human", "shorter, please")
    # A round a person asked for does not count toward the limit, and its draft is kept
    # even when it scores lower: it is the one the person decides on.
    assert review_round(rounds, reviewed("b", 2.0, feedback="worse")) is Outcome.FAIL
    assert rounds.reviews == 1
    kept = rounds.kept
    assert kept is not None
    assert kept[0].answer.startswith("b ")
    assert review_round(rounds, reviewed("c", 2.0)) is Outcome.HOLD
    assert not rounds.max_rounds_reached


def test_at_the_round_limit_a_grounded_run_wants_an_extract_instead_of_the_rejected_draft() -> None:
    rounds = TeamRounds(max_rounds=1)
    review_round(rounds, reviewed("a", 2.0))
    assert rounds.extract_wanted(grounded=True) == []
    # Runs started before the grounded-answers change deliver the rejected draft.
    assert rounds.extract_wanted(grounded=False) is None
    extract = Draft.model_construct(answer="The passages' own sentences.", citations=[1])
    rounds.extract = extract
    final = rounds.final(unanswered=False)
    assert final is not None
    assert final[0] is extract
    assert final[1].weighted_score == 2.0


def test_a_revision_breaking_a_rule_with_no_rewrite_left_wants_an_extract_flagged_by_rule() -> None:
    rounds = TeamRounds(max_rounds=3, max_rewrites=0)
    assert review_round(rounds, reviewed("a", 2.0)) is Outcome.FAIL
    assert rounds.checked(broken("b", "internal")) is Outcome.EXHAUSTED
    wanted = rounds.extract_wanted(grounded=True)
    assert wanted is not None
    assert [f.rule for f in wanted] == ["internal"]
    # Without an extract, the reviewed draft is delivered, not the broken one.
    final = rounds.final(unanswered=False)
    assert final is not None
    assert final[0].answer.startswith("a ")


def test_with_no_draft_reviewed_the_failing_draft_is_kept_and_an_extract_wanted() -> None:
    rounds = TeamRounds(max_rewrites=0)
    rounds.checked(broken("a", "citations"))
    for grounded in (True, False):
        wanted = rounds.extract_wanted(grounded=grounded)
        assert wanted is not None
        assert [f.rule for f in wanted] == ["citations"]
    final = rounds.final(unanswered=False)
    assert final is not None
    assert final[1].check_failures[0].rule == "citations"


def test_a_request_the_documents_do_not_answer_delivers_that_and_no_draft() -> None:
    rounds = TeamRounds()
    assert rounds.final(unanswered=False) is None
    final = rounds.final(unanswered=True)
    assert final is not None
    assert final[0].answer == NOT_IN_CORPUS
    assert final[0].citations == []
    assert not final[1].passed


def test_no_report_cites_every_passage_and_carries_the_notes() -> None:
    report, review = no_report("- q: notes", 3)
    assert report.citations == [1, 2, 3]
    assert report.answer.endswith("notes:\n- q: notes")
    assert no_report("", 0)[0].answer.endswith("notes:\n(none)")
    assert not review.passed


def test_the_rubric_decides_the_pass_and_drops_criteria_it_does_not_name() -> None:
    review = ReviewRound(round=1, writer_workflow_id="w", reviewer_workflow_id="r")
    scores = RubricScores(
        scores=[
            CriterionScore(criterion="grounded", score=4),
            CriterionScore(criterion="clear", score=4),
            CriterionScore(criterion="made up", score=5),
        ],
        feedback="fine",
    )
    score_round(review, scores, RUBRIC)
    assert [s.criterion for s in review.scores] == ["grounded", "clear"]
    assert review.weighted_score == 4.0
    assert review.passed
    assert review.feedback == "fine"
    # A skipped criterion counts as the lowest score: 2*1 + 1*4 over 3 misses 3.5.
    score_round(review, RubricScores(scores=[CriterionScore(criterion="clear", score=4)]), RUBRIC)
    assert review.weighted_score == 2.0
    assert not review.passed
