"""Ingest a folder of documents as a workflow, so the run is visible and retried."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.documents.activities import DocumentActivities
    from keel.graphs.policies import HEARTBEAT_TIMEOUT
    from keel.payloads.documents import IngestRequest, IngestResult
    from keel.payloads.errors import INGEST_PATH_NOT_FOUND

INGEST_TIMEOUT = timedelta(minutes=10)
INGEST_RETRY = RetryPolicy(maximum_attempts=3, non_retryable_error_types=[INGEST_PATH_NOT_FOUND])


@workflow.defn(name="IngestWorkflow")
class IngestWorkflow:
    @workflow.run
    async def run(self, request: IngestRequest) -> IngestResult:
        return await workflow.execute_activity_method(
            DocumentActivities.ingest,
            request,
            start_to_close_timeout=INGEST_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=INGEST_RETRY,
            summary=f"ingest {request.path} into {request.namespace}",
        )
