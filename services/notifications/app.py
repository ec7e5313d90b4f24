"""Wiring only: the notifications service's consumers, background sender and HTTP app."""

import httpx
from fastapi import FastAPI

from services.notifications.api import router
from services.notifications.db import metadata
from services.notifications.expiry import CardExpiryNotices
from services.notifications.handlers import NotificationHandlers
from services.notifications.mailer import SmtpMailer
from services.notifications.sender import DeliverySender
from shared import topics
from shared.events import ClientNotification, EmailFailed, EmailSent
from shared.http import UPSTREAM_LIMITS
from shared.runtime import Service
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    svc = Service("notifications", settings, metadata)
    handlers = NotificationHandlers(settings)
    svc.consume(topics.BILLING, handlers.billing())
    svc.consume(topics.DOCUMENTS, handlers.documents())
    svc.consume(topics.PAYMENTS, handlers.payments())
    svc.consume(topics.SCHEDULING, handlers.scheduling())
    svc.publishes(topics.NOTIFICATIONS, [EmailSent, EmailFailed])
    svc.publishes(topics.PORTAL, [ClientNotification])
    http = httpx.AsyncClient(timeout=settings.smtp_timeout_seconds, limits=UPSTREAM_LIMITS)
    sender = DeliverySender(svc, SmtpMailer(settings), http, replica=settings.kafka_group_instance_id)
    svc.background(sender.run)
    svc.background(CardExpiryNotices(svc).run)
    svc.on_shutdown(http.aclose)
    return svc


def build(settings: Settings) -> tuple[Service, FastAPI]:
    svc = create_service(settings)
    app = svc.http_app(
        [router],
        title="notifications",
        description="Emails with pay links and PDFs, exactly once per cause, and the client portal feed.",
    )
    return svc, app
