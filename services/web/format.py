"""How money and time read on a page: the practice's currency and timezone. Pure functions
(Jinja filters), unit-tested; money stays int cents until it is printed."""

import datetime as dt
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "EUR": "€", "GBP": "£"}
MINUS = "−"


def money(cents: int | None, currency: str = "USD") -> str:
    """1234567 → "$12,345.67"; negative amounts get a real minus sign; unknown currencies their code."""
    if cents is None:
        return ""
    sign = MINUS if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    symbol = SYMBOLS.get(currency.upper())
    amount = f"{whole:,}.{rest:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency.upper()}"


def parse_money(text: str) -> int:
    """ "$1,234.5" → 123450 cents. Raises ValueError in words for anything that is not an amount."""
    cleaned = text.strip().replace(",", "").lstrip("$€£").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError(f"“{text}” is not an amount") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"“{text}” is not an amount")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"“{text}” has more than two decimals")
    return int(value * 100)


def cents_input(cents: int | None) -> str:
    """The value of an amount field: 12345 → "123.45"."""
    return "" if cents is None else f"{Decimal(cents) / 100:.2f}"


def parse_timestamp(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def local_time(value: str | dt.datetime | None, timezone: str = "UTC") -> dt.datetime | None:
    stamp = parse_timestamp(value)
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(ZoneInfo(timezone))


def datetime_text(value: str | dt.datetime | None, timezone: str = "UTC") -> str:
    """An instant as the practice reads it: "Nov 2, 2026, 3:05 PM PST"."""
    local = local_time(value, timezone)
    if local is None:
        return ""
    hour = local.strftime("%I").lstrip("0")
    return f"{local.strftime('%b')} {local.day}, {local.year}, {hour}:{local.strftime('%M %p %Z')}"


def date_text(value: str | dt.date | None) -> str:
    """A calendar date (date of service, due date): "Nov 2, 2026"."""
    if value is None or value == "":
        return ""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    return f"{day.strftime('%b')} {day.day}, {day.year}"


def local_input(value: str | dt.datetime | None, timezone: str) -> str:
    """The value of a datetime-local field in the practice's timezone."""
    local = local_time(value, timezone)
    return "" if local is None else local.strftime("%Y-%m-%dT%H:%M")


def from_local_input(text: str, timezone: str) -> dt.datetime:
    """A datetime-local field's value, read in the practice's timezone (DST-correct), as an aware instant."""
    naive = dt.datetime.fromisoformat(text)
    return naive.replace(tzinfo=ZoneInfo(timezone))
