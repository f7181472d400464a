"""Workers register the search attributes the workflows upsert, or say what is missing."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from keel.infra.binaries import temporal_cli
from keel.infra.codec import data_converter
from keel.infra.temporal import ensure_search_attributes
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


async def test_missing_search_attributes_are_registered_once() -> None:
    # A server started without them, like a fresh cluster.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        data_converter=data_converter(),
        dev_server_log_level="error",
    )
    try:
        names = [k.name for k in ALL_SEARCH_ATTRIBUTES]
        assert await ensure_search_attributes(env.client, ALL_SEARCH_ATTRIBUTES) == names
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=env.client.namespace)
        )
        assert set(names) <= set(listed.custom_attributes)
        assert await ensure_search_attributes(env.client, ALL_SEARCH_ATTRIBUTES) == []
    finally:
        await env.shutdown()


async def test_registered_attributes_are_left_alone(env: WorkflowEnvironment) -> None:
    assert await ensure_search_attributes(env.client, ALL_SEARCH_ATTRIBUTES) == []
