"""The research flow's check node and rubric verdicts, on the dev server with scripted answers."""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.research import activity_summaries, extractive_for_scripted, path
from harness.testing.stack import execute_scripted, plaintext, research_on_workers, running_workers
from keel.payloads.documents import shown_passage
from keel.payloads.research import ResearchReport
from keel.rules.checks import check_draft
from keel.rules.extractive import NOT_IN_CORPUS

KEYS = "How do idempotency keys make retries safe?"


async def write_feedback(client: Client, workflow_id: str) -> list[str]:
    """The `feedback` variable of every write call, read from the recorded activity inputs."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found = []
    for event in history.events:
        scheduled = event.activity_task_scheduled_event_attributes
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        if not scheduled.input.payloads:
            continue  # the contracts snapshot takes no input
        payload = await plaintext(
            client, event.activity_task_scheduled_event_attributes.input.payloads[0]
        )
        request = json.loads(payload.data)
        if request["node"] == "write":
            found.append(request["variables"]["feedback"])
    return found


def cited_texts_were_shown(report: ResearchReport) -> bool:
    return all(c.number >= 1 and c.passage for c in report.citations)


async def test_a_draft_failing_the_checks_is_rewritten_without_a_review_call(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store) as settings:
        workflow_id, report = await execute_scripted(client, settings, "checks_then_pass", KEYS)
    assert path(report) == [
        "plan:success",
        "retrieve:success",
        "check_evidence:enough evidence",
        "write:success",
        "check_draft:fail",
        "write:success",
        "check_draft:fail",
        "write:success",
        "check_draft:pass",
        "review:success",
        "verdict:pass",
        "deliver:delivered",
    ]
    # One plan, three drafts, one review: the two failing drafts cost no review call.
    assert report.usage.calls == 5
    assert report.rewrites == 2
    assert report.revisions == 0
    summaries = await activity_summaries(client, workflow_id)
    assert [s for s in summaries if s.startswith("review")] == ["review #1"]
    # The plan's debris query was never searched; the real one was.
    assert "queries_rejected" in report.flags
    assert [s for s in summaries if s.startswith("retrieve")] == [
        "retrieve: idempotency key retries"
    ]
    # Each rewrite carried the failed rule's own feedback to the writer.
    feedback = await write_feedback(client, workflow_id)
    assert feedback[0] == ""
    assert "repeats the same words" in feedback[1]
    assert "'{'" in feedback[2]
    assert report.review_passed
    assert report.check_failures == []
    assert report.answer.startswith("A key derived from the workflow")


async def test_drafts_that_never_pass_deliver_an_extract_with_correct_citations(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store, contracts=extractive_for_scripted()) as settings:
        workflow_id, report = await execute_scripted(client, settings, "never_checks", KEYS)
    assert path(report)[-2:] == ["check_draft:bound reached", "deliver:delivered"]
    assert report.extractive
    assert "extractive" in report.flags
    assert "check_failed:repetition" in report.flags
    assert "check_failed:truncated" in report.flags
    assert report.usage.calls == 4  # a plan and three drafts; no review of a failing draft
    assert not report.review_passed
    assert report.citations
    # Every sentence is followed by a citation of the passage it was taken from.
    for citation in report.citations:
        assert f"[{citation.number}]" in report.answer
    shown = [shown_passage(c.title, c.passage) for c in report.citations]
    numbers = {c.number: i for i, c in enumerate(report.citations)}
    renumbered = report.answer
    for number, index in numbers.items():
        renumbered = renumbered.replace(f"[{number}]", f"[{index + 1}]")
    rules = check_draft(renumbered, list(range(1, len(shown) + 1)), shown).rules
    assert set(rules) <= {"verbatim"}
    assert "new key" not in report.answer
    assert await activity_summaries(client, workflow_id)


async def test_without_the_extract_the_failing_draft_is_delivered_flagged_by_rule(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store) as settings:
        _, report = await execute_scripted(client, settings, "never_checks", KEYS)
    assert not report.extractive
    assert report.answer.startswith("The retried activity sends a new key")
    assert [f.rule for f in report.check_failures] == ["repetition", "truncated"]
    assert report.flags == ["check_failed:repetition", "check_failed:truncated"]
    assert not report.review_passed
    assert report.review is None


async def test_the_rubric_decides_the_verdict_not_the_models_passed(
    client: Client, store: DocumentStore
) -> None:
    _, report = await research_on_workers(
        client,
        store,
        "passed_but_below_threshold",
        "What does a circuit breaker do?",
        max_revisions=1,
    )
    # The reviewer said "passed": true, but 3, 3 and 5 weigh (2*3 + 2*3 + 5) / 5 = 3.4 < 3.5.
    assert report.review is not None
    assert report.review.weighted_score == 3.4
    assert not report.review.passed
    assert not report.review_passed
    assert "verdict:fail" in path(report)
    assert report.flags == ["max_revisions_reached"]
    assert report.revisions == 1
    # Both reviews of the run are reported, each decided by the rubric.
    assert [r.weighted_score for r in report.reviews] == [3.4, 3.4]
    assert not any(r.passed for r in report.reviews)


async def test_an_extract_after_a_failed_review_names_the_rules_the_last_draft_broke(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store, contracts=extractive_for_scripted()) as settings:
        _, report = await execute_scripted(client, settings, "review_then_checks", KEYS)
    assert report.extractive
    assert report.revisions == 1
    assert report.rewrites == 2
    assert "check_failed:repetition" in report.flags
    assert [r.weighted_score for r in report.reviews] == [2.2]


async def test_a_question_no_passage_is_about_is_answered_not_in_the_corpus(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store) as settings:
        _, report = await execute_scripted(
            client, settings, "no_evidence", "How does the Raft consensus algorithm elect a leader?"
        )
    # The plan and both refinements found nothing about the question: no draft is written.
    assert path(report)[-2:] == ["check_evidence:nothing relevant", "deliver:delivered"]
    assert report.refinements == 2
    assert report.answer == NOT_IN_CORPUS
    assert report.flags == ["not_in_corpus"]
    assert report.citations == []
    assert report.usage.calls == 3  # a plan and two refinements
    assert not report.review_passed


async def test_drafts_the_rubric_rejects_to_the_bound_deliver_an_extract(
    client: Client, store: DocumentStore
) -> None:
    async with running_workers(client, store, contracts=extractive_for_scripted()) as settings:
        _, report = await execute_scripted(
            client,
            settings,
            "passed_but_below_threshold",
            "What does a circuit breaker do?",
            max_revisions=1,
        )
    assert path(report)[-2:] == ["verdict:bound reached", "deliver:delivered"]
    assert report.extractive
    assert report.flags == ["max_revisions_reached", "extractive"]
    assert report.review is None  # the extract was never reviewed, nor passed as such
    assert not report.review_passed
    assert [r.weighted_score for r in report.reviews] == [3.4, 3.4]
    assert report.citations
    assert all(f"[{c.number}]" in report.answer for c in report.citations)
    assert report.retrieved[: len(report.citations)]
