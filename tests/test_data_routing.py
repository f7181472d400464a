"""The DataRouter: namespaces by language, version and clearance, on the real routes.toml."""

from __future__ import annotations

import pytest

from activities.contracts.loader import load_contracts
from keel.payloads.contracts import DataNamespace
from keel.routing.data import detect_language, route_data

NAMESPACES = load_contracts().routes.namespaces


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("재시도는 왜 지수 백오프를 쓰나요?", "ko"),
        ("How do idempotency keys make retries safe?", "en"),
        # Mixed: a Korean sentence naming English terms is still Korean...
        ("Temporal 워크플로에서 idempotency key는 어떻게 만드나요?", "ko"),
        # ...and an English sentence with one Korean word is English.
        ("What does the Korean word 재시도 mean for retry policies?", "en"),
        ("", "en"),
        ("429 503 ?!", "en"),
    ],
)
def test_language_is_detected_from_the_script(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_english_question_searches_the_newest_public_english_edition() -> None:
    route = route_data("How do retries back off?", NAMESPACES, "public")
    assert route.language == "en"
    assert route.namespaces == ["demo"]
    assert route.excluded["demo-v1"] == "version 1, older"
    assert route.excluded["demo-ko"] == "language ko"
    assert "restricted" in route.excluded["postmortems"]


def test_korean_question_searches_the_korean_corpus() -> None:
    route = route_data("서킷 브레이커는 언제 열리나요?", NAMESPACES, "restricted")
    assert route.language == "ko"
    assert route.namespaces == ["demo-ko"]
    assert set(route.excluded) == {"demo", "demo-v1", "postmortems"}


def test_clearance_below_a_namespace_excludes_it_and_says_why() -> None:
    for clearance in ("public", "internal"):
        route = route_data("What went wrong with ticket dedup?", NAMESPACES, clearance)
        assert "postmortems" not in route.namespaces
        assert route.excluded["postmortems"] == f"restricted: clearance {clearance} too low"
    cleared = route_data("What went wrong with ticket dedup?", NAMESPACES, "restricted")
    # Public corpora first, then the restricted one.
    assert cleared.namespaces == ["demo", "postmortems"]


def test_pinned_version_chooses_that_edition() -> None:
    route = route_data("How do retries back off?", NAMESPACES, "public", version="1")
    assert route.namespaces == ["demo-v1"]
    assert route.excluded["demo"] == "version 2, not 1"


def test_newest_edition_wins_by_number_not_by_text() -> None:
    editions = {
        f"guide-{v}": DataNamespace(language="en", version=v, topic="guides")
        for v in ("1.9", "1.10", "2", "10")
    }
    route = route_data("Which edition?", editions, "public")
    assert route.namespaces == ["guide-10"]
    assert {route.excluded[n] for n in ("guide-1.9", "guide-1.10", "guide-2")} == {
        "version 1.9, older",
        "version 1.10, older",
        "version 2, older",
    }


def test_topic_filter_leaves_other_topics_out() -> None:
    namespaces = {
        **NAMESPACES,
        "billing": DataNamespace(language="en", version="1", topic="billing"),
    }
    route = route_data("How are invoices retried?", namespaces, "public", topic="billing")
    assert route.namespaces == ["billing"]
    assert route.excluded["demo"] == "topic 'reliability'"
