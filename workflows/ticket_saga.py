"""TicketSagaWorkflow: incident triage that opens a ticket and unwinds it if anything fails.

The model turns the report into a ticket with subtasks; then create ticket ->
create subtasks -> assign -> (human approval) -> notify. Every call carries an
idempotency key made of the workflow id and the step, never the attempt, so
retries, worker crashes and replays cannot duplicate a record. Each step's undo
is registered before the step is called, by the step's key: a cancel, a crash or
a failure while the call is in flight still undoes it if it landed, and makes
sure it never lands if it had not. A failure, a rejection or a cancellation runs
the registered compensations in reverse.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.tickets.activities import TicketActivities
    from keel.graphs.policies import HEARTBEAT_TIMEOUT, LLM_RETRY, LLM_TIMEOUT, SIDE_EFFECT_RETRY
    from keel.payloads.errors import SAGA_FAILED, SCHEMA_VIOLATION
    from keel.payloads.tickets import (
        ApprovalDecision,
        AssignTicket,
        CreateSubtask,
        CreateTicket,
        IncidentTriage,
        SagaProgress,
        SendNotification,
        ServiceRecord,
        TicketSagaInput,
        TicketSagaResult,
        UndoByKey,
        UndoRecord,
    )
    from workflows.live import LiveChannel
    from workflows.model_calls import ModelCaller
    from workflows.saga import UNDO_BEFORE_CALL, Saga, Undo

TRIAGE_MAX_TOKENS = 200


@workflow.defn(name="TicketSagaWorkflow")
class TicketSagaWorkflow:
    @workflow.init
    def __init__(self, request: TicketSagaInput) -> None:
        self._input = request
        self._progress = SagaProgress()
        self._live = LiveChannel()
        self._model = ModelCaller(
            request.model, request.llm_task_queue, request.max_reasks, live=self._live
        )
        self._step_timeout = timedelta(seconds=request.step_timeout_seconds)
        self._saga = Saga(self._step_timeout)
        self._step = "triage"
        self._undo_first = False

    @workflow.query(name="progress")
    def progress(self) -> SagaProgress:
        self._progress.compensations = self._saga.log
        self._progress.usage = self._model.usage
        return self._progress

    @workflow.update(name="decide")
    def decide(self, decision: ApprovalDecision) -> SagaProgress:
        """A human approves or rejects the ticket before anyone is notified."""
        self._progress.decision = decision
        return self.progress()

    @decide.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        if self._progress.decision is not None:
            raise ValueError(f"already decided: {self._progress.decision.decision}")
        if self._progress.status in ("notifying", "compensating", "done"):
            raise ValueError(f"too late to decide: the saga is {self._progress.status}")

    def _key(self, step: str) -> str:
        return f"{workflow.info().workflow_id}:{step}"

    async def _act(
        self,
        step: str,
        activity: object,
        call: CreateTicket | CreateSubtask | AssignTicket | SendNotification,
        undo: Undo,
        undo_key: str,
    ) -> ServiceRecord:
        """Run one side effect; its undo is registered before the call (by its key).

        Runs recorded before `UNDO_BEFORE_CALL` registered `undo` by record, after.
        """
        self._step = step
        entry = None
        if self._undo_first:
            entry = self._saga.register(
                step,
                TicketActivities.undo_side_effect,
                UndoByKey(idempotency_key=self._key(undo_key), target_key=call.idempotency_key),
                action=undo.__name__,
            )
        record: ServiceRecord = await workflow.execute_activity_method(
            activity,  # type: ignore[call-overload]
            call,
            start_to_close_timeout=self._step_timeout,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=SIDE_EFFECT_RETRY,
            summary=f"{step}",
        )
        if entry is not None:
            entry.record_id = record.id
        else:
            self._saga.register(
                step, undo, UndoRecord(idempotency_key=self._key(undo_key), record_id=record.id)
            )
        self._progress.steps_done.append(step)
        self._live.step(f"{step} done (record {record.id})", step)
        return record

    @workflow.run
    async def run(self, request: TicketSagaInput) -> TicketSagaResult:
        triage = await self._model.ask(
            "triage",
            IncidentTriage,
            {"description": request.description},
            max_tokens=TRIAGE_MAX_TOKENS,
            start_to_close=LLM_TIMEOUT,
            retry=LLM_RETRY,
        )
        if triage is None:
            raise ApplicationError(
                "the model gave no valid triage within the re-ask limit",
                type=SCHEMA_VIOLATION,
                non_retryable=True,
            )
        try:
            result = await self._run_steps(request, triage)
        except (Exception, asyncio.CancelledError) as error:
            cancelled = is_cancelled_exception(error)
            self._progress.outcome = "cancelled" if cancelled else "failed"
            self._live.release()
            # An undo that failed for good fails the run with every such failure named.
            await self._compensate()
            if cancelled:
                raise
            root = error.cause if isinstance(error, ActivityError) and error.cause else error
            raise ApplicationError(
                f"saga failed at {self._step}: {root}; every earlier step was compensated",
                type=SAGA_FAILED,
                non_retryable=True,
            ) from error
        self._live.step(f"{result.outcome}: ticket {result.ticket_id}", "done")
        await self._live.close()
        return result

    async def _run_steps(
        self, request: TicketSagaInput, triage: IncidentTriage
    ) -> TicketSagaResult:
        self._progress.status = "acting"
        self._undo_first = workflow.patched(UNDO_BEFORE_CALL)
        ticket_id, subtask_ids, assignment_id = await self._open_ticket(request, triage)
        decision = await self._approval(request)
        notification_id: int | None = None
        if decision.decision == "reject":
            await self._compensate()
            self._progress.outcome = "rejected"
        else:
            notification_id = await self._notify(request, triage, ticket_id)
            self._progress.outcome = "completed"
        self._progress.status = "done"
        return TicketSagaResult(
            outcome="rejected" if decision.decision == "reject" else "completed",
            ticket_id=ticket_id,
            triage=triage,
            subtask_ids=subtask_ids,
            assignment_id=assignment_id,
            notification_id=notification_id,
            decision=decision,
            compensations=self._saga.log,
            usage=self._model.usage,
            prompts=self._model.prompts,
        )

    async def _open_ticket(
        self, request: TicketSagaInput, triage: IncidentTriage
    ) -> tuple[int, list[int], int]:
        """The ticket, its subtasks and its assignee, each with its undo registered."""
        ticket = await self._act(
            "create_ticket",
            TicketActivities.create_ticket,
            CreateTicket(
                idempotency_key=self._key("create-ticket"),
                title=triage.title,
                description=request.description,
                severity=triage.severity,
            ),
            TicketActivities.cancel_ticket,
            "undo-create-ticket",
        )
        self._progress.ticket_id = ticket.id
        subtask_ids: list[int] = []
        for n, title in enumerate(triage.subtasks):
            subtask = await self._act(
                f"create_subtask_{n}",
                TicketActivities.create_subtask,
                CreateSubtask(
                    idempotency_key=self._key(f"create-subtask-{n}"),
                    ticket_id=ticket.id,
                    title=title,
                ),
                TicketActivities.delete_subtask,
                f"undo-subtask-{n}",
            )
            subtask_ids.append(subtask.id)
        assignment = await self._act(
            "assign",
            TicketActivities.assign_ticket,
            AssignTicket(
                idempotency_key=self._key("assign"), ticket_id=ticket.id, assignee=request.assignee
            ),
            TicketActivities.revoke_assignment,
            "undo-assign",
        )
        return ticket.id, subtask_ids, assignment.id

    async def _approval(self, request: TicketSagaInput) -> ApprovalDecision:
        """A person's decision, or the contract's default when none comes in time."""
        self._progress.status = "awaiting_approval"
        self._live.step("awaiting approval: client.py approve|reject", "approval")
        try:
            await workflow.wait_condition(
                lambda: self._progress.decision is not None,
                timeout=timedelta(seconds=request.approval_timeout_seconds),
                timeout_summary="approval deadline",
            )
        except TimeoutError:
            self._progress.decision = ApprovalDecision(
                decision=request.approval_default, by="timeout", reason="no decision in time"
            )
        assert self._progress.decision is not None
        return self._progress.decision

    async def _notify(
        self, request: TicketSagaInput, triage: IncidentTriage, ticket_id: int
    ) -> int:
        self._progress.status = "notifying"
        notification = await self._act(
            "notify",
            TicketActivities.send_notification,
            SendNotification(
                idempotency_key=self._key("notify"),
                ticket_id=ticket_id,
                channel=request.channel,
                message=f"[{triage.severity}] {triage.title} (ticket {ticket_id})",
            ),
            TicketActivities.retract_notification,
            "undo-notify",
        )
        return notification.id

    async def _compensate(self) -> None:
        self._progress.status = "compensating"
        self._live.step(f"compensating {len(self._saga.log)} step(s)", "compensation")
        try:
            await self._saga.compensate()
        finally:
            self._progress.status = "done"
