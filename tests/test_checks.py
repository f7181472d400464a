"""The deterministic draft checks, one rule at a time, on drafts seen from a small model."""

from __future__ import annotations

import pytest

from keel.rules.checks import (
    CITATIONS,
    DEBRIS,
    INTERNAL,
    REPETITION,
    TRUNCATED,
    VERBATIM,
    check_draft,
    query_problem,
    scrub_internal,
)
from keel.rules.extractive import extract_answer, extract_for_questions, relevance, relevant

KEYS = (
    "An idempotency key is a unique string that the client sends with a side-effecting"
    " request. The receiving service stores the key together with the first result. When a"
    " request arrives with a key it has already seen, the service returns the stored result"
    " and performs no new side effect."
)
DURABLE = (
    "In a durable workflow, an activity may run more than once: a worker can crash after the"
    " side effect landed. Because the key comes from the workflow id and step, the retried"
    " activity sends the same key, and the external service recognises the repeat."
)
BREAKERS = "A circuit breaker opens after repeated failures and fails calls fast until a cool-down."
SHOWN = [KEYS, DURABLE, BREAKERS]
GOOD = (
    "A service that sees a key again returns the stored result instead of repeating the side"
    " effect [1]. The retried activity sends the same key, so the repeat is recognised [2]."
)


def rules(answer: str, citations: list[int], internal: tuple[str, ...] = ()) -> list[str]:
    return check_draft(answer, citations, SHOWN, internal).rules


def test_a_grounded_complete_answer_passes_every_rule() -> None:
    assert rules(GOOD, [1, 2]) == []


def test_citing_a_passage_the_writer_was_not_shown_fails() -> None:
    check = check_draft(GOOD, [1, 7], SHOWN)
    assert check.rules == [CITATIONS]
    assert "[7]" in check.feedback


def test_citing_a_passage_that_says_nothing_the_answer_says_fails() -> None:
    # The wrong passage: the breaker passage supports nothing about keys.
    assert rules("The service returns the stored result for a repeated key.", [3]) == [CITATIONS]


def test_an_inline_marker_outside_the_passages_fails() -> None:
    assert rules(GOOD.replace("[2]", "[9]"), [1, 2]) == [CITATIONS]


def test_degenerate_repetition_fails() -> None:
    assert REPETITION in rules("A performance of a performance of a performance of a key.", [1])


def test_a_repeated_sentence_fails() -> None:
    sentence = "The service returns the stored result for a repeated key."
    assert REPETITION in rules(f"{sentence} {sentence}", [1])


def test_mostly_a_verbatim_copy_of_a_passage_fails() -> None:
    copied = (
        "When a request arrives with a key it has already seen, the service returns the"
        " stored result and performs no new side effect."
    )
    check = check_draft(copied, [1], SHOWN)
    assert check.rules == [VERBATIM]
    assert "[1]" in check.feedback


@pytest.mark.parametrize("debris", ["{ 2}", "{", '"]: {', "$passages", "`code`"])
def test_template_debris_fails(debris: str) -> None:
    answer = GOOD.replace("instead of", f"instead {debris} of")
    assert rules(answer, [1, 2]) == [DEBRIS]


def test_an_answer_cut_off_at_the_output_limit_fails() -> None:
    cut = "A service that sees a key again returns the stored result instead of repeating the"
    assert rules(cut, [1]) == [TRUNCATED]


def test_a_closing_citation_after_the_full_stop_is_not_a_cut() -> None:
    assert rules("The retried activity sends the same key. [2]", [2]) == []


def test_internal_feedback_in_the_text_fails() -> None:
    leaked = "Feedback on the last version: the draft did not pass the rubric. " + GOOD
    assert rules(leaked, [1, 2]) == [INTERNAL]


def test_a_tool_error_the_team_saw_in_the_text_fails() -> None:
    error = "query '{ 2}' is too short for a search"
    answer = GOOD + " The query is too short for a search."
    assert rules(answer, [1, 2], (error,)) == [INTERNAL]
    assert rules(GOOD, [1, 2], (error,)) == []


def test_a_flagged_draft_goes_out_without_its_internal_sentences() -> None:
    error = "search_documents arguments invalid: query: '{ 2}' is too short"
    leaked = (
        "Feedback on the last version: the draft did not pass the rubric. "
        + GOOD
        + " The query { 2} is too short."
    )
    assert scrub_internal(leaked, (error,)) == GOOD


def test_korean_answers_are_checked_on_their_own_words() -> None:
    passage = "재시도는 지수 백오프로 간격을 늘립니다. 지터는 동시에 몰리는 재시도를 흩어 놓습니다."
    answer = "재시도는 지수 백오프와 지터로 간격을 늘려 서비스에 부담을 주지 않습니다."
    assert check_draft(answer, [1], [passage]).rules == []


@pytest.mark.parametrize(
    ("query", "real"),
    [('"]: {\n  "', False), ("::", False), ("{ 2}", False), ("idempotency key", True)],
)
def test_plan_queries_must_be_real_search_queries(query: str, real: bool) -> None:
    assert (query_problem(query) is None) is real


def test_an_extract_cites_the_passages_its_sentences_come_from() -> None:
    extract = extract_answer("Does the retried activity send the same key?", SHOWN)
    assert extract is not None
    assert "the retried activity sends the same key" in extract.answer
    # KEYS shares "key" with the question, but DURABLE holds the rest of it: one
    # passage answers, and a sentence from its neighbour would cite one that does not.
    assert extract.citations == [2]
    for number in extract.citations:
        assert f"[{number}]" in extract.answer
    # An extract has no debris, no cut and no stray citation.
    assert set(check_draft(extract.answer, extract.citations, SHOWN).rules) <= {VERBATIM}


def test_an_extract_leaves_out_the_title_and_section_a_passage_starts_with() -> None:
    shown = f"Idempotency Keys: Keys and durable workflows: {DURABLE}"
    extract = extract_answer("Does the retried activity send the same key?", [shown])
    assert extract is not None
    assert extract.answer.startswith("In a durable workflow, an activity may run")
    assert "Keys and durable workflows" not in extract.answer


def test_an_extract_takes_the_passage_about_the_question_not_the_words_asked_with() -> None:
    # "should" is how the question is asked; the first passage shares it and "errors",
    # the second "errors" and "retried": the second is about the question.
    asked_with = "Every team should log its errors in one place, as a good team should."
    answers = "Only transient errors are retried: timeouts and connection resets."
    extract = extract_answer("Which errors should be retried?", [asked_with, answers])
    assert extract is not None
    assert extract.citations == [2]


def test_an_extract_on_a_tie_takes_the_passage_retrieval_ranked_first() -> None:
    first = "A saga undoes finished steps when a later step fails, newest first."
    second = "A saga records each finished step so that an operator can see it."
    assert extract_answer("What is a saga?", [first, second]) == extract_answer(
        "What is a saga?", [first]
    )


def test_an_extract_takes_the_passage_the_store_ranks_first_for_the_question() -> None:
    question = "Does the retried activity send the same key?"
    # By words, DURABLE; the store's ranking (with the corpus's term weights) decides.
    assert extract_answer(question, SHOWN).citations == [2]  # type: ignore[union-attr]
    ranked = extract_answer(question, SHOWN, [3.5, 1.2, 0.0])
    assert ranked is not None
    assert ranked.citations == [1]
    # Ranks that score nothing, or do not match the passages, fall back to the words.
    assert extract_answer(question, SHOWN, [0.0, 0.0, 0.0]).citations == [2]  # type: ignore[union-attr]
    assert extract_answer(question, SHOWN, [3.5]).citations == [2]  # type: ignore[union-attr]


def test_a_team_extract_answers_each_sub_question_from_its_own_passage() -> None:
    extract = extract_for_questions(
        ["Does the retried activity send the same key?", "When does a circuit breaker open?"],
        SHOWN,
    )
    assert extract is not None
    assert extract.citations == [2, 3]
    assert "sends the same key" in extract.answer
    assert "circuit breaker opens" in extract.answer
    assert extract_for_questions(["Quelle heure est-il?"], SHOWN) is None


def test_a_team_extract_takes_each_sub_questions_ranks_when_given() -> None:
    questions = [
        "Does the retried activity send the same key?",
        "When does a circuit breaker open?",
    ]
    # One row per question: the first ranks passage 1 first, against its words.
    extract = extract_for_questions(questions, SHOWN, [[3.5, 1.2, 0.0], [0.0, 0.0, 2.0]])
    assert extract is not None
    assert extract.citations == [1, 3]
    # Rows that do not match the questions are not used: the words decide.
    assert extract_for_questions(questions, SHOWN, [[3.5, 1.2, 0.0]]) == extract_for_questions(
        questions, SHOWN
    )


def test_no_extract_when_nothing_matches_the_question() -> None:
    assert extract_answer("Quelle heure est-il?", SHOWN) is None


def test_a_passage_is_relevant_when_it_holds_half_the_questions_words() -> None:
    assert relevance("Does the retried activity send the same key?", DURABLE) == 0.8
    assert relevant("When does a circuit breaker open?", SHOWN)
    # A question about something else shares a word or two with the passages, not half.
    assert not relevant("How does the Raft consensus algorithm elect a leader?", SHOWN)
    assert not relevant("Which activity should a new worker learn first?", [BREAKERS])
    assert not relevant("Any question at all?", [])


def test_an_extract_leaves_out_a_korean_passages_title_and_section() -> None:
    sentence = "키가 워크플로 ID에서 나오므로 재시도된 액티비티도 같은 키를 보냅니다."
    question = "재시도된 액티비티는 같은 키를 보내나요?"
    extract = extract_answer(question, [f"멱등성 키: 키: {sentence}"])
    assert extract is not None
    assert extract.answer == f"{sentence} [1]"
