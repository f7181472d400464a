"""Custom search attributes, registered on the server at start, shown in the Web UI list."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

RESEARCH_NODE = SearchAttributeKey.for_keyword("ResearchNode")
RESEARCH_STATUS = SearchAttributeKey.for_keyword("ResearchStatus")

ALL_SEARCH_ATTRIBUTES = (RESEARCH_NODE, RESEARCH_STATUS)
