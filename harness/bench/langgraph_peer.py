"""The peer: the same research graph in LangGraph, checkpointed to an SQLite file.

LangGraph's SQLite checkpointer writes the state after every step, so a crashed
process resumes from its last step: the closest thing to Temporal's durability in a
single-process library, and the comparison users ask for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from harness.bench.plain_flow import FlowState, ResearchNodes, initial_state
from keel.graphs.machine import Outcome
from keel.graphs.research import RESEARCH_GRAPH
from keel.payloads.research import ResearchInput


def _router(source: str) -> Callable[[FlowState], str]:
    def route(state: FlowState) -> str:
        return RESEARCH_GRAPH.next(source, Outcome(state["outcome"]))

    return route


def build_graph(nodes: ResearchNodes) -> StateGraph[FlowState, Any, Any, Any]:
    """Nodes and conditional edges taken from RESEARCH_GRAPH, so the graphs match."""
    graph: StateGraph[FlowState, Any, Any, Any] = StateGraph(FlowState)
    for name, node in nodes.table().items():
        # LangGraph's overloads do not take a TypedDict with optional keys as node input.
        graph.add_node(name, cast(Any, node))
    graph.add_edge(START, RESEARCH_GRAPH.start)
    for node_spec in RESEARCH_GRAPH.nodes:
        if node_spec.terminal:
            graph.add_edge(node_spec.name, END)
            continue
        targets = sorted({e.target for e in RESEARCH_GRAPH.edges if e.source == node_spec.name})
        graph.add_conditional_edges(node_spec.name, _router(node_spec.name), targets)
    return graph


@asynccontextmanager
async def checkpointed(
    nodes: ResearchNodes, database: Path
) -> AsyncIterator[CompiledStateGraph[FlowState, Any, Any, Any]]:
    """The compiled graph with AsyncSqliteSaver on a file."""
    async with AsyncSqliteSaver.from_conn_string(str(database)) as saver:
        yield build_graph(nodes).compile(checkpointer=saver)


async def run_langgraph(
    graph: CompiledStateGraph[FlowState, Any, Any, Any], request: ResearchInput, thread_id: str
) -> dict[str, Any]:
    config: Any = {"configurable": {"thread_id": thread_id}, "recursion_limit": 100}
    result: dict[str, Any] = await graph.ainvoke(initial_state(request), config)
    return result
