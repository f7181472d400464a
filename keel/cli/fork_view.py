"""A fork beside its original: the same rows for research, team and agent results."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from pydantic import BaseModel

from keel.payloads.agents import AgentResult
from keel.payloads.coordinator import MultiAgentReport
from keel.payloads.llm import Usage
from keel.payloads.research import ResearchReport

Column = tuple[str, str, BaseModel | str]


class FlowResult(BaseModel):
    """The result of a flow of the user's own, as its JSON: keel knows no report model."""

    value: Any = None


LABELS = ["", "run", "model", "verdict", "usage", "citations", "flags"]


def _usage(u: Usage) -> str:
    return f"{u.calls} calls, {u.tokens_in}+{u.tokens_out} tokens, ${u.cost_usd:.6f}"


def rows(result: BaseModel | str) -> list[str]:
    """Model, verdict, usage, citations and flags of one run's result."""
    if isinstance(result, ResearchReport):
        verdict = "passed" if result.review_passed else "not passed"
        score = f" {result.review_score}/5" if result.review_score is not None else ""
        cited = ", ".join(c.chunk_id for c in result.citations)
        model = f"{result.provider}/{result.model}"
        return [model, verdict + score, _usage(result.usage), cited or "(none)", _flags(result)]
    if isinstance(result, MultiAgentReport):
        last = result.rounds[-1].weighted_score if result.rounds else None
        verdict = ("passed" if result.passed else "not passed") + (
            f" {last:.2f}" if last is not None else ""
        )
        cited = ", ".join(c.passage_id for c in result.citations)
        return ["team", verdict, _usage(result.usage), cited or "(none)", _flags(result)]
    if isinstance(result, AgentResult):
        verdict = "output" if result.output is not None else "no output"
        model = f"{result.agent} ({result.output_schema})"
        return [model, verdict, _usage(result.usage), "-", _flags(result)]
    if isinstance(result, FlowResult):
        return ["-", "done", "-", "-", "-"]
    return [str(result), "", "", "", ""]


def _flags(result: ResearchReport | MultiAgentReport | AgentResult) -> str:
    return ", ".join(result.flags) or "-"


def answer(result: BaseModel | str) -> str:
    if isinstance(result, ResearchReport | MultiAgentReport):
        return result.answer
    if isinstance(result, AgentResult):
        return json.dumps(result.output, ensure_ascii=False) if result.output else ""
    if isinstance(result, FlowResult):
        return json.dumps(result.value, ensure_ascii=False, default=str)
    return ""


def side_by_side(*columns: Column, width: int = 44) -> str:
    """Two runs as columns: model, verdict, usage, citations, flags, then the answers."""
    table = [[title, run[:12], *rows(result)] for title, run, result in columns]
    lines = [
        f"{label:<10}" + "".join(f"{col[i][: width - 1]:<{width}}" for col in table)
        for i, label in enumerate(LABELS)
    ]
    for title, _, result in columns:
        text = answer(result)
        if text:
            lines += ["", f"{title}:"]
            lines += textwrap.wrap(text, 88, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)
