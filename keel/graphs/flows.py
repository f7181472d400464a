"""Every flow's transition table by name: what `client.py flows NAME` prints."""

from __future__ import annotations

from keel.graphs.machine import StateMachine
from keel.graphs.research import RESEARCH_GRAPH
from keel.graphs.team import TEAM_GRAPH

FLOWS: dict[str, StateMachine] = {"research": RESEARCH_GRAPH, "team": TEAM_GRAPH}
