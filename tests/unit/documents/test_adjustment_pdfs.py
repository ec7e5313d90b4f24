"""Adjustments on the bill PDF and on statements, rendered for real and read with pdftotext."""

import subprocess

from services.documents.domain import prepare
from services.documents.rendering import render_pdf
from shared.events import BillSnapshot
from tests.unit.documents import samples


def pdftotext(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return " ".join(out.decode().split())


def adjusted_bill(*, reversed_at: str | None = None) -> BillSnapshot:
    bill = samples.bill(sessions=2, payments=[samples.card_payment(10000)]).model_dump(mode="json")
    adjustment = {"id": "adj-1", "payer": "client", "amount_cents": 20000, "kind": "write_off",
                  "reason": "financial hardship", "created_at": "2026-11-03T18:00:00Z",
                  "reversed_at": reversed_at}  # fmt: skip
    standing = 0 if reversed_at else 20000
    return BillSnapshot.model_validate(
        bill | {"adjustments": [adjustment], "adjusted_cents": standing, "status": "open" if reversed_at else "closed",
                "balance_cents": 30000 - 10000 - standing, "client_owes_cents": 30000 - 10000 - standing}
    )  # fmt: skip


def test_the_bill_pdf_shows_a_standing_adjustment_and_nothing_due() -> None:
    text = pdftotext(render_pdf(prepare("bill", adjusted_bill().model_dump(mode="json"))).pdf)
    for expected in ("Adjustments", "Write-off: financial hardship", "-$200.00", "Balance due $0.00",
                     "Nothing is due on this bill."):  # fmt: skip
        assert expected in text, expected
    assert "CLOSED" in text.replace(" ", ""), "the stamp (letter-spaced)"
    assert "PAY ONLINE" not in text


def test_a_reversed_adjustment_is_off_the_bill_pdf() -> None:
    text = pdftotext(
        render_pdf(prepare("bill", adjusted_bill(reversed_at="2026-11-04T10:00:00Z").model_dump(mode="json"))).pdf
    )
    assert "Write-off" not in text and "Balance due $200.00" in text and "PAY ONLINE" in text


def test_the_statement_pdf_lists_adjustments_and_reversals() -> None:
    statement = samples.statement(
        entries=[
            {"date": "2026-10-03", "kind": "charge", "amount_cents": 15000, "bill_number": 1040},
            {"date": "2026-10-05", "kind": "adjustment", "description": "Write-off on bill #1040",
             "amount_cents": -4000, "bill_number": 1040},
            {"date": "2026-10-06", "kind": "adjustment_reversed", "description": "Write-off on bill #1040 reversed",
             "amount_cents": 4000, "bill_number": 1040},
            {"date": "2026-10-07", "kind": "adjustment", "description": "Discount on bill #1040",
             "amount_cents": -5000, "bill_number": 1040},
        ],
        closing_balance_cents=15000, aging={"current": 15000},
    )  # fmt: skip
    text = pdftotext(render_pdf(prepare("statement", statement.model_dump(mode="json"))).pdf)
    for expected in ("Write-off on bill #1040", "Write-off on bill #1040 reversed", "Discount on bill #1040",
                     "$150.00"):  # fmt: skip
        assert expected in text, expected


def test_a_split_bill_pdf_names_the_share() -> None:
    bill = samples.bill(sessions=1, minor=True).model_dump(mode="json") | {"split_percent": "40.00",
                                                                           "party": "guardian:g1"}  # fmt: skip
    text = pdftotext(render_pdf(prepare("bill", BillSnapshot.model_validate(bill).model_dump(mode="json"))).pdf)
    assert "This bill is your share (40%) of the charges below" in text and "Noah Park" in text
