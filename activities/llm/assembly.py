"""The model gateway and call gates a worker runs, assembled from its settings.

Tests, the bench, the evaluation and the soak build theirs the same way, so what
they measure is what `worker.py` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import SecretStr

from activities.contracts.source import ContractSource
from activities.llm.anthropic_model import AnthropicModel
from activities.llm.chat_model import ChatModel, InThread
from activities.llm.gates import CallGate
from activities.llm.gateway import LLMGateway, PassageSource
from activities.llm.local_model import LocalModel
from activities.llm.openai_model import OpenAICompatibleModel
from activities.llm.prices import PriceTable
from activities.llm.prompts import PromptBook
from activities.llm.rate_limits import RateLimits
from activities.llm.scripted_model import ScriptedModel
from activities.llm.tenant_budgets import TenantBudgets
from keel.infra.settings import WorkerSettings
from keel.payloads.contracts import Decoding
from keel.payloads.llm import Provider


def build_gateway(
    settings: WorkerSettings,
    prompts: PromptBook | Callable[[], PromptBook],
    prices: PriceTable | Callable[[], PriceTable] | None = None,
    passages: PassageSource | None = None,
    decoding: Decoding | None = None,
    gates: Sequence[CallGate] = (),
) -> LLMGateway:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    # Blocking models run on a pool sized to the queue's concurrency, off the event loop.
    executor = ThreadPoolExecutor(settings.llm_concurrency, thread_name_prefix="llm")
    providers: dict[Provider, ChatModel] = {
        "local": InThread(LocalModel(settings.local_model_path, decoding=decoding), executor),
        "scripted": InThread(ScriptedModel(settings.scripted_dir), executor),
        "openai": OpenAICompatibleModel(
            settings.openai_base_url,
            secret(settings.openai_api_key),
            settings.openai_schema_mode,
            settings.provider_timeout_seconds,
        ),
        "anthropic": AnthropicModel(
            secret(settings.anthropic_api_key),
            settings.anthropic_base_url,
            settings.provider_timeout_seconds,
        ),
    }
    return LLMGateway(prompts, providers, prices, passages, gates)


def build_gates(settings: WorkerSettings, source: ContractSource) -> list[CallGate]:
    """The tenant's day budget, then the provider's rate limit, as the contracts say now.

    Their entity workflows run on the orchestration queue, as the breakers' do.
    """
    scope = settings.rate_limit_scope or settings.task_queue
    return [
        TenantBudgets(settings.task_queue, source.tenants),
        RateLimits(scope, settings.task_queue, source.limits),
    ]
