"""Retrieval and ingestion as activities, so they are retried and recorded.

Clearance is enforced here, at the store's boundary, as well as by the DataRouter:
a request that names a namespace above its caller's clearance is refused whatever
built it (a router bug, a hand-written workflow input, a tool call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents.store import DocumentStore, IngestPathError
from activities.heartbeat import heartbeating
from models.contracts import SecurityLevel, may_read
from models.documents import (
    IngestRequest,
    IngestResult,
    Passage,
    PassagesRequest,
    SearchRequest,
    SearchResult,
)
from models.errors import ACCESS_DENIED, INGEST_PATH_NOT_FOUND, PASSAGE_NOT_FOUND

log = structlog.get_logger()


class DocumentActivities:
    def __init__(
        self, store: DocumentStore, security: Mapping[str, SecurityLevel] | None = None
    ) -> None:
        """`security` maps a namespace to its level; a namespace not in it is public."""
        self._store = store
        self._security = dict(security or {})

    @property
    def store(self) -> DocumentStore:
        return self._store

    def level(self, namespace: str) -> SecurityLevel:
        return self._security.get(namespace, "public")

    def check_access(self, namespaces: Iterable[str], clearance: SecurityLevel) -> None:
        """Refuse, before any search, the first namespace above the caller's clearance.

        Non-retryable: another attempt with the same clearance cannot succeed.
        """
        for namespace in namespaces:
            level = self.level(namespace)
            if not may_read(clearance, level):
                raise ApplicationError(
                    f"namespace {namespace!r} is {level}; clearance {clearance} may not read it",
                    type=ACCESS_DENIED,
                    non_retryable=True,
                )

    @activity.defn(name="search_documents")
    async def search(self, request: SearchRequest) -> SearchResult:
        namespaces = request.all_namespaces
        try:
            self.check_access(namespaces, request.clearance)
        except ApplicationError:
            log.warning(
                "documents.access_denied", namespaces=namespaces, clearance=request.clearance
            )
            raise
        passages = await asyncio.to_thread(
            self._store.search_many, namespaces, request.queries, request.limit
        )
        log.info(
            "documents.search", queries=request.queries, namespaces=namespaces, hits=len(passages)
        )
        return SearchResult(passages=passages)

    def read(self, chunk_id: str, clearance: SecurityLevel) -> Passage:
        """One passage in full for a caller, under the same clearance rule as search.

        A plain method, so a tool activity can call it (in a thread: it reads SQLite).
        """
        passage = self._store.passage(chunk_id)
        if passage is None:
            raise ApplicationError(
                f"no passage {chunk_id!r}", type=PASSAGE_NOT_FOUND, non_retryable=True
            )
        self.check_access([passage.namespace], clearance)
        return passage

    @activity.defn(name="read_passages")
    async def passages(self, request: PassagesRequest) -> SearchResult:
        """The passages found and readable at the clearance, in the order asked; others left out."""

        def read() -> list[Passage]:
            found = [self._store.passage(chunk_id) for chunk_id in request.chunk_ids]
            return [
                p
                for p in found
                if p is not None and may_read(request.clearance, self.level(p.namespace))
            ]

        return SearchResult(passages=await asyncio.to_thread(read))

    @activity.defn(name="ingest_documents")
    async def ingest(self, request: IngestRequest) -> IngestResult:
        try:
            # Heartbeats: a worker that dies while a large folder is read is noticed
            # within seconds; the store's writes are idempotent, so a retry is safe.
            result = await heartbeating(
                asyncio.to_thread(self._store.ingest_folder, Path(request.path), request.namespace)
            )
        except IngestPathError as err:
            raise ApplicationError(
                str(err), type=INGEST_PATH_NOT_FOUND, non_retryable=True
            ) from err
        log.info("documents.ingest", **result.model_dump(exclude={"skipped"}))
        return result
