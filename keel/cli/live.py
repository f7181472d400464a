"""Follow a run's live channel on a terminal: each step as a line, the answer as written.

Reads the SDK's workflow stream by its query (keel/cli/channel.py), a running run and a
finished one alike, so `watch` works on both, a watcher that attaches late sees the run
from its start, and watching records nothing in the run's history. A child
named on the channel is followed too, its lines prefixed with its role.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TextIO

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from keel.cli.channel import read_channel
from keel.payloads.live import LIVE_TOPIC, SHOWN_FIELDS, LiveEvent

POLL_COOLDOWN = timedelta(milliseconds=100)
CHILD_WAIT_SECONDS = 30.0
RUNNING = "[running] "  # a progress line a terminal rewrites in place
CLEAR_LINE = "\r\x1b[2K"


def written_so_far(raw: str) -> str:
    """The decoded text of the first shown string field in a JSON document still being written.

    Stops before an escape sequence cut in half, so the text only ever grows.
    """
    for name in SHOWN_FIELDS:
        key = raw.find(f'"{name}"')
        if key < 0:
            continue
        colon = raw.find(":", key + len(name) + 2)
        if colon < 0:
            return ""
        start = colon + 1
        while start < len(raw) and raw[start] in " \t\r\n":
            start += 1
        if start >= len(raw) or raw[start] != '"':
            return ""
        return _string_prefix(raw, start + 1)
    return ""


def _string_prefix(raw: str, i: int) -> str:
    out: list[str] = []
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if raw.startswith("\\u", i):
            if i + 6 > len(raw):
                break
            try:
                out.append(json.loads(f'"{raw[i : i + 6]}"'))
            except ValueError:
                break
            i += 6
            continue
        if i + 1 >= len(raw):
            break
        out.append({"n": "\n", "t": "\t", "r": "", "b": "", "f": ""}.get(raw[i + 1], raw[i + 1]))
        i += 2
    return "".join(out)


@dataclass
class _Call:
    raw: str = ""
    shown: int = 0


@dataclass
class LiveView:
    """Renders events from any number of runs onto one terminal stream."""

    out: TextIO = field(default_factory=lambda: sys.stderr)
    tokens: bool = True
    events: int = 0
    on_event: Callable[[LiveEvent], None] | None = None
    # Lines held until the first event (a run's header): a run refused at its start
    # then prints its one refusal line and nothing else.
    preamble: list[str] = field(default_factory=list)
    _calls: dict[str, _Call] = field(default_factory=dict)
    _done: set[str] = field(default_factory=set)
    _open: str | None = None  # the call whose answer line is being written
    _status: bool = False  # a `[running]` line stands on the terminal, to be overwritten

    def flush_preamble(self) -> None:
        lines, self.preamble = self.preamble, []
        for line in lines:
            print(line, file=self.out, flush=True)

    def show(self, prefix: str, event: LiveEvent) -> None:
        self.flush_preamble()
        self.events += 1
        self._show(prefix, event)
        if self.on_event is not None:
            self.on_event(event)

    def _show(self, prefix: str, event: LiveEvent) -> None:
        key = f"{prefix}{event.call}"
        if event.kind == "tokens":
            if self.tokens and key not in self._done:
                self._tokens(prefix, key, event)
            return
        if event.kind == "done":
            if self.tokens:
                # The whole output: show what the deltas had not, and end the line.
                self._calls.setdefault(key, _Call()).raw = ""
                self._tokens(prefix, key, event)
                if self._open == key:
                    self._end()
            self._done.add(key)
            return
        if event.kind == "reset":
            self._done.discard(key)
            call = self._calls.pop(key, None)
            if self.tokens and call is not None and call.shown:
                self._line(f"{prefix}  ({event.call} starts over: {event.text})")
            return
        if event.kind == "child":
            self._line(f"{prefix}  child {event.role or 'flow'}: {event.workflow_id}")
        elif event.kind == "step":
            where = f"{event.node}: " if event.node else ""
            self._line(f"{prefix}  - {where}{event.text}")
        elif event.kind == "node" and event.text.startswith(RUNNING) and self._terminal():
            self._show_status(f"{prefix}{event.text}")
        else:
            self._line(f"{prefix}{event.text}")

    def _terminal(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def _show_status(self, text: str) -> None:
        """On a terminal, a run's `[running]` line is rewritten in place as it moves on,
        so what stays on the screen is its steps and its last line (as the README shows).
        A pipe or a log gets every line, one per node."""
        self._end()
        width = shutil.get_terminal_size().columns - 1
        self.out.write(f"{CLEAR_LINE}{text[:width]}")
        self.out.flush()
        self._status = True

    def _tokens(self, prefix: str, key: str, event: LiveEvent) -> None:
        call = self._calls.setdefault(key, _Call())
        call.raw += event.text
        text = written_so_far(call.raw)
        new = text[call.shown :]
        if not new:
            return
        if self._open != key:
            self._end()
            self.out.write(f"{prefix}  {event.node} > ")
            self._open = key
        self.out.write(new.replace("\n", " "))
        self.out.flush()
        call.shown = len(text)

    def _line(self, text: str) -> None:
        self._end()
        print(text, file=self.out, flush=True)

    def _end(self) -> None:
        if self._status:
            self.out.write(CLEAR_LINE)
            self._status = False
        if self._open is not None:
            self.out.write("\n")
            self._open = None

    def close(self) -> None:
        self._end()
        self.out.flush()


async def follow(client: Client, workflow_id: str, view: LiveView, prefix: str = "") -> None:
    """Show the run's channel until the run has closed and its log is read to the end."""
    children: list[asyncio.Task[None]] = []
    try:
        async for event in read_channel(client, workflow_id, [LIVE_TOPIC], POLL_COOLDOWN):
            view.show(prefix, event)
            if event.kind == "child" and event.workflow_id:
                # A flow's one child (the router's) reads as the run itself: no prefix.
                role = f"{prefix}{event.role}: " if event.role else prefix
                children.append(
                    asyncio.create_task(_follow_child(client, event.workflow_id, view, role))
                )
        await asyncio.gather(*children)
    finally:
        for task in children:
            task.cancel()


async def _follow_child(client: Client, workflow_id: str, view: LiveView, prefix: str) -> None:
    """A child is announced just before it starts: wait for it to exist, then follow it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHILD_WAIT_SECONDS
    while True:
        try:
            await client.get_workflow_handle(workflow_id).describe()
            break
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND or loop.time() > deadline:
                view.show(prefix, LiveEvent(kind="step", text=f"not followed: {error.message}"))
                return
            await asyncio.sleep(0.2)
    try:
        await follow(client, workflow_id, view, prefix)
    except (RPCError, WorkflowQueryFailedError) as error:
        view.show(prefix, LiveEvent(kind="step", text=f"not followed: {no_channel(error)}"))


def no_channel(error: BaseException) -> str:
    """One line for a run whose channel cannot be read (it predates live runs, or is gone)."""
    message = getattr(error, "message", "") or str(error)
    if message == "Encoded failure":  # the reason is encrypted with the run's payloads
        return "no live channel"
    return f"no live channel ({' '.join(message.split())[:200]})"
