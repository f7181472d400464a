"""llama.cpp's OpenAI-compatible server on loopback, serving the bundled SmolLM2 file."""

from __future__ import annotations

import subprocess
import sys

from activities.llm.local_model import bundled_model_path
from harness.testing.ports import free_port, wait_until_serving

MODEL_ALIAS = "smollm2"


class LlamaServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
             "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
             "--n_ctx", "4096", "--seed", "42"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_serving(f"{self.base_url}/models", "llama_cpp.server", seconds=60)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
