"""A live channel's events as a watcher reads them, recorded for a test to check."""

from __future__ import annotations

import asyncio
import io

from keel.cli.live import LiveView, written_so_far
from keel.payloads.live import LiveEvent


class Recorder:
    """A watcher that keeps every event and what a terminal would show."""

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self.out = io.StringIO()
        self.writing = asyncio.Event()  # the answer's first words are on the terminal
        self.view = LiveView(out=self.out, on_event=self._seen)

    def _seen(self, event: LiveEvent) -> None:
        self.events.append(event)
        if event.kind == "tokens" and event.node == "write":
            raw = "".join(e.text for e in self.events if e.kind == "tokens" and e.node == "write")
            if len(written_so_far(raw)) >= 10:
                self.writing.set()

    @property
    def text(self) -> str:
        return self.out.getvalue()
