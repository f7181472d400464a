"""`python -m eval`: the evaluation set through the flows, with numbers per provider and flow.

python -m eval --provider local --flow research --limit 10
python -m eval --provider scripted --model refine_and_revise
python -m eval --provider openai --model <name>   # KEEL_OPENAI_BASE_URL, e.g. llama.cpp's server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from eval.dataset import load
from eval.run import machine, run_eval
from eval.score import ItemScore, summarise
from models.llm import ModelChoice

DEFAULT_MODELS = {"local": "smollm2-135m-instruct", "scripted": "refine_and_revise"}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", action="append", choices=["local", "scripted", "openai", "anthropic"]
    )
    parser.add_argument("--model", help="model name (for scripted: the script's stem)")
    parser.add_argument("--flow", action="append", choices=["research", "report"])
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--ids", help="comma-separated question ids")
    parser.add_argument("--out", type=Path, help="write every score and the summary as JSON")
    return parser.parse_args(argv)


def table(summaries: list[dict[str, object]]) -> str:
    keys = [
        ("provider", "provider"),
        ("flow", "flow"),
        ("runs", "runs"),
        ("failed", "failed"),
        ("passed_checks", "checks"),
        ("passed_review", "review"),
        ("extractive", "extract"),
        ("citation_precision", "cite prec"),
        ("fact_coverage", "facts"),
        ("contradictions", "contra"),
        ("unflagged_bad", "unflagged"),
        ("verdicts_matching_rubric", "verdict=rubric"),
        ("reasks", "reasks"),
        ("revisions", "revisions"),
        ("rewrites", "rewrites"),
        ("tokens_per_run", "tokens/run"),
        ("seconds_per_run", "s/run"),
    ]
    rows = [[label for _, label in keys]]
    rows += [[str(s[key]) for key, _ in keys] for s in summaries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    evalset = load()
    items = evalset.questions
    if args.ids:
        wanted = set(args.ids.split(","))
        items = [i for i in items if i.id in wanted]
    if args.limit:
        items = items[: args.limit]
    providers = args.provider or ["local"]
    choices = [
        ModelChoice.model_validate(
            {"provider": p, "model": args.model or DEFAULT_MODELS.get(p, "default")}
        )
        for p in providers
    ]
    flows = args.flow or ["research"]
    started = datetime.now(UTC)

    done: list[ItemScore] = []

    def write(scores: list[ItemScore]) -> None:
        if args.out:
            args.out.write_text(
                json.dumps(
                    {
                        "started": started.isoformat(),
                        "machine": machine(),
                        "eval_set_version": evalset.version,
                        "summary": [s.model_dump() for s in summarise(scores)],
                        "runs": [s.model_dump() for s in scores],
                    },
                    indent=2,
                )
            )

    def progress(score: ItemScore) -> None:
        print(
            f"{score.provider}/{score.flow} {score.id}: checks={score.passed_checks}"
            f" review={score.passed_review} extractive={score.extractive}"
            f" facts={score.facts_stated}/{score.facts} {score.seconds}s"
            + (f" failed: {score.error}" if score.error else ""),
            file=sys.stderr,
        )
        done.append(score)
        write(done)  # a long run keeps what it measured so far

    scores = asyncio.run(run_eval(evalset, items, choices, flows, on_score=progress))
    print(table([s.model_dump() for s in summarise(scores)]))
    write(scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
