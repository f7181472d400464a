"""The promises checked after every seed, each against the service's database or the histories.

- ends_in_bound: every run is closed (completed, failed or cancelled) within its
  bound: a fault-free allowance plus what each fault may cost.
- no_duplicates: one ticket, assignment and notice per saga, one subtask per title.
- nothing_left_behind: a saga that ended cancelled, rejected or failed has nothing
  live; a completed one has exactly its records live.
- budget_kept: a run with a token budget spent no more, by its report and by the
  model calls its history (children included) completed.
- same_report: a delivered result equals the fault-free run's of the same variant.
- no_spurious_failure: transient faults (one 429, one crash, one outage) fail no
  run; a run ends cancelled only when it was cancelled.
- histories_clean: no workflow task failed (non-determinism, a bug in workflow code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.chaos.histories import HistoryFacts
from harness.chaos.ledger import SagaRecords
from harness.chaos.runs import RunRecord

NAMES = (
    "ends_in_bound",
    "no_duplicates",
    "nothing_left_behind",
    "budget_kept",
    "same_report",
    "no_spurious_failure",
    "histories_clean",
)
SAGA_SUBTASKS = 3  # in the scripted triage

Status = Literal["pass", "FAIL", "n/a"]


@dataclass
class Check:
    name: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        if self.failures:
            return "FAIL"
        return "pass" if self.checked else "n/a"

    def expect(self, ok: bool, failure: str) -> None:
        self.checked += 1
        if not ok:
            self.failures.append(failure)


@dataclass(frozen=True)
class RunFacts:
    """Everything read about one run once the seed is over."""

    run: RunRecord
    bound: float
    history: HistoryFacts
    saga: SagaRecords | None
    reference: dict[str, Any] | None


def check_seed(facts: list[RunFacts]) -> dict[str, Check]:
    checks = {name: Check(name) for name in NAMES}
    for f in facts:
        _check_bound(checks, f)
        if f.saga is not None and f.run.status != "TERMINATED":
            _check_saga(checks, f, f.saga)
        _check_budget(checks, f)
        _check_report(checks, f)
        _check_ending(checks, f)
        checks["histories_clean"].expect(
            not f.history.task_failures and not f.history.unread,
            f"{f.run.workload.label}: "
            + "; ".join(f.history.task_failures + f.history.unread)[:400],
        )
    return checks


def _check_bound(checks: dict[str, Check], f: RunFacts) -> None:
    run, seconds = f.run, f.run.seconds
    checks["ends_in_bound"].expect(
        seconds is not None and seconds <= f.bound,
        f"{run.workload.label} {run.workflow_id}: "
        + (
            f"still running after {f.bound:.0f} s (bound), then {run.status.lower()}"
            if seconds is None
            else f"took {seconds:.1f} s, bound {f.bound:.0f} s"
        ),
    )


def _check_saga(checks: dict[str, Check], f: RunFacts, saga: SagaRecords) -> None:
    run, label = f.run, f.run.workload.label
    duplicates = saga.duplicates()
    checks["no_duplicates"].expect(
        not duplicates, f"{label} {run.workflow_id}: {', '.join(duplicates)}"
    )
    outcome = (run.summary or {}).get("outcome")
    if outcome == "completed":
        wrong = saga.missing(SAGA_SUBTASKS)
        what = "completed but"
    else:
        wrong = saga.left_behind()
        what = f"ended {outcome or run.status.lower()}, left"
    checks["nothing_left_behind"].expect(
        not wrong,
        f"{label} {run.workflow_id} {what} {', '.join(wrong)}"
        f" (keys: {', '.join(k.split(':')[-1] for k in saga.keys)})",
    )


def _check_budget(checks: dict[str, Check], f: RunFacts) -> None:
    run, budget = f.run, f.run.workload.budget_tokens
    if budget is None:
        return
    spent = [t for t in (run.usage_tokens, f.history.model_tokens) if t is not None]
    checks["budget_kept"].expect(
        all(t <= budget for t in spent),
        f"{run.workload.label} {run.workflow_id}: report {run.usage_tokens},"
        f" history {f.history.model_tokens} tokens > budget {budget}",
    )


def _check_report(checks: dict[str, Check], f: RunFacts) -> None:
    run, reference = f.run, f.reference
    if run.summary is None or reference is None:
        return
    summary = run.summary
    differs = sorted(k for k in reference if reference[k] != summary.get(k))
    checks["same_report"].expect(
        not differs,
        f"{run.workload.label} {run.workflow_id}: "
        + "; ".join(f"{k}: {summary.get(k)!r} != {reference[k]!r}" for k in differs)[:400],
    )


def _check_ending(checks: dict[str, Check], f: RunFacts) -> None:
    run, label = f.run, f.run.workload.label
    if run.status == "TERMINATED" or run.ended is None:
        return
    if run.status == "FAILED":
        checks["no_spurious_failure"].expect(
            False, f"{label} {run.workflow_id} failed: {run.failure}"
        )
    elif run.status == "CANCELED":
        checks["no_spurious_failure"].expect(
            run.cancel_requested is not None,
            f"{label} {run.workflow_id} cancelled, but nobody cancelled it",
        )
    else:
        checks["no_spurious_failure"].expect(True, "")
