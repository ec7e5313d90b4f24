"""Page rendering: one Jinja2 environment with the money/date filters, the practice's name,
currency and timezone on every page, and the CSRF token every form carries."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.web import format as fmt

TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)
templates.env.filters.update(
    cents_input=fmt.cents_input,
    date=fmt.date_text,
)
templates.env.globals.update(
    method_names={"card": "Card", "cash": "Cash", "check": "Check", "credit": "Credit", "other": "Other"},
    doc_names={"good_faith_estimate": "Good Faith Estimate"},
    adjustment_names={"write_off": "Write-off", "discount": "Discount", "bad_debt": "Bad debt"},
)


def csrf_token(request: Request) -> str:
    """The signed double-submit token of asgi-csrf (the cookie is set with the page)."""
    get = request.scope.get("csrftoken")
    return str(get()) if get else ""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page or a fragment (htmx swaps fragments in place) with what every template needs."""
    viewer = getattr(request.state, "viewer", None)
    practice = getattr(request.state, "practice", None) or {}
    currency = practice.get("currency") or "USD"
    timezone = practice.get("timezone") or "UTC"
    ctx = {
        "viewer": viewer,
        "practice": practice,
        "csrf_token": csrf_token(request),
        "dev_sign_in": request.app.state.settings.web_dev_sign_in,
        "money": lambda cents: fmt.money(cents, currency),
        "when": lambda value: fmt.datetime_text(value, timezone),
        "local_input": lambda value: fmt.local_input(value, timezone),
        "currency": currency,
        "timezone": timezone,
        **context,
    }
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)
