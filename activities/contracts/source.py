"""The worker's contracts, read again when a file changes: an edit reaches new runs.

A run reads its contracts once, as a recorded activity result, so a replay and a
running run keep the snapshot they started with; only runs started after an edit
see it. An edit that does not load is refused with one line naming the file and
the field, and the last good contracts stay in force until the file is fixed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from activities.contracts.loader import FILES, ContractError, Contracts, load_all
from activities.llm.prices import PriceTable
from activities.llm.prompts import PromptBook
from keel.payloads.contracts import ContractSnapshot
from keel.rules.rate_limit import RateLimit
from keel.rules.tenants import TenantBudget

log = structlog.get_logger()

Fingerprint = str


def fingerprint(directory: Path) -> Fingerprint:
    """A digest of every file's bytes (about 30 KB in all, read once per run started).

    Bytes rather than modification times: two edits within one tick of the file
    system's clock would otherwise look like one.
    """
    digest = hashlib.sha256()
    for name in FILES:
        try:
            digest.update((directory / name).read_bytes())
        except OSError:
            digest.update(b"\0missing")
        digest.update(b"\0")
    return digest.hexdigest()


class ContractSource:
    """The last good contracts of a folder, reloaded when one of its files changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp = fingerprint(directory)
        self._loaded = load_all(directory)
        self._refused: Fingerprint | None = None
        self._lock = threading.Lock()

    def current(self) -> Contracts:
        """The contracts as the files are now, or the last good ones if an edit is broken."""
        stamp = fingerprint(self.directory)
        if stamp == self._stamp or stamp == self._refused:
            return self._loaded
        with self._lock:
            if stamp != self._stamp and stamp != self._refused:
                self._reload(stamp)
        return self._loaded

    def _reload(self, stamp: Fingerprint) -> None:
        try:
            loaded = load_all(self.directory)
        except ContractError as error:
            self._refused = stamp
            log.warning("contracts.reload_refused", error=str(error), kept=self.versions())
            return
        before = self.versions()
        self._loaded, self._stamp, self._refused = loaded, stamp, None
        changed = sorted(k for k, v in self.versions().items() if before.get(k) != v)
        log.info("contracts.reloaded", changed=changed, versions=self.versions())

    def versions(self) -> dict[str, str]:
        return dict(self._loaded.snapshot.versions)

    def snapshot(self) -> ContractSnapshot:
        return self.current().snapshot

    def prompts(self) -> PromptBook:
        return self.current().prompts

    def prices(self) -> PriceTable:
        return self.current().prices

    def limits(self) -> dict[str, RateLimit]:
        return self.current().limits

    def tenants(self) -> dict[str, TenantBudget]:
        return self.current().tenants


def supplier(contracts: ContractSnapshot | ContractSource) -> Callable[[], ContractSnapshot]:
    """What the worker's activities ask for the contracts: a source's newest, or a fixed one."""
    if isinstance(contracts, ContractSource):
        return contracts.snapshot

    def fixed() -> ContractSnapshot:
        return contracts

    return fixed
