"""Stripe.js in our pages. With real Stripe the pages load https://js.stripe.com/v3/ and nothing
else. With localstripe (local development and tests) they load localstripe's stand-in, then
`localstripe-compat.js`, which adds what that stand-in lacks: `createPaymentMethod` and
`confirmCardPayment` with a card Element (localstripe's versions return nothing, or ignore the
card). The pages call Stripe.js exactly as they would with real Stripe.

localstripe lets a publishable key do very little (tokens, sources, SetupIntent confirm, 3-D
Secure), so the compat script gets two things from the page's own service, the part Stripe's
servers play behind Stripe.js: a SetupIntent to confirm with the card (the card data goes from
the browser to localstripe, never through us), and the attaching of that payment method to a
PaymentIntent the browser holds the client secret of. Those routes exist only when Stripe.js
is localstripe's (`localstripe_router` returns None otherwise)."""

import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import stripe
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from shared.settings import Settings

LOCALSTRIPE_COMPAT_JS = Path(__file__).parent / "static" / "localstripe-compat.js"


def uses_localstripe(settings: Settings) -> bool:
    return not settings.stripe_js_url.startswith("https://js.stripe.com/")


def stripe_js_src(settings: Settings) -> str:
    """Where a page loads Stripe.js from: Stripe's own, or localstripe's stand-in through
    `/_localstripe/stripe.js` (see `localstripe_router`)."""
    return "/_localstripe/stripe.js" if uses_localstripe(settings) else settings.stripe_js_url


class ConfirmIn(BaseModel):
    client_secret: str = Field(min_length=1, max_length=300)
    payment_method: str = Field(min_length=1, max_length=200)


def _error(exc: stripe.StripeError) -> JSONResponse:
    body = exc.json_body if isinstance(exc.json_body, dict) else {"error": {"message": str(exc)}}
    return JSONResponse(body, status_code=exc.http_status or 402)


def localstripe_router(settings: Settings) -> APIRouter | None:
    """`/_localstripe/...`: what Stripe's servers do behind Stripe.js, done against localstripe."""
    if not uses_localstripe(settings):
        return None
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,  # type: ignore[typeddict-item]
        http_client=stripe.HTTPXClient(),
    )
    router = APIRouter(prefix="/_localstripe", include_in_schema=False)

    stand_in: list[str] = []

    @router.get("/stripe.js")
    async def stripe_js() -> Response:
        """localstripe's Stripe.js inside a function scope: loaded as it is, its top-level
        `class Element` shadows the DOM's `Element` for every script of the page, and htmx
        (which asks `elt instanceof Element`) then processes nothing. `Stripe = ...` still
        assigns the global. It finds localstripe from its own script address, which is ours
        here, so that address is written in (and handed to localstripe-compat.js)."""
        if not stand_in:
            async with httpx.AsyncClient(timeout=10) as http:
                source = (await http.get(settings.stripe_js_url)).raise_for_status().text
            source = source.replace("document.currentScript.src", json.dumps(settings.stripe_js_url), 1)
            stand_in.append(f"(function () {{\n{source}\nwindow.LOCALSTRIPE_BASE_API = LOCALSTRIPE_BASE_API;\n}})();\n")
        return Response(stand_in[0], media_type="text/javascript")

    @router.get("/compat.js")
    async def compat_js() -> Response:
        return Response(LOCALSTRIPE_COMPAT_JS.read_text(), media_type="text/javascript")

    @router.post("/setup_intents")
    async def setup_intent() -> Any:
        seti = await client.v1.setup_intents.create_async({"usage": "on_session"})
        return {"id": seti.id, "client_secret": seti.client_secret}

    @router.post("/payment_intents/{intent_id}/confirm")
    async def confirm(intent_id: str, body: ConfirmIn) -> Any:
        try:
            intent = await client.v1.payment_intents.retrieve_async(intent_id)
            if not hmac.compare_digest(str(intent.client_secret), body.client_secret):
                return JSONResponse({"error": {"message": "client secret does not match"}}, status_code=401)
            await client.v1.payment_intents.update_async(intent_id, {"payment_method": body.payment_method})
            intent = await client.v1.payment_intents.confirm_async(intent_id)
        except stripe.StripeError as exc:
            return _error(exc)
        return intent.to_dict()

    return router
