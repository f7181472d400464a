"""Reading a TOML file from contracts/, so every table fails the same clear way."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_contract(path: Path, error: type[ValueError]) -> dict[str, Any]:
    """The parsed table, or `error` naming the file and what is wrong with it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise error(f"{path}: {err}") from err
