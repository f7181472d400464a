"""The tools keel implements itself: the names `tools.toml` may declare without a source.

One list that the worker's tool activity and the contract loader both read, so a
contract that `client.py contracts check` passes never stops a worker at start.
"""

from __future__ import annotations

BUILTIN_TOOLS = frozenset(
    {"search_documents", "search_wide", "read_passage", "create_ticket", "cancel_ticket"}
)
