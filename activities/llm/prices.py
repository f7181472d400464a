"""What a call costs, from the price table in contracts/, validated when a worker starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from activities.llm.contract_files import ContractFile, tables
from keel.payloads.llm import Provider

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "contracts" / "prices.toml"
FREE_PROVIDERS: frozenset[Provider] = frozenset({"local", "scripted"})


class Price(BaseModel):
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")


class PriceError(ValueError):
    """The table is invalid, or a remote model has no price."""


class PriceTable(ContractFile):
    default_path = DEFAULT_PRICES
    error = PriceError

    def __init__(self, prices: dict[str, dict[str, Price]]) -> None:
        self._prices = prices

    @classmethod
    def parse(cls, raw: dict[str, Any], path: Path) -> PriceTable:
        return cls(
            {
                provider: tables(models, Price, path, PriceError, f"{provider}.")
                for provider, models in raw.items()
            }
        )

    def price(self, provider: Provider, model: str) -> Price:
        if provider in FREE_PROVIDERS:
            return Price(input=0, output=0)
        found = self._prices.get(provider, {}).get(model)
        if found is None:
            raise PriceError(f"no price for {provider}/{model} in the price table")
        return found

    def cost(self, provider: Provider, model: str, tokens_in: int, tokens_out: int) -> float:
        price = self.price(provider, model)
        return (tokens_in * price.input + tokens_out * price.output) / 1_000_000
