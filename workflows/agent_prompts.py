"""What an agent's prompts are filled with, and what of its output is kept.

Pure code over the request, the contract and what the agent observed, so a replay
renders the same prompt and a test can check it without a server.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.payloads.agents import AgentInput, Observation
    from keel.payloads.contracts import AgentSpec, ContractSnapshot

PROMPT_OBSERVATIONS = 6


def prompt_variables(
    task: str,
    request: AgentInput,
    spec: AgentSpec,
    contracts: ContractSnapshot,
    observations: list[Observation],
) -> dict[str, str]:
    """The request, its tools with an argument example each, and the latest observations."""
    tools = "\n".join(
        f"- {name}: {contracts.tools[name].description}"
        f" Call with: {_arguments_example(contracts.tools[name].arguments)}"
        for name in spec.tools
    )
    feedback = request.feedback
    return {
        "task": task,
        "context": request.context or "(none)",
        "feedback": f"\nFeedback on the last version: {feedback}\n" if feedback else "",
        "tools": tools or "(none)",
        "observations": _rendered(observations[-PROMPT_OBSERVATIONS:]),
        "passages": "(no passages)",
        **request.variables,
    }


def seen_only(data: dict[str, Any], observations: list[Observation]) -> bool:
    """Drops cited passage ids the agent never saw (a model cannot cite its way past
    search); True when any was dropped."""
    if not isinstance(data.get("passage_ids"), list):
        return False
    seen = {pid for o in observations for pid in o.passage_ids}
    kept = [pid for pid in data["passage_ids"] if pid in seen]
    dropped = len(kept) < len(data["passage_ids"])
    data["passage_ids"] = kept
    return dropped


def _rendered(recent: list[Observation]) -> str:
    if not recent:
        return "(nothing yet)"
    return "\n".join(f"[turn {o.turn}] {o.tool}: {o.text}" for o in recent)


def _arguments_example(schema: dict[str, Any]) -> str:
    """`{"query": "..."}` for a tool's argument schema: small models copy shapes well."""
    fields = []
    for name, prop in schema.get("properties", {}).items():
        if "enum" in prop:
            value = "|".join(map(str, prop["enum"]))
        else:
            value = "<number>" if prop.get("type") == "integer" else f"<{name}>"
        fields.append(f'"{name}": "{value}"')
    return "{" + ", ".join(fields) + "}"
