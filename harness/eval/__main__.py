"""`python -m harness.eval`: the evaluation set through the flows, numbers per provider and flow.

python -m harness.eval --stack --provider local          # on the running server and workers
python -m harness.eval --provider local --limit 10       # on a dev server and workers of its own
python -m harness.eval --provider scripted --model refine_and_revise
python -m harness.eval --stack --provider openai --model <name>  # the worker's KEEL_OPENAI_BASE_URL
python -m harness.eval --rescore harness/eval/results/local-research.json  # score saved runs again
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from harness.eval.dataset import EvalItem, EvalSet, load
from harness.eval.run import run_eval, run_on_stack
from harness.eval.score import ItemScore, failed, score_research, score_team
from harness.eval.summary import summarise
from harness.machine import machine
from keel.payloads.contracts import Rubric
from keel.payloads.coordinator import MultiAgentReport
from keel.payloads.llm import ModelChoice
from keel.payloads.research import ResearchReport

DEFAULT_MODELS = {"local": "smollm2-135m-instruct", "scripted": "refine_and_revise"}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--provider", action="append", choices=["local", "scripted", "openai", "anthropic"]
    )
    parser.add_argument("--model", help="model name (for scripted: the script's stem)")
    parser.add_argument("--flow", action="append", choices=["research", "report"])
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--ids", help="comma-separated question ids")
    parser.add_argument("--out", type=Path, help="write every score and the summary as JSON")
    parser.add_argument(
        "--stack",
        action="store_true",
        help="run on the running server and workers (TEMPORAL_ADDRESS, KEEL_TASK_QUEUE)"
        " instead of a dev server of its own",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--rescore", type=Path, help="score the runs saved in this JSON file again; no run"
    )
    return parser.parse_args(argv)


def table(summaries: list[dict[str, object]], markdown: bool = False) -> str:
    keys = [
        ("provider", "provider"),
        ("flow", "flow"),
        ("runs", "runs"),
        ("failed", "failed"),
        ("recall_at_5", "recall@5"),
        ("citation_precision", "cite prec"),
        ("citation_precision_docs", "cite prec (doc)"),
        ("fact_coverage", "facts"),
        ("grounded_sentences", "grounded"),
        ("not_in_corpus_said", "not-in-corpus"),
        ("refused_in_corpus", "refused answerable"),
        ("degenerate_or_truncated", "degen/trunc"),
        ("unflagged_bad", "unflagged"),
        ("passed_failing_check", "passed failing check"),
        ("verdict_agrees_with_checks", "verdict=checks"),
        ("verdicts_matching_rubric", "verdict=rubric"),
        ("passed_checks", "checks"),
        ("passed_review", "review"),
        ("extractive", "extract"),
        ("contradictions", "contra"),
        ("calls_per_run", "calls/q"),
        ("tokens_per_run", "tokens/q"),
        ("seconds_per_run", "s/q"),
    ]
    rows = [[label for _, label in keys]]
    rows += [[str(s[key]) for key, _ in keys] for s in summaries]
    if markdown:
        lines = [f"| {' | '.join(r)} |" for r in rows]
        lines.insert(1, "|" + "---|" * len(keys))
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def rescore(path: Path, evalset: EvalSet) -> list[ItemScore]:
    """The runs saved in `path`, scored again against the current eval set."""
    from activities.contracts.loader import load_contracts

    contracts = load_contracts()
    rubrics: dict[str, Rubric] = {
        flow: contracts.rubrics[contracts.quality.flow(flow).rubric]
        for flow in ("research", "report")
    }
    items = {i.id: i for i in evalset.questions}
    scores = []
    for run in json.loads(path.read_text())["runs"]:
        old = ItemScore.model_validate(run)
        item = items[old.id]
        if old.report is None:
            scores.append(failed(item, old.provider, old.flow, old.error, old.seconds))
        elif old.flow == "research":
            report = ResearchReport.model_validate(old.report)
            scores.append(score_research(item, report, rubrics["research"], old.seconds))
        else:
            team = MultiAgentReport.model_validate(old.report)
            scores.append(score_team(item, team, rubrics["report"], old.provider, old.seconds))
    return scores


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    evalset = load()
    if args.rescore:
        return _rescore(args, evalset)
    items = _chosen_items(args, evalset.questions)
    providers = args.provider or ["local"]
    choices = [
        ModelChoice.model_validate(
            {"provider": p, "model": args.model or DEFAULT_MODELS.get(p, "default")}
        )
        for p in providers
    ]
    flows = args.flow or ["research"]
    log = _ScoreLog(args, evalset)
    run = run_on_stack if args.stack else run_eval
    scores = asyncio.run(run(evalset, items, choices, flows, on_score=log.add))
    print(table([s.model_dump() for s in summarise(scores)], args.markdown))
    log.write(scores)
    return 0


def _rescore(args: argparse.Namespace, evalset: EvalSet) -> int:
    """Scores a saved run again with today's scoring, and saves it beside if asked."""
    saved = json.loads(args.rescore.read_text())
    scores = rescore(args.rescore, evalset)
    print(table([s.model_dump() for s in summarise(scores)], args.markdown))
    if args.out:
        saved.update(
            eval_set_version=evalset.version,
            summary=[s.model_dump() for s in summarise(scores)],
            runs=[s.model_dump() for s in scores],
        )
        args.out.write_text(json.dumps(saved, indent=2, ensure_ascii=False))
    return 0


def _chosen_items(args: argparse.Namespace, items: list[EvalItem]) -> list[EvalItem]:
    if args.ids:
        # In the order given: a long run that stops early has measured a mix.
        by_id = {i.id: i for i in items}
        items = [by_id[i] for i in dict.fromkeys(args.ids.split(","))]
    return items[: args.limit] if args.limit else items


class _ScoreLog:
    """Each score as it comes, on stderr and in --out: a long run keeps what it measured."""

    def __init__(self, args: argparse.Namespace, evalset: EvalSet) -> None:
        self._out: Path | None = args.out
        self._mode = "stack" if args.stack else "self-contained"
        self._version = evalset.version
        self._started = datetime.now(UTC)
        self._done: list[ItemScore] = []

    def add(self, score: ItemScore) -> None:
        print(
            f"{score.provider}/{score.flow} {score.id}: checks={score.passed_checks}"
            f" review={score.passed_review} extractive={score.extractive}"
            f" facts={score.facts_stated}/{score.facts} recall={score.recall}"
            f" not_in_corpus={score.said_not_in_corpus} calls={score.calls} {score.seconds}s"
            + (f" failed: {score.error}" if score.error else ""),
            file=sys.stderr,
        )
        self._done.append(score)
        self.write(self._done)

    def write(self, scores: list[ItemScore]) -> None:
        if self._out is None:
            return
        self._out.write_text(
            json.dumps(
                {
                    "started": self._started.isoformat(),
                    "machine": machine(),
                    "mode": self._mode,
                    "eval_set_version": self._version,
                    "summary": [s.model_dump() for s in summarise(scores)],
                    "runs": [s.model_dump() for s in scores],
                },
                indent=2,
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
