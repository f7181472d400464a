"""The evaluation set and its scoring: grounded in the corpus, and the figures it reports."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from eval.dataset import load
from eval.score import score_research, summarise
from models.agents import CriterionScore
from models.llm import Usage
from models.research import Citation, NodeVisit, ResearchReport, RubricReview
from tests.conftest import DEMO_CORPUS, ROOT

EVALSET = load()
RUBRIC = load_contracts().rubrics["answer"]


def test_the_eval_set_has_thirty_questions_with_unique_ids() -> None:
    assert len(EVALSET.questions) >= 30
    ids = [q.id for q in EVALSET.questions]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("item", EVALSET.questions, ids=lambda q: q.id)
def test_every_fact_is_stated_in_a_document_that_answers_it(item: object) -> None:
    from eval.dataset import EvalItem

    assert isinstance(item, EvalItem)
    text = " ".join(
        (DEMO_CORPUS / f"{doc.split('/', 1)[1]}.md").read_text(encoding="utf-8")
        for doc in item.docs
    )
    stated = item.stated(text)
    assert all(stated), [f for f, ok in zip(item.facts, stated, strict=True) if not ok]
    assert not item.contradicted(text)


def test_the_answering_documents_are_found_by_searching_the_question(
    store: DocumentStore,
) -> None:
    missed = [
        item.id
        for item in EVALSET.questions
        if not {p.doc_id for p in store.search("demo", [item.question], 5)} & set(item.docs)
    ]
    assert len(missed) <= 3, missed


def report(answer: str, **overrides: object) -> ResearchReport:
    values: dict[str, object] = {
        "question": "q",
        "answer": answer,
        "citations": [
            Citation(
                number=1,
                doc_id="demo/idempotency-keys",
                chunk_id="demo/idempotency-keys#3",
                title="Idempotency Keys",
                passage="the retried activity sends the same key",
            )
        ],
        "iterations": 1,
        "refinements": 0,
        "usage": Usage(calls=3, tokens_in=900, tokens_out=100),
        "provider": "local",
        "model": "m",
        "visits": [NodeVisit(node="deliver", outcome="delivered")],
    }
    values.update(overrides)
    return ResearchReport.model_validate(values)


def review(scores: tuple[int, int, int], passed: bool) -> RubricReview:
    named = dict(zip(("relevance", "grounding", "clarity"), scores, strict=True))
    return RubricReview(
        rubric="answer",
        scores=[
            CriterionScore.model_validate({"criterion": c, "score": s}) for c, s in named.items()
        ],
        weighted_score=RUBRIC.weighted_score(named),
        threshold=RUBRIC.pass_threshold,
        passed=passed,
    )


def test_scores_count_facts_contradictions_and_unflagged_bad_answers() -> None:
    keys = next(q for q in EVALSET.questions if q.id == "keys-same-on-retry")
    good = score_research(
        keys,
        report(
            "The retried activity sends the same key, taken from the workflow id. [1]",
            review=review((4, 4, 4), True),
            review_passed=True,
        ),
        RUBRIC,
        2.0,
    )
    assert (good.facts_stated, good.contradictions, good.unflagged_bad) == (2, [], [])
    assert good.verdict_matches_rubric
    assert good.citations_on_topic == 1

    inverted = score_research(keys, report("The retried activity sends a new key."), RUBRIC, 1)
    assert inverted.contradictions == ["sends a new key"]

    cut = score_research(
        keys, report("A performance of a performance of a performance of"), RUBRIC, 1
    )
    assert set(cut.unflagged_bad) == {"repetition", "truncated"}
    flagged = report(
        "A performance of a performance of a performance of",
        flags=["check_failed:repetition", "check_failed:truncated"],
    )
    assert score_research(keys, flagged, RUBRIC, 1).unflagged_bad == []

    # A verdict that is not the rubric's threshold on its scores is caught.
    lying = report("The same key. [1]", review=review((3, 3, 5), True), review_passed=True)
    assert score_research(keys, lying, RUBRIC, 1).verdict_matches_rubric is False

    summary = summarise([good, inverted])[0]
    assert (summary.runs, summary.contradictions, summary.fact_coverage) == (2, 1, 0.5)


async def test_python_m_eval_reports_figures_per_provider_and_flow(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eval",
        "--provider", "scripted", "--model", "refine_and_revise", "--limit", "2",
        "--out", str(out),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, stderr.decode()[-2000:]
    # The dev server writes its banner first; the table follows it.
    header = next(line for line in stdout.decode().splitlines() if line.startswith("provider"))
    assert header.split()[:4] == ["provider", "flow", "runs", "failed"]
    result = json.loads(out.read_text())
    (summary,) = result["summary"]
    assert (summary["provider"], summary["flow"], summary["runs"]) == ("scripted", "research", 2)
    assert summary["verdicts_matching_rubric"] == "2/2"
    assert summary["unflagged_bad"] == 0
    assert len(result["runs"]) == 2
    assert result["machine"]["cores"]
