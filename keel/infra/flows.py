"""Workflows of the user's own, named `module:Class`, run by keel's worker beside its own.

A flow built from keel's pieces (model calls through `workflows.model_calls`, the
ToolRouter, the saga) gets keel's worker, converter, codec and interceptors by being
named here: `worker.py --flow mypkg.flows:BriefFlow` or `KEEL_FLOWS='["mypkg.flows:BriefFlow"]'`.
Every command of `client.py` then works on its runs (docs/extending.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence

from temporalio import workflow


class FlowError(ValueError):
    """A flow that cannot be loaded; the message names the entry and the cause."""


def load_flows(specs: Sequence[str], taken: Iterable[str] = ()) -> list[type]:
    """The named workflow classes, checked before the worker polls; `taken` are the
    workflow types the worker runs already (a second one of a name would be refused)."""
    names = set(taken)
    flows: list[type] = []
    for spec in specs:
        flow = _load(spec)
        definition = workflow._Definition.from_class(flow)
        if definition is None:
            raise FlowError(f"flow {spec!r}: {flow.__name__} is not a @workflow.defn class")
        if definition.name in names:
            raise FlowError(f"flow {spec!r}: workflow type {definition.name!r} is already run")
        names.add(workflow_name(flow))
        flows.append(flow)
    return flows


def workflow_name(flow: type) -> str:
    """The workflow type name a class registers, as histories and `list` show it."""
    definition = workflow._Definition.from_class(flow)
    return (definition.name if definition else None) or flow.__name__


def _load(spec: str) -> type:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise FlowError(f"flow {spec!r}: expected module:Class, as in mypkg.flows:BriefFlow")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise FlowError(f"flow {spec!r}: cannot import {module_name} ({err})") from None
    flow = getattr(module, attribute, None)
    if not isinstance(flow, type):
        raise FlowError(f"flow {spec!r}: {module_name} has no class {attribute}")
    return flow
