"""The evaluation set in harness/eval/questions.toml: questions, their passages, their facts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

QUESTIONS = Path(__file__).resolve().parent / "questions.toml"


class EvalItem(BaseModel):
    """One question, the chunks that answer it, and what a right answer says.

    A question without chunks is not answered by its corpus: the right answer says so.
    """

    id: str = Field(min_length=1)
    question: str = Field(min_length=3)
    namespace: str = Field(default="", description="the corpus searched; the set's by default")
    chunks: list[str] = Field(
        default_factory=list, description="chunk ids that hold the answer; none: not in corpus"
    )
    facts: list[list[str]] = Field(
        default_factory=list, description="each fact: phrasings, any one of which states it"
    )
    contradicts: list[str] = Field(
        default_factory=list, description="phrases that say the opposite of the corpus"
    )

    @model_validator(mode="after")
    def _answered_with_facts(self) -> EvalItem:
        if bool(self.chunks) != bool(self.facts):
            raise ValueError(f"{self.id}: an answered question has chunks and facts, or neither")
        return self

    @property
    def in_corpus(self) -> bool:
        return bool(self.chunks)

    @property
    def docs(self) -> list[str]:
        """The documents of the answering chunks."""
        return list(dict.fromkeys(c.split("#", 1)[0] for c in self.chunks))

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

    @model_validator(mode="after")
    def _namespaces(self) -> EvalSet:
        for item in self.questions:
            item.namespace = item.namespace or self.namespace
        return self


def load(path: Path = QUESTIONS) -> EvalSet:
    with path.open("rb") as f:
        return EvalSet.model_validate(tomllib.load(f))
