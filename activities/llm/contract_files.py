"""Reading a TOML file from contracts/, so every table fails the same clear way."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ValidationError

from keel.payloads.errors import describe_validation_error

M = TypeVar("M", bound=BaseModel)


def read_contract(path: Path, error: type[ValueError]) -> dict[str, Any]:
    """The parsed table, or `error` naming the file and what is wrong with it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise error(f"{path}: {err}") from err


def tables(
    raw: dict[str, Any], model: type[M], path: Path, error: type[ValueError], under: str = ""
) -> dict[str, M]:
    """Each table of a file as `model`; a bad one is `error` naming the file and the table."""
    found: dict[str, M] = {}
    for key, fields in raw.items():
        try:
            found[key] = model.model_validate(fields)
        except ValidationError as err:
            raise error(f"{path} [{under}{key}]: {describe_validation_error(err)}") from err
    return found


class ContractFile:
    """A file of contracts/ read whole and validated at once, so a bad one stops a worker at start.

    A subclass names its default file and its error, and says in `parse` what the tables are.
    """

    default_path: ClassVar[Path]
    error: ClassVar[type[ValueError]]

    @classmethod
    def load(cls, path: Path | None = None) -> Self:
        chosen = path or cls.default_path
        return cls.parse(read_contract(chosen, cls.error), chosen)

    @classmethod
    def parse(cls, raw: dict[str, Any], path: Path) -> Self:
        """The tables of an already read file; `path` names it in errors."""
        raise NotImplementedError
