"""A client's payment plan on the statement PDF, rendered for real and read with pdftotext."""

from services.documents.domain import prepare
from services.documents.rendering import render_pdf
from tests.unit.documents import samples
from tests.unit.documents.test_adjustment_pdfs import pdftotext


def test_the_statement_shows_the_plan_and_the_installments_to_come() -> None:
    plan = {"total_cents": 10001, "frequency": "monthly",
            "upcoming": [{"due_date": "2026-12-04", "amount_cents": 3334},
                         {"due_date": "2027-01-04", "amount_cents": 3333}]}  # fmt: skip
    source = samples.statement(payment_plans=[plan]).model_dump(mode="json")
    text = pdftotext(render_pdf(prepare("statement", source)).pdf)
    assert "Payment plan" in text and "$100.01" in text and "monthly installments" in text
    assert "$33.34" in text and "$33.33" in text


def test_no_plan_no_section() -> None:
    text = pdftotext(render_pdf(prepare("statement", samples.statement().model_dump(mode="json"))).pdf)
    assert "Payment plan" not in text.replace("Payment plans are available", "")
