"""What a run's figures came from: the hardware, the versions and how busy the machine was.

The benches and the evaluation both record it beside their figures, so two result
files can be told apart by the machine that made them.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import temporalio

from keel.infra.binaries import temporal_cli


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict[str, Any]:
    """Hardware, versions and the load average as the run starts."""
    cli = subprocess.run(
        [str(temporal_cli()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    # Physical memory as the kernel counts it (MemTotal), with no extra package to read it.
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(memory / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "temporal_cli": cli,
        "load_average_at_start": load_now(),
    }
