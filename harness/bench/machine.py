"""What the machine and its processes do while a bench runs: CPU per process, load, the host."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

import psutil
from temporalio.client import Client

from harness.bench.common import Stopwatch


@dataclass
class ProcessSampler:
    """CPU time and peak memory of processes over a measured stretch, and its wall time.

    CPU is read from the kernel's counters (user + system), memory is the largest
    resident size seen by a sampler polling every 20 ms.
    """

    pids: dict[str, int]
    _cpu0: dict[str, float] = field(default_factory=dict)
    _rss0: dict[str, int] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _watch: Stopwatch | None = None

    def _cpu(self, pid: int) -> float:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)

    async def __aenter__(self) -> ProcessSampler:
        for name, pid in self.pids.items():
            self._cpu0[name] = self._cpu(pid)
            self._rss0[name] = psutil.Process(pid).memory_info().rss
            self.peak_rss[name] = self._rss0[name]
        self._task = asyncio.create_task(self._sample())
        self._watch = Stopwatch()
        return self

    def elapsed(self) -> float:
        """Wall seconds since the stretch began."""
        assert self._watch is not None
        return self._watch.elapsed()

    async def _sample(self) -> None:
        while True:
            for name, pid in self.pids.items():
                rss = psutil.Process(pid).memory_info().rss
                self.peak_rss[name] = max(self.peak_rss[name], rss)
            await asyncio.sleep(0.02)

    async def __aexit__(self, *_: object) -> None:
        self.wall = self.elapsed()
        assert self._task is not None
        self._task.cancel()
        self.cpu = {name: self._cpu(pid) - self._cpu0[name] for name, pid in self.pids.items()}
        self.rss_growth_mb = {
            name: round((self.peak_rss[name] - self._rss0[name]) / 2**20, 1) for name in self.pids
        }


def server_pid(client: Client) -> int | None:
    """The dev server `client` talks to, if this process started it.

    A child running `temporal` that listens on the client's port: the suite may run
    more than one server at a time.
    """
    port = int(client.service_client.config.target_host.rsplit(":", 1)[1])
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name().startswith("temporal") and any(
                c.laddr.port == port and c.status == psutil.CONN_LISTEN
                for c in child.net_connections(kind="tcp")
            ):
                return int(child.pid)
        except psutil.NoSuchProcess:
            continue
    return None


def worker_and_server(client: Client) -> dict[str, int]:
    """Processes to sample: this one (the worker and the client), and the server."""
    pids = {"worker": os.getpid()}
    server = server_pid(client)
    if server is not None:
        pids["server"] = server
    return pids
