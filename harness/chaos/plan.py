"""A seed's workloads and fault schedule, drawn from `random.Random(seed)` alone.

The plan is pure data computed before anything runs, so `--list` prints exactly
what a run would do and `--seed N` replays the same schedule. Faults are timed to
meaningful moments (the n-th model call arriving, the ticket service committing a
saga step) plus a random delay, rather than to wall-clock times alone, because
the interesting failures live inside a call in flight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from harness.chaos.model_endpoint import FaultKind as ModelFaultKind

WorkloadKind = Literal["saga", "research", "team"]
Via = Literal["sdk", "cli"]
Decision = Literal["approve", "reject"]
Role = Literal["llm", "orchestration"]
TriggerKind = Literal["start", "delay", "model_call", "ticket_commit"]
FaultKind = Literal["kill_worker", "restart_server", "cancel", "model", "slow_tickets"]
TicketRoute = Literal["create_ticket", "create_subtask", "assign", "notify"]

# Model calls each workload makes when nothing goes wrong (the scripted answers).
MODEL_CALLS: dict[WorkloadKind, int] = {"saga": 2, "research": 3, "team": 9}
# Tokens that run out part-way through each flow with the scripted answers: a research
# run is delivered unreviewed after 2 calls, a team run before its last review (8 calls).
BUDGETS: dict[WorkloadKind, int] = {"research": 1500, "team": 3000}
BUDGET_CALLS: dict[WorkloadKind, int] = {"research": 2, "team": 8}
SAGA_STEPS = ("create-ticket", "create-subtask-0", "create-subtask-1", "assign")
ROUTE_OF_STEP: dict[str, TicketRoute] = {
    "create-ticket": "create_ticket",
    "create-subtask-0": "create_subtask",
    "create-subtask-1": "create_subtask",
    "assign": "assign",
    "notify": "notify",
}


@dataclass(frozen=True)
class Workload:
    index: int
    kind: WorkloadKind
    via: Via = "sdk"
    decision: Decision | None = None
    budget_tokens: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}#{self.index}"

    def _choices(self, budget: str) -> list[str]:
        """The decision and the budget, where the workload has them."""
        budget_part = [budget.format(self.budget_tokens)] if self.budget_tokens else []
        return [*([self.decision] if self.decision else []), *budget_part]

    @property
    def variant(self) -> str:
        """Runs of one variant deliver the same report when no fault changes it."""
        return "-".join([self.kind, *self._choices("budget{}")])

    def describe(self) -> str:
        return f"{self.label} ({', '.join([self.via, *self._choices('budget {} tokens')])})"


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    seconds: float = 0.0  # after the event (or after the start, for "delay")
    call: int = 0  # model_call: the n-th call of the seed, from 1
    workload: int = 0  # ticket_commit: which saga
    step: str = ""  # ticket_commit: the step's idempotency-key suffix

    def describe(self) -> str:
        delay = f" +{self.seconds:.1f} s" if self.seconds else ""
        if self.kind == "start":
            return "at start"
        if self.kind == "delay":
            return f"{self.seconds:.1f} s after start"
        if self.kind == "model_call":
            return f"model call #{self.call} in flight{delay}"
        return f"saga#{self.workload} committed {self.step}{delay}"


@dataclass(frozen=True)
class Fault:
    trigger: Trigger
    kind: FaultKind
    role: Role = "llm"
    down_seconds: float = 0.0
    target: int = 0
    via: Via = "sdk"
    model_fault: ModelFaultKind | None = None
    # How long the call the trigger waits on is held, so the fault lands mid-call.
    hold_seconds: float = 0.0
    route: TicketRoute | None = None
    hold_ms: int = 0
    after_commit_ms: int = 0

    def describe(self, labels: dict[int, str] | None = None) -> str:
        if self.kind == "kill_worker":
            what = f"kill -9 the {self.role} worker, restart it after {self.down_seconds:.1f} s"
        elif self.kind == "restart_server":
            what = f"stop the Temporal server, start it again after {self.down_seconds:.1f} s"
        elif self.kind == "cancel":
            target = (labels or {}).get(self.target, f"workload #{self.target}")
            what = f"cancel {target} ({self.via})"
        elif self.kind == "model":
            what = f"model endpoint: {MODEL_FAULT_TEXT[self.model_fault or 'error']}"
        else:
            timing = f"hold {self.hold_ms} ms" if self.hold_ms else ""
            if self.after_commit_ms:
                timing = f"answer {self.after_commit_ms} ms after commit"
            what = f"slow ticket service: next {self.route} calls {timing}"
        held = ""
        if self.hold_seconds and self.trigger.kind == "model_call":
            held = (
                " (call hung)"
                if self.model_fault == "hang"
                else f" (held {self.hold_seconds:.1f} s)"
            )
        if self.after_commit_ms and self.trigger.kind == "ticket_commit":
            held = f" (answer held {self.after_commit_ms} ms)"
        return f"{self.trigger.describe()}{held}: {what}"


MODEL_FAULT_TEXT: dict[ModelFaultKind, str] = {
    "rate_limit": "429 with Retry-After",
    "error": "500",
    "hang": "hang (never answer)",
    "close": "close the connection mid-answer",
    "slow": "slow answer",
}


@dataclass(frozen=True)
class SeedPlan:
    seed: int
    workloads: list[Workload]
    faults: list[Fault] = field(default_factory=list)

    def header(self) -> list[str]:
        runs = ", ".join(w.describe() for w in self.workloads)
        out = [f"seed {self.seed}: {runs}"]
        for w in self.workloads:
            if w.decision == "reject":
                out.append(f"  saga#{w.index} awaiting approval: reject it")
        return out

    def lines(self) -> list[str]:
        labels = {w.index: w.label for w in self.workloads}
        return self.header() + [f"  {f.describe(labels)}" for f in self.faults]


def plan_seed(seed: int, *, max_workloads: int = 2, max_faults: int = 3) -> SeedPlan:
    """The same seed always gives the same plan (no clock, no global random state)."""
    rng = random.Random(seed)
    count = rng.randint(1, max_workloads)
    kinds: list[WorkloadKind] = rng.choices(["saga", "research", "team"], [4, 3, 2], k=count)
    workloads: list[Workload] = []
    for i, kind in enumerate(kinds, 1):
        via: Via = "sdk" if kind == "team" else rng.choice(["sdk", "cli"])
        decision: Decision | None = None
        budget: int | None = None
        if kind == "saga":
            decision = "reject" if rng.random() < 1 / 3 else "approve"
        elif rng.random() < 0.3:
            budget = BUDGETS[kind]
        workloads.append(Workload(i, kind, via, decision, budget))
    calls = sum(BUDGET_CALLS[w.kind] if w.budget_tokens else MODEL_CALLS[w.kind] for w in workloads)
    free_calls = list(range(1, calls + 1))
    rng.shuffle(free_calls)
    sagas = [w for w in workloads if w.kind == "saga"]
    faults = [_fault(rng, workloads, sagas, free_calls) for _ in range(rng.randint(1, max_faults))]
    return SeedPlan(seed, workloads, [f for f in faults if f is not None])


def _fault(
    rng: random.Random, workloads: list[Workload], sagas: list[Workload], free_calls: list[int]
) -> Fault | None:
    kinds: list[FaultKind] = ["kill_worker", "restart_server", "cancel", "model", "slow_tickets"]
    kind = rng.choices(kinds, [3, 2, 2, 4, 1])[0]
    if kind == "slow_tickets" and not sagas:
        kind = "model"
    if kind == "model":
        if not free_calls:
            return None
        model_fault: ModelFaultKind = rng.choice(["rate_limit", "error", "hang", "close", "slow"])
        return Fault(
            Trigger("model_call", call=free_calls.pop()),
            "model",
            model_fault=model_fault,
            hold_seconds=round(rng.uniform(1.0, 4.0), 1) if model_fault == "slow" else 0.0,
        )
    if kind == "slow_tickets":
        route: TicketRoute = rng.choice(["create_ticket", "create_subtask", "assign", "notify"])
        slow = rng.randint(500, 3000)
        hold = rng.random() < 0.5
        return Fault(
            Trigger("start"),
            "slow_tickets",
            route=route,
            hold_ms=slow if hold else 0,
            after_commit_ms=0 if hold else slow,
        )
    trigger, hung, after_commit = _moment(rng, sagas, free_calls, allow_hang=kind == "cancel")
    held = round(rng.uniform(2.0, 4.0), 1) if trigger.kind == "model_call" else 0.0
    step_route = ROUTE_OF_STEP[trigger.step] if trigger.kind == "ticket_commit" else None
    role: Role = "llm"
    down = 0.0
    target, via = 0, "sdk"
    if kind == "kill_worker":
        if trigger.kind == "ticket_commit":
            role = "orchestration"
        elif trigger.kind == "delay":
            role = rng.choice(["llm", "orchestration"])
        down = round(rng.uniform(0.5, 3.0), 1)
    elif kind == "restart_server":
        down = round(rng.uniform(1.0, 6.0), 1)
    else:
        kind = "cancel"
        ticket = trigger.kind == "ticket_commit"
        target = trigger.workload if ticket else rng.choice(workloads).index
        via = rng.choice(["sdk", "cli"])
    return Fault(
        trigger,
        kind,
        role=role,
        down_seconds=down,
        target=target,
        via="cli" if via == "cli" else "sdk",
        model_fault="hang" if hung else None,
        hold_seconds=held,
        route=step_route,
        after_commit_ms=after_commit,
    )


def _moment(
    rng: random.Random, sagas: list[Workload], free_calls: list[int], *, allow_hang: bool
) -> tuple[Trigger, bool, int]:
    """Where a process fault lands: mid model call, mid saga step, or after a delay.

    Returns the trigger, whether the call is hung rather than slow, and how long
    the ticket service holds its answer after the commit (the step stays in flight).
    """
    options: list[TriggerKind] = ["delay"]
    if free_calls:
        options += ["model_call", "model_call"]
    if sagas:
        options += ["ticket_commit", "ticket_commit"]
    kind = rng.choice(options)
    pause = round(rng.uniform(0.0, 1.5), 1)
    if kind == "model_call":
        hung = allow_hang and rng.random() < 0.5
        return Trigger("model_call", seconds=min(pause, 1.0), call=free_calls.pop()), hung, 0
    if kind == "ticket_commit":
        saga = rng.choice(sagas)
        steps = list(SAGA_STEPS) + (["notify"] if saga.decision == "approve" else [])
        step = rng.choice(steps)
        in_flight = rng.random() < 0.7
        hold = rng.randint(2000, 4000) if in_flight else 0
        # Held: anywhere inside the hold. Not held: the saga moves on within milliseconds.
        seconds = min(pause, 1.0) if in_flight else round(pause / 10, 2)
        return Trigger("ticket_commit", seconds, workload=saga.index, step=step), False, hold
    return Trigger("delay", seconds=round(rng.uniform(0.5, 12.0), 1)), False, 0
