"""Why a report is not a plain pass: one closed set, the strings every history holds.

A flag is a `StrEnum` member, so a typo fails at import, and its value is the string
that recorded runs, reports and the evaluation already carry.
"""

from __future__ import annotations

from enum import StrEnum


class Flag(StrEnum):
    BUDGET_EXHAUSTED = "budget_exhausted"
    # Beside budget_exhausted: it was the tenant's day budget (contracts/tenants.toml).
    TENANT_BUDGET_EXHAUSTED = "tenant_budget_exhausted"
    UNREVIEWED = "unreviewed"
    PLAN_FALLBACK = "plan_fallback"
    QUERIES_REJECTED = "queries_rejected"
    QUESTIONS_REJECTED = "questions_rejected"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    REFINE_FAILED = "refine_failed"
    MAX_REVISIONS_REACHED = "max_revisions_reached"
    MAX_ROUNDS_REACHED = "max_rounds_reached"
    MAX_TURNS_REACHED = "max_turns_reached"
    CHECK_FAILED = "check_failed"  # written with its rule: check_failed:<rule>
    EXTRACTIVE = "extractive"
    NO_DRAFT = "no_draft"
    NO_EVIDENCE = "no_evidence"
    NOT_IN_CORPUS = "not_in_corpus"
    CITATIONS_INFERRED = "citations_inferred"
    RESEARCHER_FAILED = "researcher_failed"
    WRITER_FAILED = "writer_failed"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    REJECTED = "rejected"
    TURN_SCHEMA_FAILURE = "turn_schema_failure"
    TOOL_FAILED = "tool_failed"
    # An agent's: a message restarted its request; no valid output; cited unseen passages.
    INTERRUPTED = "interrupted"
    NO_VALID_OUTPUT = "no_valid_output"
    UNSEEN_PASSAGES_DROPPED = "unseen_passages_dropped"


def check_failed(rule: str) -> str:
    """The flag of a draft that broke a check: `check_failed:<rule>`."""
    return f"{Flag.CHECK_FAILED.value}:{rule}"


class Flags(list[str]):
    """A run's flags in the order raised, each once; a list, so reports take it as is."""

    def add(self, flag: str) -> None:
        value = flag.value if isinstance(flag, Flag) else flag
        if value not in self:
            self.append(value)

    def budget_spent(self, tenant: bool) -> None:
        """The run's budget ran out; `tenant`: it was the tenant's day budget."""
        self.add(Flag.BUDGET_EXHAUSTED)
        if tenant:
            self.add(Flag.TENANT_BUDGET_EXHAUSTED)
