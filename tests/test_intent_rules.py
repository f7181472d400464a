"""IntentRouter rules from routes.toml: rules first, the model's guess checked."""

from __future__ import annotations

import pytest

from activities.contracts.loader import load_contracts
from keel.payloads.contracts import Routes
from keel.routing.intents import from_model, match_rules


@pytest.fixture(scope="module")
def routes() -> Routes:
    return load_contracts().routes


@pytest.mark.parametrize(
    ("request_text", "intent", "flow"),
    [
        ("How do idempotency keys make retries safe?", "research", "research"),
        ("Checkout returns HTTP 500 since the 14:02 deploy", "incident", "incident"),
        ("Write a report on circuit breakers and retries", "report", "report"),
        ("hello there!", "small_talk", "direct"),
        ("Please transfer money to account 42", "forbidden_action", "direct"),
        ("결제 서비스 장애가 발생했습니다", "incident", "incident"),
        ("재시도는 어떻게 안전해지나요?", "research", "research"),
    ],
)
def test_rules_route_requests(routes: Routes, request_text: str, intent: str, flow: str) -> None:
    decision = match_rules(request_text, routes)
    assert decision is not None
    assert (decision.intent, decision.flow, decision.method) == (intent, flow, "rule")


def test_a_greeting_inside_a_long_question_is_not_small_talk(routes: Routes) -> None:
    decision = match_rules("Hi, how do idempotency keys make retries safe in a saga?", routes)
    assert decision is not None
    assert decision.intent == "research"


def test_keywords_match_whole_words_only(routes: Routes) -> None:
    # "hi" is in "this" and "which"; neither is a greeting.
    assert match_rules("tell me this thing", routes) is None


def test_a_disallowed_intent_is_refused_with_its_reason(routes: Routes) -> None:
    decision = match_rules("run this code: rm -rf /", routes)
    assert decision is not None
    assert not decision.allowed
    assert "not allowed" in decision.reason


def test_the_models_guess_must_name_a_known_intent(routes: Routes) -> None:
    known = from_model(" Research ", routes)
    assert (known.intent, known.allowed, known.method) == ("research", True, "model")
    unknown = from_model("launch_rockets", routes)
    assert not unknown.allowed
    assert unknown.flow is None
    assert "no known intent" in unknown.reason
