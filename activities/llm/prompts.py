"""Prompt templates kept as data in contracts/, validated when a worker starts."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from activities.llm.contract_files import ContractFile, tables

DEFAULT_PROMPTS = Path(__file__).resolve().parents[2] / "contracts" / "prompts.toml"


class PromptTemplate(BaseModel):
    version: str = Field(min_length=1)
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)

    @property
    def digest(self) -> str:
        text = f"{self.version}\0{self.system}\0{self.user}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str
    prompt_hash: str


class PromptError(ValueError):
    """A prompt file is invalid, a prompt id is unknown, or a variable is missing."""


class PromptBook(ContractFile):
    default_path = DEFAULT_PROMPTS
    error = PromptError

    def __init__(self, templates: dict[str, PromptTemplate]) -> None:
        self._templates = templates

    @classmethod
    def parse(cls, raw: dict[str, Any], path: Path) -> PromptBook:
        return cls(tables(raw, PromptTemplate, path, PromptError))

    def ids(self) -> set[str]:
        return set(self._templates)

    def render(self, prompt_id: str, variables: dict[str, str]) -> RenderedPrompt:
        template = self._templates.get(prompt_id)
        if template is None:
            raise PromptError(f"unknown prompt {prompt_id!r}")
        try:
            system = string.Template(template.system).substitute(variables)
            user = string.Template(template.user).substitute(variables)
        except KeyError as err:
            raise PromptError(f"prompt {prompt_id!r} needs variable {err.args[0]!r}") from err
        return RenderedPrompt(system=system, user=user, prompt_hash=template.digest)
