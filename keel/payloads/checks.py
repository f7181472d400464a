"""A draft check's verdict, as reports and histories record it (the rules: keel/rules/checks.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CheckFailure(BaseModel):
    """One broken rule, with feedback addressed to the writer."""

    rule: str
    feedback: str


class DraftCheck(BaseModel):
    """The checks' verdict on one draft; `passed` only when no rule failed."""

    failures: list[CheckFailure] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def feedback(self) -> str:
        return " ".join(f.feedback for f in self.failures)

    @property
    def rules(self) -> list[str]:
        return [f.rule for f in self.failures]
