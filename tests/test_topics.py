"""A team's sub-questions: distinct, and covering every topic the request names."""

from __future__ import annotations

from keel.rules.topics import (
    distinct_covering,
    question_problem,
    real_questions,
    team_questions,
    topics,
)

REQUEST = "Write a report on how idempotency keys and circuit breakers keep agents safe"


def test_the_topics_are_the_parts_the_request_joins() -> None:
    assert topics("Write a report on retries and idempotency") == ["retries", "idempotency"]
    assert topics("Compare sagas, timeouts and retries") == ["sagas", "timeouts", "retries"]
    assert topics(REQUEST) == ["idempotency keys", "circuit breakers keep agents safe"]


def test_a_duplicate_question_gives_way_to_the_topic_nobody_asked_about() -> None:
    # Seen from a small coordinator: two researchers with one question, a topic dropped.
    questions = [
        "How do idempotency keys make retries safe?",
        "How do idempotency keys make retries safe?",
        "What is an idempotency key?",
    ]
    assert distinct_covering(REQUEST, questions, 3) == [
        "How do idempotency keys make retries safe?",
        "What is an idempotency key?",
        "What do the documents say about circuit breakers?",
    ]


def test_a_missing_topic_replaces_a_question_whose_topic_is_covered_twice() -> None:
    questions = ["How do retries work?", "What is backoff for retries?"]
    chosen = distinct_covering("Write a report on retries and idempotency", questions, 2)
    assert chosen == [
        "What do the documents say about idempotency?",
        "What is backoff for retries?",
    ]


def test_questions_that_already_cover_every_topic_are_kept_as_they_are() -> None:
    questions = [
        "How do idempotency keys make retries safe?",
        "What does a circuit breaker do when it opens?",
    ]
    assert distinct_covering(REQUEST, questions, 3) == questions


def test_sub_questions_a_researcher_cannot_take_are_dropped() -> None:
    """What a 135M coordinator returned as sub-questions, seen in the evaluation."""
    request = "Does a retried activity send the same idempotency key or a new one?"
    asked = [
        "]\nQuestion: Does a retried activity send the same idempotency key or new one?",
        "response",
        "response_type:application/json",
        "}) # Example of how to use a JSON endpoint in Python's Flask framework",
        "A retried activity's idempotency key will be sent again and the service will see it",
        "Where does a retried activity's idempotency key come from?",
        "retried activity idempotency key",
    ]
    assert real_questions(request, asked) == [
        "Where does a retried activity's idempotency key come from?",
        "retried activity idempotency key",
    ]
    assert question_problem("response", request) == "'response' shares no word with the request"
    assert question_problem("key " * 60, request) is not None


def test_a_team_asks_real_questions_or_the_request_itself_and_says_when_it_dropped_some() -> None:
    request = "Does a retried activity send the same idempotency key or a new one?"
    real = "Where does a retried activity's idempotency key come from?"
    asked, dropped = team_questions(request, ["response", real], 3, grounded=True, checked=True)
    assert (asked, dropped) == ([real], True)
    assert team_questions(request, ["response"], 3, grounded=True, checked=False) == (
        ["response"],
        True,
    )  # a run from before the checks keeps the model's own questions
    asked, dropped = team_questions(request, ["response"], 3, grounded=True, checked=True)
    assert (asked, dropped) == ([request], True)
    ungated = team_questions(request, [real, real, "response"], 1, grounded=False, checked=False)
    assert ungated == ([real], False)
