"""Retrieval and ingestion as activities, so they are retried and recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents.store import DocumentStore, IngestPathError
from models.documents import IngestRequest, IngestResult, SearchRequest, SearchResult
from models.errors import INGEST_PATH_NOT_FOUND

log = structlog.get_logger()


class DocumentActivities:
    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    @activity.defn(name="search_documents")
    async def search(self, request: SearchRequest) -> SearchResult:
        passages = await asyncio.to_thread(
            self._store.search, request.namespace, request.queries, request.limit
        )
        log.info("documents.search", queries=request.queries, hits=len(passages))
        return SearchResult(passages=passages)

    @activity.defn(name="ingest_documents")
    async def ingest(self, request: IngestRequest) -> IngestResult:
        try:
            result = await asyncio.to_thread(
                self._store.ingest_folder, Path(request.path), request.namespace
            )
        except IngestPathError as err:
            raise ApplicationError(
                str(err), type=INGEST_PATH_NOT_FOUND, non_retryable=True
            ) from err
        log.info("documents.ingest", **result.model_dump(exclude={"skipped"}))
        return result
