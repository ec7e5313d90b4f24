"""Wiring of the payments service: consumers, background reconciler, HTTP routers."""

from fastapi import FastAPI

from services.payments import api, autopay, cards, credit, pay_attempts, payers, plans, public, webhooks
from services.payments.db import metadata
from services.payments.handlers import PaymentHandlers
from services.payments.reconciler import reconciler_loop
from services.payments.service import Payments
from services.payments.stripe_gateway import StripeGateway
from shared import topics
from shared.events import (
    AutopayDisabled,
    CardAuthorized,
    CardRemoved,
    CreditChanged,
    PaymentFailed,
    PaymentPlanCancelled,
    PaymentPlanCompleted,
    PaymentPlanCreated,
    PaymentPlanDefaulted,
    PaymentRecorded,
    PaymentRefunded,
)
from shared.runtime import Service
from shared.settings import Settings
from shared.stripe_js import localstripe_router

PAYMENTS_EVENTS = [
    PaymentRecorded, PaymentFailed, PaymentRefunded, CreditChanged, CardAuthorized, CardRemoved, AutopayDisabled,
    PaymentPlanCreated, PaymentPlanDefaulted, PaymentPlanCompleted, PaymentPlanCancelled,
]  # fmt: skip


class PaymentsService(Service):
    """The shared Service plus the payments context its routes and handlers use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("payments", settings, metadata)
        self.payments = Payments(self, StripeGateway(settings))


def create_service(settings: Settings) -> PaymentsService:
    svc = PaymentsService(settings)
    svc.publishes(topics.PAYMENTS, PAYMENTS_EVENTS)
    PaymentHandlers(svc.payments).subscribe(svc)
    svc.background(reconciler_loop(svc.payments))
    svc.background(pay_attempts.reconciler_loop(svc.payments))
    svc.background(autopay.autopay_loop(svc.payments))
    return svc


def build(settings: Settings) -> tuple[Service, FastAPI]:
    svc = create_service(settings)
    routers = [
        api.router, credit.router, cards.router, autopay.router, plans.router, public.router, webhooks.router,
        payers.router,
    ]  # fmt: skip
    dev_stripe = localstripe_router(settings)  # only when Stripe.js is localstripe's
    app = svc.http_app(
        [*routers, *([dev_stripe] if dev_stripe else [])],
        title="payments",
        description="Payments, refunds, client credit, cards on file, Stripe, payer remittances, the pay page.",
    )
    return svc, app
