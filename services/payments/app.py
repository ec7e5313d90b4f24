"""Wiring of the payments service: consumers, background reconciler, HTTP routers."""

from fastapi import FastAPI

from services.payments import api, autopay, cards, credit, pay_attempts, payers, public, webhooks
from services.payments.db import metadata
from services.payments.handlers import PaymentHandlers
from services.payments.reconciler import reconciler_loop
from services.payments.service import Payments
from services.payments.stripe_gateway import StripeGateway
from shared.runtime import Service
from shared.settings import Settings
from shared.stripe_js import localstripe_router


class PaymentsService(Service):
    """The shared Service plus the payments context its routes and handlers use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("payments", settings, metadata)
        self.payments = Payments(self, StripeGateway(settings))


def create_service(settings: Settings) -> PaymentsService:
    svc = PaymentsService(settings)
    PaymentHandlers(svc.payments).subscribe(svc)
    svc.background(reconciler_loop(svc.payments))
    svc.background(pay_attempts.reconciler_loop(svc.payments))
    svc.background(autopay.autopay_loop(svc.payments))
    return svc


def build(settings: Settings) -> tuple[Service, FastAPI]:
    svc = create_service(settings)
    routers = [api.router, credit.router, cards.router, autopay.router, public.router, webhooks.router, payers.router]
    dev_stripe = localstripe_router(settings)  # only when Stripe.js is localstripe's
    app = svc.http_app(
        [*routers, *([dev_stripe] if dev_stripe else [])],
        title="payments",
        description="Payments, refunds, client credit, cards on file, Stripe, payer remittances, the pay page.",
    )
    return svc, app
