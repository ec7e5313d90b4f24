"""Money is int cents. Percentages round half-even once, here."""

from decimal import ROUND_HALF_EVEN, Decimal

Cents = int


def percent_of(amount_cents: Cents, percent: Decimal | int | str) -> Cents:
    """`percent`% of `amount_cents`, rounded half-even to the cent: the one rounding point."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError("amount_cents must be int cents")
    value = Decimal(amount_cents) * Decimal(str(percent)) / Decimal(100)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def format_money(amount_cents: Cents, currency: str = "USD") -> str:
    """Human form for emails and PDFs: `$1,234.56`, `-$5.00`; other currencies by code."""
    sign = "-" if amount_cents < 0 else ""
    whole, cents = divmod(abs(amount_cents), 100)
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{sign}{symbol}{whole:,}.{cents:02d}"
