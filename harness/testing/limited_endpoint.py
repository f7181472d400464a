"""An OpenAI-compatible endpoint that enforces a requests-per-window limit, as a real process.

It answers `/v1/chat/completions` with JSON for the schema it is sent, refuses with 429
and a `Retry-After` what goes over its limit in any rolling window, and counts both.
`GET /stats` tells what it served and refused, with the time of each; `POST
/refuse-next?retry_after=S` makes it answer the next request 429 with that Retry-After
(counted apart: `forced`), as a provider that has become busy would.

    python -m harness.testing.limited_endpoint --port 8123 --limit 10 --window 5
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import deque
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from harness.testing.model_double import RESEARCH_ANSWERS, chat_completion
from harness.testing.ports import free_port, wait_until_serving

ANSWERS: dict[str, dict[str, Any]] = {
    **RESEARCH_ANSWERS,
    "DirectAnswer": {"answer": "Retries with backoff spread load over time."},
}


class Counter:
    """What the endpoint served and refused, over a rolling window of `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.served: deque[float] = deque()
        self.served_at: list[float] = []
        self.refused_at: list[float] = []
        self.forced_at: list[float] = []
        self.force_next: float | None = None

    def admit(self, now: float) -> float | None:
        """None when the request is served; else the seconds it should come back after."""
        while self.served and self.served[0] <= now - self.window:
            self.served.popleft()
        if len(self.served) >= self.limit:
            self.refused_at.append(now)
            return self.served[0] + self.window - now
        self.served.append(now)
        self.served_at.append(now)
        return None


def app(counter: Counter, latency: float) -> FastAPI:
    api = FastAPI()

    @api.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "limit": counter.limit,
            "window": counter.window,
            "served": len(counter.served_at),
            "refused": len(counter.refused_at),
            "forced": len(counter.forced_at),
            "served_at": counter.served_at,
            "refused_at": counter.refused_at,
            "forced_at": counter.forced_at,
        }

    @api.post("/refuse-next")
    async def refuse_next(retry_after: float) -> dict[str, float]:
        counter.force_next = retry_after
        return {"retry_after": retry_after}

    @api.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        now = time.time()
        if counter.force_next is not None:
            wait, counter.force_next = counter.force_next, None
            counter.forced_at.append(now)
            return busy(wait)
        wait_for = counter.admit(now)
        if wait_for is not None:
            return busy(wait_for)
        body = await request.json()
        await asyncio.sleep(latency)
        schema = body["response_format"]["json_schema"]["schema"]
        answer = ANSWERS.get(schema.get("title", ""), {})
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        return JSONResponse(chat_completion(body["model"], answer, prompt, 12, int(now)))

    return api


def busy(retry_after: float) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": "rate limit reached", "type": "requests"}},
        status_code=429,
        headers={"retry-after": f"{max(retry_after, 0.0):.3f}"},
    )


class LimitedEndpoint:
    """The endpoint as a subprocess on a free loopback port."""

    def __init__(self, limit: int, window: float, latency: float = 0.05) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [str(limit), str(window), str(latency)]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> LimitedEndpoint:
        limit, window, latency = self._args
        self._process = subprocess.Popen(
            [sys.executable, "-m", "harness.testing.limited_endpoint", "--port", str(self.port),
             "--limit", limit, "--window", window, "--latency", latency],
            stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_until_serving(f"{self.url}/stats", "the limited endpoint", self._process)
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/stats", timeout=5).json()
        return answer

    def refuse_next(self, retry_after: float) -> None:
        httpx.post(f"{self.url}/refuse-next", params={"retry_after": retry_after}, timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--limit", type=int, required=True, help="requests in any window")
    parser.add_argument("--window", type=float, default=60.0, help="seconds")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds an answer takes")
    args = parser.parse_args()
    counter = Counter(args.limit, args.window)
    uvicorn.run(app(counter, args.latency), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
