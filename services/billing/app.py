"""Wiring only: billing's consumers, background jobs and HTTP app."""

from fastapi import FastAPI

from services.billing import api, automation, documents_api, estimates_api, handlers, profiles, scheduler
from services.billing.db import metadata
from shared import events, topics
from shared.runtime import Service
from shared.settings import Settings

SHARE_POLL_SECONDS = 1.0
BILLING_EVENTS = [
    events.BillCreated, events.BillUpdated, events.BillPaid, events.BillCancelled, events.BillShared,
    events.BillAdjusted, events.BillAdjustmentReversed, events.AllocationRejected, events.StatementCreated,
    events.StatementShared, events.SuperbillCreated, events.SuperbillShared, events.PracticeAutomationChanged,
    events.GoodFaithEstimateCreated, events.GoodFaithEstimateShared, events.GoodFaithEstimateExceeded,
    events.SharesRecorded,
]  # fmt: skip


def create_service(settings: Settings) -> Service:
    svc = Service("billing", settings, metadata)
    svc.consume(
        topics.SCHEDULING,
        {"SessionVoided": handlers.void_handler(svc.outbox)},
        batch_handlers=handlers.scheduling_batch_handlers(),
        unclaimed=handlers.PROJECTED,
    )
    svc.consume(topics.PAYMENTS, handlers.payments_handlers(svc.outbox))
    svc.consume(topics.DOCUMENTS, {"DocumentRendered": handlers.document_rendered})
    svc.publishes(topics.BILLING, BILLING_EVENTS)
    svc.background(scheduler.share_loop(svc.db, svc.outbox, SHARE_POLL_SECONDS))
    svc.background(automation.automation_loop(svc.db, svc.outbox, settings))
    return svc


def build(settings: Settings) -> tuple[Service, FastAPI]:
    svc = create_service(settings)
    app = svc.http_app(
        [api.router, documents_api.router, profiles.router, automation.router, estimates_api.router],
        title="billing",
        description="Unbilled sessions, bills, statements and balances of a therapy practice.",
    )
    return svc, app
