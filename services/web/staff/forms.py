"""Reading the console's forms: amounts typed as dollars, optional fields, one Idempotency-Key
per rendered form (a double-submitted form is applied once)."""

import uuid
from decimal import Decimal, InvalidOperation

from starlette.datastructures import FormData

from services.web import format as fmt


class FormError(ValueError):
    """A field the person must correct; the message names it in words."""


def text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return str(value).strip() or None if isinstance(value, str) else None


def amount(form: FormData, name: str, label: str, *, required: bool = True) -> int | None:
    value = text(form, name)
    if value is None:
        if required:
            raise FormError(f"Enter the {label}.")
        return None
    try:
        return fmt.parse_money(value)
    except ValueError as exc:
        raise FormError(f"{label.capitalize()}: {exc}") from exc


def percent(form: FormData, name: str, label: str) -> str | None:
    value = text(form, name)
    if value is None:
        return None
    try:
        number = Decimal(value.rstrip("%").strip())
    except InvalidOperation as exc:
        raise FormError(f"{label.capitalize()}: “{value}” is not a percentage") from exc
    if not number.is_finite() or not 0 <= number <= 100:
        raise FormError(f"{label.capitalize()} must be between 0 and 100.")
    return str(number)


def new_key() -> str:
    return str(uuid.uuid4())


def key_of(form: FormData) -> str | None:
    """The form's own Idempotency-Key (a hidden field rendered with it)."""
    return text(form, "idempotency_key")
