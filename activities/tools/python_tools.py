"""Python tools: a user's async function with one typed (pydantic) argument.

    class Forecast(BaseModel):
        city: str = Field(description="a city name")

    async def forecast(args: Forecast) -> str:
        \"\"\"Tomorrow's weather for a city.\"\"\"

Named in tools.toml as `python = "my_tools:forecast"`. The worker imports it when
the contracts load; its argument model gives the JSON Schema the ToolRouter and the
model see, and its docstring the description. A call validates the arguments into
the model and awaits the function inside the tool activity, so it is retried,
timed out and recorded like any other tool call.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from keel.payloads.errors import (
    PYTHON_TOOL_UNAVAILABLE,
    TOOL_ARGUMENTS_INVALID,
    describe_validation_error,
)

DESCRIPTION_CHARS = 300


class PythonToolError(ValueError):
    """A `module:function` that cannot be a tool: not importable, not async, untyped."""


@dataclass(frozen=True)
class PythonTool:
    path: str
    function: Callable[[Any], Awaitable[object]]
    model: type[BaseModel]

    @property
    def schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.function) or ""
        return " ".join(doc.split("\n\n")[0].split())[:DESCRIPTION_CHARS]

    async def call(self, arguments: dict[str, Any]) -> object:
        try:
            parsed = self.model.model_validate(arguments)
        except ValidationError as err:
            raise ApplicationError(
                f"arguments invalid: {describe_validation_error(err)}",
                type=TOOL_ARGUMENTS_INVALID,
                non_retryable=True,
            ) from None
        return await self.function(parsed)


def load_python_tool(path: str) -> PythonTool:
    """The function `path` names, checked to be an async function of one pydantic model."""
    module_name, _, function_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PythonToolError(f"cannot import module {module_name!r}: {err}") from None
    function = getattr(module, function_name, None)
    if function is None:
        raise PythonToolError(f"module {module_name!r} has no {function_name!r}")
    if not inspect.iscoroutinefunction(function):
        raise PythonToolError(f"{path} is not an async function")
    parameters = list(inspect.signature(function).parameters.values())
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError) as err:
        raise PythonToolError(f"{path}: cannot read its type hints: {err}") from None
    model = hints.get(parameters[0].name) if len(parameters) == 1 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PythonToolError(f"{path} must take exactly one argument typed as a pydantic model")
    return PythonTool(path, function, model)


class PythonTools:
    """The worker's Python tools, imported once each."""

    def __init__(self) -> None:
        self._loaded: dict[str, PythonTool] = {}

    def get(self, path: str) -> PythonTool:
        tool = self._loaded.get(path)
        if tool is None:
            try:
                tool = load_python_tool(path)
            except PythonToolError as err:
                raise ApplicationError(
                    str(err), type=PYTHON_TOOL_UNAVAILABLE, non_retryable=True
                ) from None
            self._loaded[path] = tool
        return tool
