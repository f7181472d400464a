"""A tenant's spend for one UTC day, shared by all its runs and workers, as pure code.

Each model call reserves, before it is sent, what it may cost at most: its estimated
prompt and as many answer tokens as the tenant can still pay for (fewer than asked
when little is left; none, and the call is refused, when not even `min_output_tokens`
fit). The call's real cost replaces the reservation when it answers, so calls in
flight at once on many workers can never together spend past the day's budget. A
reservation whose caller died before answering stays counted: the provider may have
been paid.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field

from keel.payloads.admission import Admission

# The entity workflow's stable names (see workflows/tenant_budget.py).
TENANT_BUDGET_WORKFLOW = "TenantBudgetWorkflow"
RESERVE_UPDATE = "reserve"
CHARGE_UPDATE = "charge"
SPEND_QUERY = "spend"
# A tenant's run without a tenant (no fairness key) counts as this one's.
DEFAULT_TENANT = "default"
# A tenant is a fairness key: at most 64 bytes, a name a person types and reads. The
# CLI, the settings and tenants.toml hold every name to it.
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# A tenant-day's entity ends this long after its day: calls reserved just before
# midnight are charged within it.
AFTER_THE_DAY = timedelta(hours=1)


def tenant_day_id(tenant: str, day: date) -> str:
    return f"budget-{tenant}-{day.isoformat()}"


def day_entity_timeout(day: date, now: datetime) -> timedelta:
    """The execution timeout of `day`'s entity started at `now`: until an hour after the day."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) + AFTER_THE_DAY
    return max(end - now, timedelta(minutes=1))


class TenantBudget(BaseModel):
    """One tenant's daily limits (contracts/tenants.toml); a limit left out is no limit."""

    description: str = ""
    usd_per_day: float | None = Field(default=None, gt=0, description="USD a UTC day")
    tokens_per_day: int | None = Field(default=None, gt=0, description="tokens a UTC day")


class Reservation(BaseModel):
    """What one call asks to hold before it is sent."""

    id: str
    budget: TenantBudget
    prompt_tokens: int = Field(ge=0)
    max_output_tokens: int = Field(ge=1)
    min_output_tokens: int = Field(ge=1)
    usd_per_input_token: float = Field(ge=0)
    usd_per_output_token: float = Field(ge=0)


class Charge(BaseModel):
    """What the call really cost, in place of its reservation (0 for a call never answered)."""

    id: str
    tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)


class Hold(BaseModel):
    tokens: int
    cost_usd: float


class Spend(BaseModel):
    """A tenant's day as `client.py budgets` shows it."""

    tenant: str
    day: date
    budget: TenantBudget
    spent_usd: float = 0.0
    spent_tokens: int = 0
    held_usd: float = 0.0
    held_tokens: int = 0
    calls: int = 0
    refused: int = 0

    @property
    def left_usd(self) -> float | None:
        if self.budget.usd_per_day is None:
            return None
        return round(self.budget.usd_per_day - self.spent_usd - self.held_usd, 9)

    @property
    def left_tokens(self) -> int | None:
        if self.budget.tokens_per_day is None:
            return None
        return self.budget.tokens_per_day - self.spent_tokens - self.held_tokens

    @property
    def exhausted(self) -> bool:
        return (self.left_usd is not None and self.left_usd <= 0) or (
            self.left_tokens is not None and self.left_tokens <= 0
        )

    def summary(self) -> str:
        parts = []
        if self.budget.usd_per_day is not None:
            parts.append(f"${self.spent_usd + self.held_usd:.4f} of ${self.budget.usd_per_day:g}")
        if self.budget.tokens_per_day is not None:
            used = self.spent_tokens + self.held_tokens
            parts.append(f"{used} of {self.budget.tokens_per_day} tokens")
        return ", ".join(parts) or "no limit"


class Grant(Admission):
    """A reservation's answer: the output tokens the call may use within what is left."""

    output_tokens: int = 0


class TenantDay(BaseModel):
    """The day's spend and the reservations of calls still in flight."""

    spend: Spend
    holds: dict[str, Hold] = Field(default_factory=dict)

    def _held(self) -> None:
        self.spend.held_usd = round(sum(h.cost_usd for h in self.holds.values()), 9)
        self.spend.held_tokens = sum(h.tokens for h in self.holds.values())

    def reserve(self, r: Reservation) -> Grant:
        """Hold the most the call may cost within what is left; refuse when too little is."""
        spend = self.spend
        spend.budget = r.budget
        held = self.holds.get(r.id)
        if held is not None:  # asked again (its answer was lost): the same grant
            return Grant(granted=True, output_tokens=held.tokens - r.prompt_tokens)
        output = r.max_output_tokens
        if spend.left_tokens is not None:
            output = min(output, spend.left_tokens - r.prompt_tokens)
        left_usd = spend.left_usd
        if left_usd is not None and r.usd_per_output_token > 0:
            affordable = (left_usd - r.prompt_tokens * r.usd_per_input_token) / (
                r.usd_per_output_token
            )
            output = min(output, math.floor(affordable))
        elif left_usd is not None and left_usd <= 0:
            output = 0
        if output < r.min_output_tokens:
            spend.refused += 1
            return Grant(granted=False, reason=f"tenant {spend.tenant!r} spent {spend.summary()}")
        cost = r.prompt_tokens * r.usd_per_input_token + output * r.usd_per_output_token
        self.holds[r.id] = Hold(tokens=r.prompt_tokens + output, cost_usd=round(cost, 9))
        self._held()
        return Grant(granted=True, output_tokens=output)

    def charge(self, c: Charge) -> Spend:
        """The call's real cost replaces its hold (once: a repeated charge is ignored)."""
        if self.holds.pop(c.id, None) is None:
            return self.spend
        self.spend.spent_usd = round(self.spend.spent_usd + c.cost_usd, 9)
        self.spend.spent_tokens += c.tokens
        self.spend.calls += 1 if c.tokens else 0
        self._held()
        return self.spend


class TenantDayStart(BaseModel):
    """Input of a tenant-day's entity workflow; carries the day across continue-as-new."""

    tenant: str
    day: date
    budget: TenantBudget
    state: TenantDay | None = None
