"""A fixed set of fault-suite seeds through the real processes: every invariant must hold.

Each seed starts its own workers against a dev server persisted to SQLite, the
ticket service and the scripted model endpoint, fires its faults (kill -9, server
restart, cancel, reject, 429/500/hang/close, a slow ticket service) and checks the
service's database and the histories. `python -m harness.chaos --seed N` replays a seed
that fails here, with its schedule and the invariant it broke.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.chaos.harness import Suite, SuiteSettings
from harness.chaos.invariants import NAMES
from harness.chaos.plan import plan_seed
from harness.chaos.report import seed_text, table

# Together: sagas approved, rejected and cancelled at a commit; research and team runs,
# budgeted or not, started with the SDK and the CLI; every kind of fault and moment.
CI_SEEDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def test_the_fixed_seeds_cover_every_fault_and_workload() -> None:
    plans = [plan_seed(seed) for seed in CI_SEEDS]
    faults = {f.kind for p in plans for f in p.faults}
    moments = {f.trigger.kind for p in plans for f in p.faults}
    model = {f.model_fault for p in plans for f in p.faults if f.kind == "model"}
    workloads = {w.kind for p in plans for w in p.workloads}
    assert faults >= {"kill_worker", "restart_server", "cancel", "model"}
    assert moments >= {"model_call", "ticket_commit", "delay"}
    assert model >= {"rate_limit", "error", "hang", "close"}
    assert workloads == {"saga", "research", "team"}
    assert any(w.decision == "reject" for p in plans for w in p.workloads)
    assert any(w.budget_tokens for p in plans for w in p.workloads)
    assert any(w.via == "cli" for p in plans for w in p.workloads)


@pytest.mark.timeout(1500)
async def test_fixed_seeds_hold_every_invariant(tmp_path: Path) -> None:
    settings = SuiteSettings(
        data_dir=tmp_path, keep=True, provider_timeout_seconds=10.0, grace_seconds=10.0
    )
    async with Suite(settings) as suite:
        results = [await suite.run_seed(plan_seed(seed)) for seed in CI_SEEDS]
    report = "\n".join(seed_text(r) for r in results) + "\n" + table(results)
    # Not vacuous: every invariant was checked on some seed, and most faults fired.
    for name in NAMES:
        assert any(r.checks[name].checked for r in results), f"{name} never checked\n{report}"
    fired = [f.at is not None for r in results for f in r.fired]
    assert sum(fired) >= 0.6 * len(fired), report
    assert [r.plan.seed for r in results if not r.passed] == [], report
