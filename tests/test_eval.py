"""The evaluation set and its scoring: grounded in the corpus, and the figures it reports."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from harness.eval.dataset import EvalItem, load
from harness.eval.run import team_version
from harness.eval.score import corpus_chunks, grounded, score_research, score_team
from harness.eval.summary import summarise
from harness.testing.cli import cli_env
from harness.testing.stack import ROOT, running_workers
from keel.payloads.agents import CriterionScore
from keel.payloads.coordinator import MultiAgentReport
from keel.payloads.llm import Budget, Usage
from keel.payloads.research import Citation, NodeVisit, ResearchReport, RubricReview
from keel.payloads.routing import DataRoute
from keel.rules.extractive import NOT_IN_CORPUS

EVALSET = load()
RUBRIC = load_contracts().rubrics["answer"]
CORPORA = {"demo", "demo-v1", "demo-ko", "postmortems"}
ANSWERED = [q for q in EVALSET.questions if q.in_corpus]


def test_the_eval_set_has_forty_questions_over_four_corpora_in_english_and_korean() -> None:
    assert len(EVALSET.questions) >= 40
    ids = [q.id for q in EVALSET.questions]
    assert len(set(ids)) == len(ids)
    assert {q.namespace for q in ANSWERED} == CORPORA
    korean = [q for q in EVALSET.questions if any("\uac00" <= c <= "\ud7a3" for c in q.question)]
    assert len(korean) >= 5
    assert len([q for q in EVALSET.questions if not q.in_corpus]) >= 5


@pytest.mark.parametrize("item", ANSWERED, ids=lambda q: q.id)
def test_every_fact_is_stated_in_a_chunk_that_answers_it(item: EvalItem) -> None:
    chunks = corpus_chunks()
    assert all(c.startswith(f"{item.namespace}/") for c in item.chunks)
    text = " ".join(chunks[c] for c in item.chunks)  # a KeyError names a chunk that is not one
    stated = item.stated(text)
    assert all(stated), [f for f, ok in zip(item.facts, stated, strict=True) if not ok]
    assert not item.contradicted(text)
    # Each answering chunk states at least one fact: none is listed for its document alone.
    assert all(any(item.stated(chunks[c])) for c in item.chunks)


def test_the_answering_chunks_are_found_by_searching_the_question(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents.db")
    for corpus in CORPORA:
        store.ingest_folder(ROOT / "corpus" / corpus, corpus)
    missed = [
        item.id
        for item in ANSWERED
        if not {p.chunk_id for p in store.search(item.namespace, [item.question], 5)}
        & set(item.chunks)
    ]
    assert len(missed) <= 3, missed


def test_a_sentence_is_grounded_when_one_passage_holds_most_of_its_words() -> None:
    passage = "The retried activity sends the same key, taken from the workflow id."
    assert grounded("The retried activity sends the same key. [1]", [passage]) == (1, 1)
    assert grounded("Bananas are yellow fruit grown in warm places.", [passage]) == (0, 1)


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


def test_a_teams_not_in_the_documents_answer_counts_as_said_not_as_a_draft_passing() -> None:
    kafka = next(q for q in EVALSET.questions if q.id == "none-kafka")
    answer = MultiAgentReport(
        request=kafka.question,
        answer=NOT_IN_CORPUS,
        citations=[],
        passed=False,
        rubric="report",
        rounds=[],
        researchers=[],
        data_route=DataRoute(language="en", namespaces=["demo"]),
        usage=Usage(),
        budget=Budget(),
        flags=["not_in_corpus"],
    )
    scored = score_team(kafka, answer, RUBRIC, "local", 1.0)
    assert scored.said_not_in_corpus
    # No draft was written, so none passed the checks.
    assert not scored.passed_checks


async def test_python_m_eval_reports_figures_per_provider_and_flow(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.eval",
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


async def test_python_m_eval_stack_runs_on_the_server_and_workers_it_is_pointed_at(
    client: Client, store: DocumentStore, server_address: str, tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    async with running_workers(client, store) as settings:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness.eval", "--stack",
            "--provider", "scripted", "--model", "refine_and_revise",
            "--ids", "keys-what,keys-same-on-retry", "--out", str(out),
            cwd=ROOT,
            env={
                **os.environ,
                "TEMPORAL_ADDRESS": server_address,
                **cli_env(settings),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, stderr.decode()[-2000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "stack"
    # In the order asked for, each on the workers the test started, its corpus ingested.
    assert [r["id"] for r in result["runs"]] == ["keys-what", "keys-same-on-retry"]
    assert all(r["recall"] is not None and not r["error"] for r in result["runs"])
    assert store.document_ids("demo-ko")


def test_a_team_is_asked_for_the_first_edition_only_for_its_questions() -> None:
    """The team routes to the newest edition; a first-edition question pins version 1."""
    contracts = load_contracts()
    by_id = {q.id: q for q in EVALSET.questions}
    assert team_version(by_id["v1-token-memory"], contracts, "public") == "1"
    assert team_version(by_id["keys-what"], contracts, "public") is None
    assert team_version(by_id["ko-backoff"], contracts, "public") is None
    assert team_version(by_id["pm-dedup-cause"], contracts, "restricted") is None
