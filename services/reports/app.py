"""Wiring only: the reports read model's consumers and HTTP app."""

from fastapi import FastAPI

from services.reports import handlers
from services.reports.api import router
from services.reports.db import metadata
from shared import topics
from shared.runtime import Service
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    svc = Service("reports", settings, metadata)
    svc.consume(topics.BILLING, {}, batch_handlers=handlers.billing())
    svc.consume(topics.PAYMENTS, {}, batch_handlers=handlers.payments())
    svc.consume(topics.DOCUMENTS, {}, batch_handlers=handlers.AUDIT)
    svc.consume(topics.NOTIFICATIONS, {}, batch_handlers=handlers.AUDIT)
    plain, batched = handlers.scheduling()
    svc.consume(topics.SCHEDULING, plain, batch_handlers=batched)
    return svc


def build(settings: Settings) -> tuple[Service, FastAPI]:
    svc = create_service(settings)
    app = svc.http_app(
        [router],
        title="reports",
        description="Aging, payments, revenue and the double-entry journal: a read model fed only by events.",
    )
    return svc, app
