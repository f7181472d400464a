"""A shared gate's answer to one model call: granted, or refused with the reason said."""

from __future__ import annotations

from pydantic import BaseModel


class Admission(BaseModel):
    """What the fleet's rate limit or a tenant's day budget said to one call."""

    granted: bool
    reason: str = ""
