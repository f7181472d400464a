"""The evaluation set in eval/questions.toml: questions, their passages, their facts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

QUESTIONS = Path(__file__).resolve().parent / "questions.toml"


class EvalItem(BaseModel):
    """One question, the documents that answer it, and what a right answer says."""

    id: str = Field(min_length=1)
    question: str = Field(min_length=3)
    docs: list[str] = Field(min_length=1, description="doc ids that hold the answer")
    facts: list[list[str]] = Field(
        min_length=1, description="each fact: phrasings, any one of which states it"
    )
    contradicts: list[str] = Field(
        default_factory=list, description="phrases that say the opposite of the corpus"
    )

    def stated(self, answer: str) -> list[bool]:
        text = answer.lower()
        return [any(p.lower() in text for p in fact) for fact in self.facts]

    def contradicted(self, answer: str) -> list[str]:
        text = answer.lower()
        return [p for p in self.contradicts if p.lower() in text]


class EvalSet(BaseModel):
    version: str
    namespace: str
    questions: list[EvalItem] = Field(min_length=1)


def load(path: Path = QUESTIONS) -> EvalSet:
    with path.open("rb") as f:
        return EvalSet.model_validate(tomllib.load(f))
