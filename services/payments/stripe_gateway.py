"""The few Stripe calls payments makes, through the official SDK's async client. Works with
real Stripe keys or with localstripe (STRIPE_API_BASE). Our payment / refund id is always the
Stripe idempotency key, so a retried call never charges or refunds twice on real Stripe."""

from dataclasses import dataclass
from typing import Any

import stripe

from shared.settings import Settings


class StripeDeclined(Exception):
    """Stripe said no (card declined, invalid card): final, nothing was charged."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


MISSING = "resource_missing"  # Stripe's code for an id it does not know


class StripeUnavailable(Exception):
    """No answer (timeout, network): the outcome is unknown; resolve later against Stripe."""


@dataclass(frozen=True)
class CardDetails:
    payment_method_id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class IntentResult:
    intent_id: str
    status: str
    charge_id: str | None
    failure_reason: str | None
    amount: int | None = None
    currency: str | None = None
    payment_method_id: str | None = None


def _field(obj: Any, key: str) -> Any:
    """A field Stripe may leave out (stripe 16 objects have no .get())."""
    return obj[key] if obj is not None and key in obj else None


def intent_result(intent: Any) -> IntentResult:
    charge = _field(intent, "latest_charge")
    charge_id = charge if isinstance(charge, str) or charge is None else charge["id"]
    error = _field(intent, "last_payment_error")
    amount = _field(intent, "amount")
    method = _field(intent, "payment_method")
    return IntentResult(
        intent["id"],
        intent["status"],
        charge_id,
        _field(error, "message"),
        int(amount) if amount is not None else None,
        _field(intent, "currency"),
        method if isinstance(method, str) or method is None else method["id"],
    )


def card_details(pm: Any) -> CardDetails:
    card = pm["card"]
    return CardDetails(pm["id"], card["brand"], card["last4"], card["exp_month"], card["exp_year"])


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds),
            max_network_retries=0,
        )
        self.dashboard_base = settings.stripe_dashboard_url.rstrip("/")

    def dashboard_url(self, intent_id: str | None) -> str | None:
        return f"{self.dashboard_base}/payments/{intent_id}" if intent_id else None

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except stripe.CardError as exc:
            raise StripeDeclined(exc.code or "card_declined", exc.user_message or str(exc)) from exc
        except stripe.InvalidRequestError as exc:
            code = exc.code or (MISSING if exc.http_status == 404 else "invalid_request")  # localstripe: bare 404
            raise StripeDeclined(code, exc.user_message or str(exc)) from exc
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise StripeUnavailable(str(exc)) from exc

    async def charge(
        self,
        *,
        payment_id: str,
        practice_id: str,
        amount_cents: int,
        currency: str,
        payment_method_id: str,
        customer_id: str | None,
        off_session: bool,
    ) -> IntentResult:
        """Create and confirm a PaymentIntent; a decline raises StripeDeclined."""
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "payment_method": payment_method_id,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"payment_id": payment_id, "practice_id": practice_id},
        }
        if customer_id:
            params["customer"] = customer_id
        if off_session:
            params["off_session"] = True
        intent = await self._call(
            self.client.v1.payment_intents.create_async(params, {"idempotency_key": f"payment-{payment_id}"})  # type: ignore[arg-type]
        )
        return intent_result(intent)

    async def pay_page_intent(
        self,
        *,
        payment_id: str,
        amount_cents: int,
        currency: str,
        metadata: dict[str, str],
        payment_method_id: str | None = None,
    ) -> tuple[IntentResult, str]:
        """A PaymentIntent for the public pay page and its client secret. Without a payment
        method the browser confirms it (Stripe.js confirmCardPayment, 3-D Secure included);
        with one it is confirmed here, on the session of the person at the page."""
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "payment_method_types": ["card"],
            "metadata": {"payment_id": payment_id, **metadata},
        }
        if payment_method_id:
            params |= {"payment_method": payment_method_id, "confirm": True}
        intent = await self._call(
            self.client.v1.payment_intents.create_async(params, {"idempotency_key": f"payment-{payment_id}"})  # type: ignore[arg-type]
        )
        return intent_result(intent), str(intent["client_secret"])

    async def intent_with_secret(self, intent_id: str) -> tuple[IntentResult, str]:
        intent = await self._call(self.client.v1.payment_intents.retrieve_async(intent_id))
        return intent_result(intent), str(intent["client_secret"])

    async def cancel_intent(self, intent_id: str) -> IntentResult:
        return intent_result(await self._call(self.client.v1.payment_intents.cancel_async(intent_id)))

    async def retrieve_intent(self, intent_id: str) -> IntentResult:
        return intent_result(await self._call(self.client.v1.payment_intents.retrieve_async(intent_id)))

    async def refund(self, *, refund_id: str, payment_intent_id: str, amount_cents: int) -> str:
        refund = await self._call(
            self.client.v1.refunds.create_async(
                {"payment_intent": payment_intent_id, "amount": amount_cents, "metadata": {"refund_id": refund_id}},
                {"idempotency_key": f"refund-{refund_id}"},
            )
        )
        return str(refund["id"])

    async def create_customer(self, *, practice_id: str, client_id: str) -> str:
        customer = await self._call(
            self.client.v1.customers.create_async(
                {"metadata": {"practice_id": practice_id, "client_id": client_id}},
                {"idempotency_key": f"customer-{practice_id}-{client_id}"},
            )
        )
        return str(customer["id"])

    async def attach_card(self, payment_method_id: str, customer_id: str) -> CardDetails:
        """Attach to the customer; a card set up through a SetupIntent for that customer is
        already attached by Stripe, and attaching it again is not needed."""
        pm = await self._call(self.client.v1.payment_methods.retrieve_async(payment_method_id))
        if _field(pm, "customer") != customer_id:
            pm = await self._call(
                self.client.v1.payment_methods.attach_async(payment_method_id, {"customer": customer_id})
            )
        return card_details(pm)

    async def setup_card(self, customer_id: str) -> tuple[str, str]:
        """A SetupIntent the browser confirms with Stripe.js (`confirmCardSetup`, 3-D Secure
        included): (its id, its client secret)."""
        intent = await self._call(
            self.client.v1.setup_intents.create_async(
                {"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]}
            )
        )
        return str(intent["id"]), str(intent["client_secret"])

    async def card(self, payment_method_id: str) -> CardDetails:
        return card_details(await self._call(self.client.v1.payment_methods.retrieve_async(payment_method_id)))

    async def detach_card(self, payment_method_id: str) -> None:
        await self._call(self.client.v1.payment_methods.detach_async(payment_method_id))
