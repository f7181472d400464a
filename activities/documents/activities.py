"""Retrieval and ingestion as activities, so they are retried and recorded.

Clearance is enforced here, at the store's boundary, as well as by the DataRouter:
a request that names a namespace above its caller's clearance, or one routes.toml
does not declare, is refused whatever built it (a router bug, a hand-written
workflow input, a tool call).

Ingestion reads folders on the worker's machine on behalf of whoever can start a
workflow, so it reads only under the configured roots (``KEEL_INGEST_ROOTS``) and
only into declared namespaces: ``ingest /etc`` is refused before anything is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents.store import DocumentStore, IngestPathError
from activities.heartbeat import heartbeating
from keel.payloads.clearance import SecurityLevel, may_read
from keel.payloads.documents import (
    IngestRequest,
    IngestResult,
    Passage,
    PassagesRequest,
    SearchRequest,
    SearchResult,
)
from keel.payloads.errors import (
    ACCESS_DENIED,
    INGEST_PATH_NOT_FOUND,
    INGEST_PATH_REFUSED,
    PASSAGE_NOT_FOUND,
    UNKNOWN_NAMESPACE,
)

log = structlog.get_logger()


class DocumentActivities:
    def __init__(
        self,
        store: DocumentStore,
        security: Mapping[str, SecurityLevel] | Callable[[], Mapping[str, SecurityLevel]],
        ingest_roots: Sequence[Path] = (),
    ) -> None:
        """`security`: each declared namespace's level (routes.toml); others are refused.
        A callable is asked at each check, so an edit of routes.toml applies at once.

        `ingest_roots`: the folders ingestion may read, resolved; none means no ingest.
        """
        self._store = store
        if callable(security):
            self._security_of = security
        else:
            fixed = dict(security)
            self._security_of = lambda: fixed
        self._roots = [root.resolve() for root in ingest_roots]

    @property
    def store(self) -> DocumentStore:
        return self._store

    def level(self, namespace: str) -> SecurityLevel:
        level = self._security_of().get(namespace)
        if level is None:
            raise ApplicationError(
                f"namespace {namespace!r} is not declared in routes.toml",
                type=UNKNOWN_NAMESPACE,
                non_retryable=True,
            )
        return level

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
        if request.rank_for:
            passages = await asyncio.to_thread(
                self._store.search_for_question,
                namespaces,
                request.queries,
                request.rank_for,
                request.limit,
            )
        else:
            passages = await asyncio.to_thread(
                self._store.search_many, namespaces, request.queries, request.limit
            )
        if request.rank_for and passages:
            scores = await asyncio.to_thread(
                self._store.scores, [p.chunk_id for p in passages], request.rank_for
            )
            passages = [
                p.model_copy(update={"question_score": scores.get(p.chunk_id, 0.0)})
                for p in passages
            ]
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

    def check_ingest(self, request: IngestRequest) -> Path:
        """The folder to read, resolved, once namespace and path are allowed; else a refusal.

        Resolved first, so neither `..` nor a symbolic link leads out of a root.
        """
        self.level(request.namespace)
        folder = Path(request.path).expanduser().resolve()
        if not any(folder.is_relative_to(root) for root in self._roots):
            roots = ", ".join(str(r) for r in self._roots) or "none configured"
            raise ApplicationError(
                f"{request.path} is outside the ingest roots ({roots}; KEEL_INGEST_ROOTS)",
                type=INGEST_PATH_REFUSED,
                non_retryable=True,
            )
        return folder

    @activity.defn(name="read_passages")
    async def passages(self, request: PassagesRequest) -> SearchResult:
        """The passages found and readable at the clearance, in the order asked; others left out."""

        def read() -> SearchResult:
            found = [self._store.passage(chunk_id) for chunk_id in request.chunk_ids]
            readable = [
                p
                for p in found
                if p is not None and may_read(request.clearance, self.level(p.namespace))
            ]
            ids = [p.chunk_id for p in readable]
            ranks = []
            for question in request.rank_for:
                scores = self._store.scores(ids, question) if ids else {}
                ranks.append([scores.get(i, 0.0) for i in ids])
            return SearchResult(passages=readable, ranks=ranks)

        return await asyncio.to_thread(read)

    @activity.defn(name="ingest_documents")
    async def ingest(self, request: IngestRequest) -> IngestResult:
        try:
            folder = self.check_ingest(request)
        except ApplicationError as refused:
            log.warning(
                "documents.ingest_refused", namespace=request.namespace, reason=refused.type
            )
            raise
        try:
            # Heartbeats: a worker that dies while a large folder is read is noticed
            # within seconds; the store's writes are idempotent, so a retry is safe.
            result = await heartbeating(
                asyncio.to_thread(self._store.ingest_folder, folder, request.namespace)
            )
        except IngestPathError as err:
            raise ApplicationError(
                str(err), type=INGEST_PATH_NOT_FOUND, non_retryable=True
            ) from err
        log.info("documents.ingest", **result.model_dump(exclude={"skipped"}))
        return result
