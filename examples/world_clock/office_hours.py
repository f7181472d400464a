"""A Python tool of the example: is it office hours where the clock was read?

A plain async function with one pydantic argument, named in the contracts as
`examples.world_clock.office_hours:office_hours`. keel takes its schema from the
argument model and its description from the docstring, and calls it as an activity
under the same policy as every other tool.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, Field

OPENS, CLOSES = 9, 17


class ClockReading(BaseModel):
    reading: str = Field(
        min_length=1, max_length=2000, description="what the time server answered, as JSON"
    )


async def office_hours(args: ClockReading) -> str:
    """Says whether the time read is within office hours (09:00-17:00) in its timezone."""
    answer = json.loads(args.reading)
    local = datetime.fromisoformat(answer["datetime"])
    open_now = OPENS <= local.hour < CLOSES
    state = "office hours" if open_now else "outside office hours"
    return f"{answer['timezone']}: {local:%H:%M}, {state} ({OPENS:02d}:00-{CLOSES:02d}:00)"
