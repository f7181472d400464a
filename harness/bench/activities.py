"""Activities used only by the benchmark workflows."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity


class Echo(BaseModel):
    """A small payload, the size of a short tool result."""

    index: int
    text: str = ""


@activity.defn(name="bench_echo")
async def echo(request: Echo) -> Echo:
    """Does nothing, so whatever its step costs is orchestration."""
    return request
