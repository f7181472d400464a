"""A small typed state machine: nodes typed LLM / Tool / Rule / Agent / Person, edges on outcomes.

Workflows drive their loop with :meth:`StateMachine.next`, so the table that
the CLI prints as mermaid is the one that runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel
from temporalio.common import RetryPolicy


class NodeKind(StrEnum):
    """What runs a node: an activity (LLM, Tool), workflow code (Rule), a child agent
    workflow (Agent), or a person's update (Person)."""

    LLM = "llm"
    TOOL = "tool"
    RULE = "rule"
    AGENT = "agent"
    PERSON = "person"


class Outcome(StrEnum):
    """What a node reports; edges are keyed on these."""

    SUCCESS = "success"
    SCHEMA_FAILURE = "schema failure"
    ENOUGH = "enough evidence"
    NOT_ENOUGH = "not enough"
    EXHAUSTED = "bound reached"
    PASS = "pass"
    FAIL = "fail"
    BUDGET_EXHAUSTED = "budget exhausted"
    NOTHING_RELEVANT = "nothing relevant"
    HOLD = "held for a person"
    DECIDED = "decided"
    FEEDBACK = "a person's notes"

    @property
    def is_failure(self) -> bool:
        return self in (Outcome.SCHEMA_FAILURE, Outcome.BUDGET_EXHAUSTED)


@dataclass(frozen=True)
class Node:
    """One step; activities of LLM and Tool nodes run under its timeout and retries.

    An Agent node's output is the agent's output model; the child workflow has its own
    timeouts, so the node's are not used.
    """

    name: str
    kind: NodeKind
    label: str
    output: type[BaseModel] | None = None
    start_to_close: timedelta = timedelta(seconds=30)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    terminal: bool = False


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    on: Outcome
    note: str = ""


class GraphError(ValueError):
    """The table is inconsistent, or a node reported an outcome with no edge."""


@dataclass(frozen=True)
class StateMachine:
    name: str
    start: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise GraphError(f"{self.name}: duplicate node names")
        if self.start not in names:
            raise GraphError(f"{self.name}: start node {self.start!r} is not a node")
        seen: set[tuple[str, Outcome]] = set()
        for e in self.edges:
            for end in (e.source, e.target):
                if end not in names:
                    raise GraphError(f"{self.name}: edge names unknown node {end!r}")
            if (e.source, e.on) in seen:
                raise GraphError(f"{self.name}: two edges leave {e.source!r} on {e.on.value!r}")
            seen.add((e.source, e.on))
        for n in self.nodes:
            if not n.terminal and not any(e.source == n.name for e in self.edges):
                raise GraphError(f"{self.name}: non-terminal node {n.name!r} has no edge out")

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise GraphError(f"{self.name}: no node {name!r}")

    def next(self, source: str, outcome: Outcome) -> str:
        for e in self.edges:
            if e.source == source and e.on is outcome:
                return e.target
        raise GraphError(f"{self.name}: no edge from {source!r} on {outcome.value!r}")

    def to_mermaid(self) -> str:
        """Render as a mermaid flowchart; failure edges are dashed."""
        shapes = {
            NodeKind.LLM: ("(", ")"),
            NodeKind.TOOL: ("[[", "]]"),
            NodeKind.RULE: ("{", "}"),
            NodeKind.AGENT: ("[/", "/]"),
            NodeKind.PERSON: (">", "]"),
        }
        lines = ["flowchart TD"]
        for n in self.nodes:
            left, right = ("([", "])") if n.terminal else shapes[n.kind]
            lines.append(f'  {n.name}{left}"{n.label} ({n.kind.value})"{right}')
        for e in self.edges:
            label = e.on.value + (f": {e.note}" if e.note else "")
            arrow = "-.->" if e.on.is_failure else "-->"
            lines.append(f'  {e.source} {arrow}|"{label}"| {e.target}')
        return "\n".join(lines) + "\n"
