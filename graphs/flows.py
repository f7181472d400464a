"""Every flow's transition table by name: what `client.py flows NAME` prints."""

from __future__ import annotations

from graphs.machine import StateMachine
from graphs.research import RESEARCH_GRAPH
from graphs.team import TEAM_GRAPH

FLOWS: dict[str, StateMachine] = {"research": RESEARCH_GRAPH, "team": TEAM_GRAPH}
