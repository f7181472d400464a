"""A forked child's first activities, answered from the original child's history.

`keel/payloads/recorded.py` says why. Each outcome is taken only while the run asks for the
same activity with the same summary as the original did; at the first difference
(today's contracts took the run another way) the rest is dropped and the run calls
for real from there, so a recorded outcome never answers a different call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from google.protobuf.json_format import ParseDict
    from temporalio.api.common.v1 import ActivityType
    from temporalio.api.failure.v1 import ActivityFailureInfo, Failure
    from temporalio.converter import DefaultFailureConverter

    from keel.payloads.recorded import RecordedCall

R = TypeVar("R", bound=BaseModel)


class Recorded:
    """The outcomes still to hand out, in the order the original run made its calls."""

    def __init__(self, calls: list[RecordedCall] | None = None) -> None:
        self._calls = list(calls or [])

    async def or_run(
        self, activity: str, summary: str, result_type: type[R], run: Callable[[], Awaitable[R]]
    ) -> R:
        """This call's recorded outcome in a forked run, else the call itself (`run`)."""
        recorded = self.take(activity, summary)
        if recorded is not None:
            return outcome(recorded, result_type)
        return await run()

    def take(self, activity: str, summary: str) -> RecordedCall | None:
        """The next outcome if it is this call's; otherwise none, now or later."""
        if not self._calls:
            return None
        head = self._calls[0]
        if head.activity != activity or head.summary != summary:
            workflow.logger.warning(
                "recorded outcomes end before %r: the run asked %s %r instead",
                head.summary,
                activity,
                summary,
            )
            self._calls.clear()
            return None
        return self._calls.pop(0)

    def rest(self) -> list[RecordedCall]:
        """What is left, for a run that continues as new before using it all."""
        return list(self._calls)


def outcome(call: RecordedCall, result_type: type[R]) -> R:
    """The recorded result, or the recorded failure raised as the activity raised it.

    The failure is rebuilt as the SDK builds an activity's: an ActivityError whose
    cause is the activity's own error, so callers branch on it exactly as before.
    """
    if call.failure is None:
        return result_type.model_validate(call.result)
    failure = Failure(
        message="activity error",
        activity_failure_info=ActivityFailureInfo(activity_type=ActivityType(name=call.activity)),
        cause=ParseDict(call.failure, Failure()),
    )
    raise DefaultFailureConverter().from_failure(failure, workflow.payload_converter())
