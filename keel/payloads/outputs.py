"""Output models a call may name, by name: the gateway validates model output against
them, the contract loader checks agents name one, and AgentWorkflow types its answer."""

from __future__ import annotations

from pydantic import BaseModel

from keel.payloads.agents import (
    AgentTurn,
    DirectAnswer,
    Findings,
    IntentGuess,
    RubricScores,
    SubQuestions,
)
from keel.payloads.research import Draft, RefinedQueries, ResearchPlan
from keel.payloads.tickets import IncidentTriage

OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        ResearchPlan,
        RefinedQueries,
        Draft,
        IncidentTriage,
        IntentGuess,
        DirectAnswer,
        SubQuestions,
        AgentTurn,
        Findings,
        RubricScores,
    )
}
