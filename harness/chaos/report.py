"""What a suite run prints: each seed's schedule and runs, then the table of invariants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.chaos.harness import SeedResult
from harness.chaos.invariants import NAMES


def seed_text(result: SeedResult) -> str:
    plan = result.plan
    labels = {w.index: w.label for w in plan.workloads}
    lines = plan.header()
    lines.append("  fired at  fault")
    for f in result.fired:
        back = f" [back at {f.back_at:.1f} s]" if f.back_at else ""
        lines.append(f.line(labels) + back)
    for run in result.runs:
        took = f"{run.seconds:.1f} s" if run.seconds is not None else "--"
        outcome = (run.summary or {}).get("outcome")
        status = run.status.lower() + (f" ({outcome})" if outcome else "")
        lines.append(
            f"  {run.workload.label:<11} {run.workflow_id}: {status} in {took}"
            f" (bound {result.bounds[run.workload.label]:.0f} s)"
            + (f"; {run.failure}" if run.failure else "")
        )
        lines += [f"      note: {n}" for n in run.notes]
    for check in result.checks.values():
        lines += [f"  VIOLATION {check.name}: {failure}" for failure in check.failures]
    verdict = "pass" if result.passed else f"FAIL (logs in {result.data_dir})"
    lines.append(f"  seed {plan.seed}: {verdict} in {result.seconds:.1f} s")
    return "\n".join(lines)


def table(results: list[SeedResult]) -> str:
    short = {name: name.replace("_", " ") for name in NAMES}
    widths = [max(len(short[n]), 4) for n in NAMES]
    head = "seed   " + "  ".join(f"{short[n]:<{w}}" for n, w in zip(NAMES, widths, strict=True))
    rows = [head, "-" * len(head)]
    for r in results:
        cells = [f"{r.checks[n].status:<{w}}" for n, w in zip(NAMES, widths, strict=True)]
        rows.append(f"{r.plan.seed:<6} " + "  ".join(cells))
    totals = []
    for n, w in zip(NAMES, widths, strict=True):
        failed = sum(1 for r in results if r.checks[n].status == "FAIL")
        checked = sum(1 for r in results if r.checks[n].status != "n/a")
        totals.append(f"{f'{checked - failed}/{checked}':<{w}}")
    rows.append("-" * len(head))
    rows.append("passed " + "  ".join(totals))
    bad = [r.plan.seed for r in results if not r.passed]
    rows.append(
        f"{len(results) - len(bad)}/{len(results)} seeds hold every invariant"
        + (f"; failing seeds: {' '.join(map(str, bad))}" if bad else "")
    )
    return "\n".join(rows)


def summary(results: list[SeedResult], measures: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "seeds": [
            {
                "seed": r.plan.seed,
                "passed": r.passed,
                "seconds": round(r.seconds, 1),
                "schedule": r.plan.lines(),
                "fired": [
                    {"fault": f.fault.describe(), "at": f.at, "back_at": f.back_at, "note": f.note}
                    for f in r.fired
                ],
                "runs": [
                    {
                        "workload": run.workload.describe(),
                        "workflow_id": run.workflow_id,
                        "status": run.status,
                        "seconds": run.seconds,
                        "bound": r.bounds[run.workload.label],
                        "failure": run.failure,
                        "notes": run.notes,
                    }
                    for run in r.runs
                ],
                "invariants": {
                    c.name: {"status": c.status, "failures": c.failures} for c in r.checks.values()
                },
            }
            for r in results
        ],
        "failing_seeds": [r.plan.seed for r in results if not r.passed],
        "measures": measures or {},
    }


def write_summary(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
