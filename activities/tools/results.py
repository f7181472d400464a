"""What a tool returned, checked and turned into the short outcome an agent observes.

The checks run in the activity, before anything is recorded: a result over the size
limit or one that breaks the tool's output schema fails the call as non-retryable
(the same call would get the same answer), and a tool's own error (MCP `isError`)
comes back as a result the agent reads and decides on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel
from temporalio.exceptions import ApplicationError

from activities.tools.mcp_servers import redact
from keel.payloads.errors import TOOL_RESULT_INVALID, TOOL_RESULT_TOO_LARGE
from keel.payloads.tools import ToolOutcome

MAX_RESULT_BYTES = 1024 * 1024
# ANSI/VT escape sequences first (so their parameters go too), then other C0/C1 controls.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
OUTCOME_CHARS = 2000


def too_large(tool: str, size: int) -> ApplicationError:
    return ApplicationError(
        f"{tool} returned {size} bytes, over the {MAX_RESULT_BYTES}-byte limit",
        type=TOOL_RESULT_TOO_LARGE,
        non_retryable=True,
    )


def schema_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.path)) or 'result'}: {e.message[:120]}"
        for e in Draft202012Validator(schema).iter_errors(value)
    ][:3]


def mcp_outcome(
    tool: str,
    result: CallToolResult,
    output_schema: Mapping[str, Any] | None,
    secrets: Mapping[str, str],
) -> ToolOutcome:
    """The result as text for the model, after the size and schema checks."""
    size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    if size > MAX_RESULT_BYTES:
        raise too_large(tool, size)
    if output_schema is not None and not result.is_error:
        if result.structured_content is None:
            raise invalid(tool, ["no structured content, though it declares an output schema"])
        problems = schema_problems(output_schema, result.structured_content)
        if problems:
            raise invalid(tool, problems)
    text = printable(_text(result))
    return ToolOutcome(
        tool=tool,
        text=redact(text, secrets)[:OUTCOME_CHARS],
        is_error=bool(result.is_error),
    )


def printable(text: str) -> str:
    """`text` without terminal escapes and control characters (newlines and tabs stay):
    what a server sends cannot forge a log line or repaint a terminal that shows it."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))


def invalid(tool: str, problems: list[str]) -> ApplicationError:
    return ApplicationError(
        f"{tool} returned a result that breaks its output schema: {'; '.join(problems)}",
        type=TOOL_RESULT_INVALID,
        non_retryable=True,
    )


def _text(result: CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ImageContent):
            parts.append(f"[image {block.mime_type}]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource {block.uri}]")
        elif isinstance(block, EmbeddedResource):
            parts.append(f"[resource {block.resource.uri}]")
        else:
            parts.append(f"[{block.type}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts) or "(no content)"


def python_outcome(tool: str, value: object) -> ToolOutcome:
    """A Python tool's return value (text, or a model or JSON data shown as JSON)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, BaseModel):
        text = value.model_dump_json()
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            raise invalid(tool, [f"a {type(value).__name__} is not text or JSON"]) from None
    size = len(text.encode())
    if size > MAX_RESULT_BYTES:
        raise too_large(tool, size)
    return ToolOutcome(tool=tool, text=text[:OUTCOME_CHARS])
