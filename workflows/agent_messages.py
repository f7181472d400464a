"""An agent run's inbox: messages sent while it works, and what its policy did with each.

Deterministic state only: the `send_message` update hands messages in, the run takes
them out. Queued messages live in the update's history event and, across
continue-as-new, in the carry, so none is lost when a worker restarts. A message id
seen before gets its first outcome again and is never applied twice.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.payloads.agents import AgentCarry, AgentMessage, MessageOutcome
    from keel.payloads.contracts import MessagePolicy

# The patch that gave AgentWorkflow its inbox; runs recorded before it have none.
MESSAGES_PATCH = "agent-messages"
# The patch that carries the interrupting messages a continued first request took in,
# and the flags raised so far (an interrupt's among them).
JOINED_PATCH = "agent-messages-joined"
CLOSED = "the run has finished its work and takes no more messages"
LEGACY = "the run started before agents took messages"


class Inbox:
    def __init__(self, carry: AgentCarry) -> None:
        self._outcomes = {m.id: m for m in carry.messages}
        # As first answered, so a resend gets the same reply; rebuilt after continue-as-new.
        self._first = {m.id: _as_first(m) for m in carry.messages}
        self._queue = list(carry.queue)
        self._interrupts: list[str] = []
        self.closing = False

    def check(self, message: AgentMessage) -> None:
        """The update's validator: a run that is finishing refuses, before any history."""
        if self.closing and message.id not in self._first:
            raise ValueError(CLOSED)

    def receive(
        self, message: AgentMessage, policy: MessagePolicy, agent: str
    ) -> tuple[MessageOutcome, bool]:
        """The policy's outcome for the message, and whether it is new."""
        if message.id in self._first:
            return self._first[message.id], False
        outcome = MessageOutcome(id=message.id, text=message.text, policy=policy, status="queued")
        if policy == "reject":
            outcome.status = "rejected"
            outcome.reason = (
                f"agent {agent!r} is still working and refuses messages until it is done"
                " (on_message = reject)"
            )
        elif policy == "interrupt":
            outcome.status = "interrupted"
            self._interrupts.append(message.id)
        else:
            self._queue.append(message.id)
            outcome.position = len(self._queue)
        self._first[message.id] = outcome.model_copy()
        self._outcomes[message.id] = outcome
        return outcome, True

    def take_interrupts(self) -> list[MessageOutcome]:
        """Interrupting messages not yet taken into account, oldest first."""
        taken = [self._outcomes[i] for i in self._interrupts]
        self._interrupts = []
        return taken

    def next_message(self) -> MessageOutcome | None:
        """The next message to answer on its own: an interrupt first, else the queue's head.

        One at a time: interrupts that came in together are each answered, none dropped.
        """
        if self._interrupts:
            return self._outcomes[self._interrupts.pop(0)]
        return self._outcomes[self._queue.pop(0)] if self._queue else None

    def answered(self, ids: list[str], answer: dict[str, object] | None) -> None:
        for message_id in ids:
            outcome = self._outcomes[message_id]
            if outcome.status == "queued":
                outcome.status = "answered"
            outcome.answer = answer

    def outcomes(self) -> list[MessageOutcome]:
        return list(self._outcomes.values())

    def pending(self) -> list[str]:
        """Ids of messages taken in and not yet started, interrupts first, for the carry."""
        return [*self._interrupts, *self._queue]

    def waiting(self) -> bool:
        """Whether a message still waits for an answer."""
        return bool(self._queue or self._interrupts)


def _as_first(outcome: MessageOutcome) -> MessageOutcome:
    status = {"queue": "queued", "interrupt": "interrupted", "reject": "rejected"}
    return outcome.model_copy(update={"status": status[outcome.policy], "answer": None})


def step_line(outcome: MessageOutcome) -> str:
    """The outcome as the live channel shows it."""
    if outcome.status == "queued":
        return f"message {outcome.id} queued at position {outcome.position}"
    if outcome.status == "interrupted":
        return f"message {outcome.id} interrupts the current request: it starts again"
    return f"message {outcome.id} rejected: {outcome.reason}"
